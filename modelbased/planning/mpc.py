"""Model-predictive control: receding-horizon trajectory optimization in a learned or known
model (PETS: Chua et al. 2018, algorithm 1 and section 4.3; Nagabandi et al. 2018).

At every real step :class:`MPC` optimizes an ``H``-step action sequence against the imagined
return of a :class:`~modelbased.models.ModelEnv` (plus an optional terminal value and an
optional uncertainty penalty), executes only its first action, and warm-starts the next
optimization from the plan shifted by one step. Any trajectory optimizer of
:mod:`modelbased.planning` serves; ``B`` start states are planned in one call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import Tensor

from modelbased.models.model_env import ModelEnv
from modelbased.planning.trajectory import PlanResult, Score, TrajectoryOptimizer, shift_plan


@dataclasses.dataclass
class ModelScore:
    """The MPC score from ``obs [B, o]``: called on ``action_sequences [B, K, H, a]`` it gives
    the imagined returns ``[B, K]`` (mean over particles); :meth:`transition` exposes the
    model's differentiable mean step for gradient-based optimizers (iLQR)."""

    model_env: ModelEnv
    obs: Tensor  # [B, o] start states
    num_particles: int
    gamma: float = 1.0
    terminal_value: Callable[[Tensor], Tensor] | None = None
    uncertainty_penalty: float = 0.0

    def __call__(self, action_sequences: Tensor) -> Tensor:
        """``[B, K, H, a] -> [B, K]`` imagined returns."""
        return self.model_env.evaluate_action_sequences(
            self.obs,
            action_sequences,
            self.num_particles,
            self.gamma,
            self.terminal_value,
            self.uncertainty_penalty,
        )

    def transition(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """The model's mean next state ``[N, o]`` and reward ``[N]`` (``ModelEnv.mean_step``)."""
        return self.model_env.mean_step(obs, action)

    def dynamics(self, obs: Tensor, action: Tensor) -> Tensor:
        """The model's mean next state ``[N, o]`` alone (``ModelEnv.mean_next_obs``)."""
        return self.model_env.mean_next_obs(obs, action)

    @property
    def reward_fn(self) -> Callable[[Tensor, Tensor, Tensor], Tensor] | None:
        """The known ``reward(obs, action, next_obs) -> [N]`` of the model env, if any: with it
        :meth:`transition` is :meth:`dynamics` followed by this reward."""
        return self.model_env.reward_fn


def imagined_return(
    model_env: ModelEnv,
    obs: Tensor,
    num_particles: int,
    gamma: float = 1.0,
    terminal_value: Callable[[Tensor], Tensor] | None = None,
    uncertainty_penalty: float = 0.0,
) -> ModelScore:
    """The MPC score from ``obs [B, o]``: ``action_sequences [B, K, H, a] -> returns [B, K]``."""
    return ModelScore(model_env, obs, num_particles, gamma, terminal_value, uncertainty_penalty)


class MPC:
    """Receding-horizon controller around a :class:`TrajectoryOptimizer`."""

    def __init__(self, optimizer: TrajectoryOptimizer) -> None:
        self.optimizer = optimizer
        self._plan: Tensor | None = None

    def reset(self) -> None:
        """Forget the warm start (call at the start of every episode)."""
        self._plan = None
        self.optimizer.reset()

    def plan(
        self, score: Score, batch_size: int = 1, proposals: Tensor | None = None
    ) -> PlanResult:
        """Optimize from the shifted previous plan (if any, for the same batch size);
        ``proposals [B, P, H, a]`` go to optimizers that score them beside their samples
        (MPPI: TD-MPC's policy-prior trajectories)."""
        warm = None
        if self._plan is not None and len(self._plan) == batch_size:
            warm = shift_plan(self._plan)
        extra = {} if proposals is None else {"proposals": proposals}
        result = self.optimizer.optimize(score, batch_size=batch_size, init_mean=warm, **extra)
        self._plan = result.mean
        return result

    def act(self, score: Score, batch_size: int = 1) -> Tensor:
        """The first action of the optimized plan, ``[B, a]``."""
        with torch.inference_mode():
            return self.plan(score, batch_size).actions[:, 0]
