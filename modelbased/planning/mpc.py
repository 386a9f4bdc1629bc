"""Model-predictive control: receding-horizon trajectory optimization in a learned or known
model (PETS: Chua et al. 2018, algorithm 1 and section 4.3; Nagabandi et al. 2018).

At every real step :class:`MPC` optimizes an ``H``-step action sequence against the imagined
return of a :class:`~modelbased.models.ModelEnv` (plus an optional terminal value and an
optional uncertainty penalty), executes only its first action, and warm-starts the next
optimization from the plan shifted by one step. Any trajectory optimizer of
:mod:`modelbased.planning` serves; ``B`` start states are planned in one call.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from modelbased.models.model_env import ModelEnv
from modelbased.planning.trajectory import PlanResult, Score, TrajectoryOptimizer, shift_plan


def imagined_return(
    model_env: ModelEnv,
    obs: Tensor,
    num_particles: int,
    gamma: float = 1.0,
    terminal_value: Callable[[Tensor], Tensor] | None = None,
    uncertainty_penalty: float = 0.0,
) -> Score:
    """The MPC score from ``obs [B, o]``: ``action_sequences [B, K, H, a] -> returns [B, K]``."""

    def score(action_sequences: Tensor) -> Tensor:
        return model_env.evaluate_action_sequences(
            obs, action_sequences, num_particles, gamma, terminal_value, uncertainty_penalty
        )

    return score


class MPC:
    """Receding-horizon controller around a :class:`TrajectoryOptimizer`."""

    def __init__(self, optimizer: TrajectoryOptimizer) -> None:
        self.optimizer = optimizer
        self._plan: Tensor | None = None

    def reset(self) -> None:
        """Forget the warm start (call at the start of every episode)."""
        self._plan = None
        self.optimizer.reset()

    def plan(self, score: Score, batch_size: int = 1) -> PlanResult:
        """Optimize from the shifted previous plan (if any, for the same batch size)."""
        warm = None
        if self._plan is not None and len(self._plan) == batch_size:
            warm = shift_plan(self._plan)
        result = self.optimizer.optimize(score, batch_size=batch_size, init_mean=warm)
        self._plan = result.mean
        return result

    def act(self, score: Score, batch_size: int = 1) -> Tensor:
        """The first action of the optimized plan, ``[B, a]``."""
        with torch.inference_mode():
            return self.plan(score, batch_size).actions[:, 0]
