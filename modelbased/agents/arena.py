"""Players that search, and the arena: many games between two players at once, both colours.

A player maps canonical boards ``int8 [B, H, W]`` to actions ``[B]`` (see
``envs.games.players``). :class:`SearchPlayer` runs one batched MCTS over all the boards it is
handed (``mcts:N`` is pure MCTS with ``N`` random playouts per move; a trained AlphaZero agent
searches with its network). :func:`play_games` advances every game in lockstep, calling each
player once per move on the games where it is to move.
"""

from __future__ import annotations

import numpy as np

from modelbased.core.errors import UnknownNameError
from modelbased.envs.games import GAME_PLAYERS, Game, Player, make_player
from modelbased.planning.game_model import GameModel, Predict
from modelbased.planning.mcts import MCTS, MCTSConfig


class SearchPlayer(Player):
    """The decision of a fresh search at temperature 0 (:meth:`MCTS.decide`: the most visited
    root action, ties at random; Gumbel's noise-free choice with ``root="gumbel"``)."""

    def __init__(self, mcts: MCTS, name: str) -> None:
        self.mcts = mcts
        self.name = name

    def __call__(self, boards: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.mcts.decide(np.asarray(boards, dtype=np.int8), rng, 0.0).actions


def pure_mcts_player(
    game: Game, simulations: int, seed: int = 0, c_uct: float = 1.41
) -> SearchPlayer:
    """UCT with one random playout per simulation (Kocsis & Szepesvari 2006)."""
    model = GameModel(game, rng=np.random.default_rng(seed))
    config = MCTSConfig(num_simulations=simulations, rule="uct", c_uct=c_uct)
    return SearchPlayer(MCTS(model, config), f"mcts:{simulations}")


def network_player(
    game: Game, predict: Predict, config: MCTSConfig, name: str = "alphazero"
) -> SearchPlayer:
    """PUCT over the rules with ``predict`` (e.g. a policy-value network) at the leaves."""
    return SearchPlayer(MCTS(GameModel(game, predict), config), name)


BUILTIN_PLAYERS = f"{GAME_PLAYERS}, mcts:SIMULATIONS"


def builtin_player(spec: str, game: Game, seed: int = 0) -> Player:
    """``random``, ``minimax``, ``alphabeta:DEPTH`` or ``mcts:SIMULATIONS``."""
    name, _, arg = spec.partition(":")
    if name == "mcts":
        try:
            simulations = int(arg) if arg else 200
        except ValueError:
            raise UnknownNameError(
                f"bad mcts simulations {arg!r}: expected e.g. mcts:200"
            ) from None
        if simulations < 1:
            raise UnknownNameError(f"mcts needs >= 1 simulation, got {simulations}")
        return pure_mcts_player(game, simulations, seed)
    try:
        return make_player(spec, game)
    except UnknownNameError as exc:
        if str(exc).startswith("unknown player"):
            raise UnknownNameError(
                f"unknown player {spec!r}: expected a run directory or one of {BUILTIN_PLAYERS}"
            ) from None
        raise


def play_games(
    game: Game, player_a: Player, player_b: Player, games: int, rng: np.random.Generator
) -> dict[str, dict[str, int]]:
    """Play ``games`` games, A first in the first half (rounded up), B first in the rest.

    Returns A's ``wins``/``draws``/``losses`` in total and split by A's colour (``first``,
    ``second``)."""
    if games < 1:
        raise ValueError(f"games must be >= 1, got {games}")
    a_first = np.arange(games) < (games + 1) // 2
    boards = game.initial(games)
    result = np.zeros(games)  # for A: +1 win, 0 draw, -1 loss
    active = np.ones(games, dtype=bool)
    move = 0
    while active.any():
        a_moves = active & (a_first == (move % 2 == 0))
        for player, rows, sign in ((player_a, a_moves, 1.0), (player_b, active & ~a_moves, -1.0)):
            idx = np.flatnonzero(rows)
            if len(idx) == 0:
                continue
            actions = np.asarray(player(boards[idx], rng))
            if not game.legal(boards[idx])[np.arange(len(idx)), actions].all():
                raise RuntimeError(f"{player.name} chose an illegal move")
            boards[idx], reward, done = game.step(boards[idx], actions)
            result[idx[done]] = sign * reward[done]
            active[idx[done]] = False
        move += 1

    def tally(mask: np.ndarray) -> dict[str, int]:
        r = result[mask]
        return {
            "wins": int((r > 0).sum()),
            "draws": int((r == 0).sum()),
            "losses": int((r < 0).sum()),
            "games": int(mask.sum()),
        }

    return {
        "total": tally(np.ones(games, bool)),
        "first": tally(a_first),
        "second": tally(~a_first),
    }
