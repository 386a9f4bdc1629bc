"""Known dynamics of standard tasks as batched torch world models, for planning with a
perfect model (an upper bound for learned-model MPC) and for testing planners.

A known model has the interface :class:`~modelbased.models.ModelEnv` uses: ``ensemble_size``
(1), ``sample(obs, action, generator, deterministic)`` returning per-member next states,
rewards and terminations, and ``predict`` for the ``expectation`` mode.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from modelbased.envs.reward_fns import pendulum_reward


@dataclasses.dataclass
class KnownPrediction:
    """A known model's prediction: zero-variance next state and reward."""

    next_obs_mean: Tensor
    next_obs_var: Tensor
    reward_mean: Tensor
    reward_var: Tensor
    termination_logit: Tensor | None = None


class PendulumDynamics:
    """Gymnasium's Pendulum-v1 step (g = 10, m = l = 1, dt = 0.05, torque in [-2, 2], speed in
    [-8, 8]) on observations ``(cos, sin, theta_dot)``, exactly as the env computes it."""

    ensemble_size = 1
    g, m, l, dt, max_speed, max_torque = 10.0, 1.0, 1.0, 0.05, 8.0, 2.0

    def step(self, obs: Tensor, action: Tensor) -> Tensor:
        """Pendulum's next observation for ``obs [..., 3]``, ``action [..., 1]``, as the env
        computes it."""
        theta = torch.atan2(obs[..., 1], obs[..., 0])
        thdot = obs[..., 2]
        u = action[..., 0].clamp(-self.max_torque, self.max_torque)
        thdot = thdot + (3 * self.g / (2 * self.l) * torch.sin(theta)
                         + 3.0 / (self.m * self.l**2) * u) * self.dt  # fmt: skip
        thdot = thdot.clamp(-self.max_speed, self.max_speed)
        theta = theta + thdot * self.dt
        return torch.stack([torch.cos(theta), torch.sin(theta), thdot], dim=-1)

    def sample(
        self, obs: Tensor, action: Tensor, generator: torch.Generator | None = None,
        deterministic: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
        """``obs [1, B, 3]``, ``action [1, B, 1]`` -> next obs, reward, terminated (never)."""
        next_obs = self.step(obs, action)
        reward = pendulum_reward(obs.reshape(-1, 3), action.reshape(-1, 1), next_obs.reshape(-1, 3))
        done = torch.zeros(next_obs.shape[:-1], dtype=torch.bool)
        return next_obs, reward.reshape(next_obs.shape[:-1]), done

    def predict(self, obs: Tensor, action: Tensor) -> KnownPrediction:
        """The exact next state and reward as a :class:`KnownPrediction`, for ``expectation``
        mode."""
        next_obs, reward, _ = self.sample(obs.unsqueeze(0), action.unsqueeze(0))
        return KnownPrediction(
            next_obs, torch.zeros_like(next_obs), reward, torch.zeros_like(reward)
        )
