"""Gymnasium face of the two-player games: the agent plays one side against a chosen opponent.

Observation: the canonical board of the agent (``int8 [H, W]``: +1 its stones, -1 the
opponent's), the same array the game model and the networks take. Action: ``Discrete(A)``.
Reward at the end: +1 win, 0 draw, -1 loss; an illegal move loses at once (``info["illegal"]``).
``info["action_mask"]`` holds the legal moves. The agent's side is ``first``, ``second`` or
``random`` (drawn from the reset seed, so a seeded reset is reproducible).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from modelbased.core.errors import ConfigError
from modelbased.envs.games.base import Game
from modelbased.envs.games.connect_four import ConnectFour
from modelbased.envs.games.players import make_player
from modelbased.envs.games.tictactoe import TicTacToe

SIDES = ("first", "second", "random")


class GameEnv(gym.Env):
    """A two-player game as a Gymnasium env: the agent plays one side against a built-in
    opponent."""

    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(
        self,
        game: Game,
        opponent: str = "random",
        side: str = "random",
        render_mode: str | None = None,
    ) -> None:
        if side not in SIDES:
            raise ConfigError(f"side must be one of {', '.join(SIDES)}; got {side!r}")
        self.game = game
        self.opponent = make_player(opponent, game)
        self.opponent_name = opponent
        self.side = side
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(-1, 1, game.board_shape, dtype=np.int8)
        self.action_space = gym.spaces.Discrete(game.num_actions)
        self.board = game.initial(1)[0]
        self.agent_first = True

    def _info(self, **extra: Any) -> dict[str, Any]:
        mask = self.game.legal(self.board[None])[0].astype(np.int8)
        return {"action_mask": mask, "agent_first": self.agent_first, **extra}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """A new game; when the agent plays second the opponent's first move is already made."""
        super().reset(seed=seed)
        coin = bool(self.np_random.random() < 0.5)
        self.agent_first = self.side == "first" or (self.side == "random" and coin)
        self.board = self.game.initial(1)[0]
        if not self.agent_first:
            self.board = self._opponent_moves()[0]
        return self.board.copy(), self._info()

    def _opponent_moves(self) -> tuple[np.ndarray, float, bool]:
        action = self.opponent(self.board[None], self.np_random)
        nxt, reward, done = self.game.step(self.board[None], action)
        return nxt[0], float(reward[0]), bool(done[0])

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Play the agent's move and the opponent's reply; reward +1 win, 0 draw, -1 loss or
        illegal."""
        action = int(action)
        if not self.game.legal(self.board[None])[0, action]:
            return self.board.copy(), -1.0, True, False, self._info(illegal=True)
        nxt, reward, done = self.game.step(self.board[None], np.array([action]))
        self.board = nxt[0]
        if done[0]:
            return self.board.copy(), float(reward[0]), True, False, self._info()
        self.board, opp_reward, opp_done = self._opponent_moves()
        return self.board.copy(), -opp_reward, opp_done, False, self._info()

    def render(self) -> str | None:
        """The board as text with ``render_mode="ansi"``, else ``None``."""
        if self.render_mode == "ansi":
            return self.game.render(self.board)
        return None


class TicTacToeEnv(GameEnv):
    """``modelbased/TicTacToe-v0``: tic-tac-toe against ``minimax`` by default."""

    def __init__(self, opponent: str = "minimax", side: str = "random", render_mode=None):
        super().__init__(TicTacToe(), opponent, side, render_mode)


class ConnectFourEnv(GameEnv):
    """``modelbased/ConnectFour-v0``: connect four against ``alphabeta:4`` by default."""

    def __init__(self, opponent: str = "alphabeta:4", side: str = "random", render_mode=None):
        super().__init__(ConnectFour(), opponent, side, render_mode)
