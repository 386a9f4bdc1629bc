"""A two-player game's rules as the known model MCTS plans with (AlphaZero, Silver et al. 2018):
the state is the board, ``recurrent_fn`` plays the rules, and the prior and value come from a
``predict`` callable (a policy-value network) or from random playouts (pure MCTS, Kocsis &
Szepesvari 2006: a uniform prior and one playout's result as the value)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from modelbased.envs.games.base import Game
from modelbased.planning.mcts import RecurrentOutput, RootOutput
from modelbased.planning.mcts_kernels import playouts

Predict = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""``predict(boards [k, H, W]) -> (prior [k, A], value [k])``, the value for the player to move."""


def random_playout(game: Game, boards: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The result of one uniformly random playout from each board, ``float32 [B]``, for the
    player to move (+1 win, 0 draw, -1 loss), played out in a compiled loop."""
    flat = np.ascontiguousarray(np.asarray(boards, dtype=np.int8).reshape(len(boards), -1))
    return playouts(flat, game.lines, game.cell_lines, game.columns, int(rng.integers(2**31)))


class GameModel:
    """``root_fn``/``recurrent_fn`` (see :mod:`modelbased.planning.mcts`) over ``game``'s rules,
    with ``predict`` or random playouts (``rng``) for the prior and value."""

    def __init__(
        self, game: Game, predict: Predict | None = None, rng: np.random.Generator | None = None
    ) -> None:
        self.game = game
        self.num_actions = game.num_actions
        self._predict = predict
        self.rng = rng if rng is not None else np.random.default_rng(0)

    def root_fn(self, boards: np.ndarray) -> RootOutput:
        """The boards ``[B, H, W]`` themselves as states, with their prior, value and moves."""
        boards = np.asarray(boards)
        prior, value = self.predict(boards)
        return RootOutput(boards, prior, value, self.game.legal(boards))

    def recurrent_fn(self, boards: np.ndarray, actions: np.ndarray) -> RecurrentOutput:
        """Play ``actions [k]`` on ``boards [k, H, W]`` by the rules; evaluate the results."""
        nxt, reward, terminal, legal = self.game.step_legal(boards, actions)
        prior, value = self.predict(nxt)
        return RecurrentOutput(nxt, reward, terminal, prior, value, legal)

    def predict(self, boards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(prior [k, A], value [k])`` from ``predict``, else uniform and a random playout."""
        if self._predict is not None:
            return self._predict(boards)
        prior = np.full((len(boards), self.num_actions), 1.0 / self.num_actions, np.float32)
        return prior, random_playout(self.game, boards, self.rng)
