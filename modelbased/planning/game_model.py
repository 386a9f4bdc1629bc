"""A two-player game's rules as the known model MCTS plans with (AlphaZero), evaluated by
random playouts (pure MCTS, Kocsis & Szepesvari 2006) or by any ``evaluate`` callable, e.g. a
policy-value network (Silver et al. 2018)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from modelbased.envs.games.base import Game
from modelbased.planning.mcts_kernels import playouts

Evaluate = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def random_playout(game: Game, boards: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The result of one uniformly random playout from each board, ``float32 [B]``, for the
    player to move (+1 win, 0 draw, -1 loss), played out in a compiled loop."""
    flat = np.ascontiguousarray(np.asarray(boards, dtype=np.int8).reshape(len(boards), -1))
    return playouts(flat, game.lines, game.cell_lines, game.columns, int(rng.integers(2**31)))


class GameModel:
    """``step``/``legal`` from the rules, ``evaluate`` from ``evaluate`` or random playouts
    (a uniform prior over legal moves and the playout's result as the value)."""

    def __init__(
        self, game: Game, evaluate: Evaluate | None = None, rng: np.random.Generator | None = None
    ) -> None:
        self.game = game
        self.num_actions = game.num_actions
        self._evaluate = evaluate
        self.rng = rng if rng is not None else np.random.default_rng(0)

    def step(
        self, states: np.ndarray, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.game.step(states, actions)

    def legal(self, states: np.ndarray) -> np.ndarray:
        return self.game.legal(states)

    def evaluate(self, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._evaluate is not None:
            return self._evaluate(states)
        prior = np.full((len(states), self.num_actions), 1.0 / self.num_actions, np.float32)
        return prior, random_playout(self.game, states, self.rng)
