"""Two-player board games (tic-tac-toe, connect four) behind one batched interface, their
reference opponents, and Gymnasium envs that play them against a chosen opponent."""

from modelbased.envs.games.base import Game
from modelbased.envs.games.connect_four import ConnectFour
from modelbased.envs.games.env import ConnectFourEnv, GameEnv, TicTacToeEnv
from modelbased.envs.games.players import (
    GAME_PLAYERS,
    AlphaBetaPlayer,
    MinimaxPlayer,
    Player,
    RandomPlayer,
    make_player,
    random_legal,
)
from modelbased.envs.games.tictactoe import TicTacToe

GAMES: dict[str, type[Game]] = {"tictactoe": TicTacToe, "connect-four": ConnectFour}

__all__ = [
    "GAME_PLAYERS",
    "GAMES",
    "AlphaBetaPlayer",
    "ConnectFour",
    "ConnectFourEnv",
    "Game",
    "GameEnv",
    "MinimaxPlayer",
    "Player",
    "RandomPlayer",
    "TicTacToe",
    "TicTacToeEnv",
    "make_player",
    "random_legal",
]
