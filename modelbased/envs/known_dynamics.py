"""Known dynamics of standard tasks as batched, differentiable torch world models, for
planning with a perfect model (an upper bound for learned-model MPC), for gradient-based
planners (iLQR differentiates them with ``torch.func``), as the analytic part of a hybrid
model (``models.hybrid``), and for testing planners.

A known model has the interface :class:`~modelbased.models.ModelEnv` uses: ``ensemble_size``
(1), ``sample(obs, action, generator, deterministic)`` returning per-member next states,
rewards and terminations, and ``predict`` for the ``expectation`` mode; ``step(obs, action)``
is the physics alone. Physical parameters are constructor arguments, so a deliberately wrong
model (30% heavier, longer) is one call: :func:`analytic_dynamics`.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import torch
from torch import Tensor

from modelbased.envs import cartpole_swingup as swingup
from modelbased.envs.reward_fns import cartpole_swingup_reward, pendulum_reward


@dataclasses.dataclass
class KnownPrediction:
    """A known model's prediction: zero-variance next state and reward."""

    next_obs_mean: Tensor
    next_obs_var: Tensor
    reward_mean: Tensor
    reward_var: Tensor
    termination_logit: Tensor | None = None


class Physics(Protocol):
    """Batched analytic dynamics: ``step(obs [..., o], action [..., a]) -> next obs``."""

    def step(self, obs: Tensor, action: Tensor) -> Tensor:
        """The next observation, differentiable in ``obs`` and ``action``."""


class PendulumDynamics:
    """Gymnasium's Pendulum-v1 step (g = 10, m = l = 1, dt = 0.05, torque in [-2, 2], speed in
    [-8, 8]) on observations ``(cos, sin, theta_dot)``, exactly as the env computes it; ``m``
    and ``l`` may be set to other (wrong) values."""

    ensemble_size = 1
    g, m, l, dt, max_speed, max_torque = 10.0, 1.0, 1.0, 0.05, 8.0, 2.0

    def __init__(self, m: float = 1.0, l: float = 1.0) -> None:  # noqa: E741 (the env's name)
        self.m, self.l = float(m), float(l)

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
        done = torch.zeros(next_obs.shape[:-1], dtype=torch.bool, device=next_obs.device)
        return next_obs, reward.reshape(next_obs.shape[:-1]), done

    def predict(self, obs: Tensor, action: Tensor) -> KnownPrediction:
        """The exact next state and reward as a :class:`KnownPrediction`, for ``expectation``
        mode."""
        next_obs, reward, _ = self.sample(obs.unsqueeze(0), action.unsqueeze(0))
        return KnownPrediction(
            next_obs, torch.zeros_like(next_obs), reward, torch.zeros_like(reward)
        )


class CartPoleSwingUpDynamics:
    """The step of ``modelbased/CartPoleSwingUp-v0`` (:mod:`modelbased.envs.cartpole_swingup`:
    frictionless cart-pole, ``substeps`` semi-implicit Euler steps per ``dt``, an inelastic end
    stop at ``+-TRACK_LIMIT``) on observations ``(x, cos, sin, x_dot, theta_dot)``, in torch;
    the masses may be set to other (wrong) values."""

    ensemble_size = 1

    def __init__(
        self,
        cart_mass: float = swingup.CART_MASS,
        pole_mass: float = swingup.POLE_MASS,
        pole_length: float = swingup.POLE_LENGTH,
        force_mag: float = swingup.FORCE_MAG,
        dt: float = 0.04,
        substeps: int = 4,
    ) -> None:
        self.cart_mass, self.pole_mass, self.half = cart_mass, pole_mass, pole_length / 2
        self.force_mag, self.dt, self.substeps = force_mag, dt, substeps
        self.inertia = 4.0 / 3.0 * pole_mass * self.half**2  # rod about its pivot

    def step(self, obs: Tensor, action: Tensor) -> Tensor:
        """The next observation for ``obs [..., 5]``, ``action [..., 1]``."""
        x, x_dot, theta_dot = obs[..., 0], obs[..., 3], obs[..., 4]
        theta = torch.atan2(obs[..., 2], obs[..., 1])
        force = self.force_mag * action[..., 0].clamp(-1.0, 1.0)
        m, half, inertia = self.pole_mass, self.half, self.inertia
        total, h = self.cart_mass + m, self.dt / self.substeps
        for _ in range(self.substeps):
            cos, sin = torch.cos(theta), torch.sin(theta)
            coupling = m * half * cos
            cart_side = force + m * half * sin * theta_dot**2
            pole_side = m * swingup.GRAVITY * half * sin
            det = total * inertia - coupling**2
            x_dot = x_dot + h * (inertia * cart_side - coupling * pole_side) / det
            theta_dot = theta_dot + h * (total * pole_side - coupling * cart_side) / det
            x, theta = x + h * x_dot, theta + h * theta_dot
            stop = x.abs() > swingup.TRACK_LIMIT
            kick = m * half * torch.cos(theta) * x_dot / inertia  # the end stop's impulse
            theta_dot = torch.where(stop, theta_dot + kick, theta_dot)
            x = x.clamp(-swingup.TRACK_LIMIT, swingup.TRACK_LIMIT)
            x_dot = torch.where(stop, torch.zeros_like(x_dot), x_dot)
        return torch.stack([x, torch.cos(theta), torch.sin(theta), x_dot, theta_dot], dim=-1)

    def sample(
        self, obs: Tensor, action: Tensor, generator: torch.Generator | None = None,
        deterministic: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
        """``obs [1, B, 5]``, ``action [1, B, 1]`` -> next obs, reward, terminated (never)."""
        next_obs = self.step(obs, action)
        flat = next_obs.reshape(-1, 5)
        reward = cartpole_swingup_reward(obs.reshape(-1, 5), action.reshape(-1, 1), flat)
        done = torch.zeros(next_obs.shape[:-1], dtype=torch.bool, device=next_obs.device)
        return next_obs, reward.reshape(next_obs.shape[:-1]), done

    def predict(self, obs: Tensor, action: Tensor) -> KnownPrediction:
        """The exact next state and reward as a :class:`KnownPrediction`."""
        next_obs, reward, _ = self.sample(obs.unsqueeze(0), action.unsqueeze(0))
        return KnownPrediction(
            next_obs, torch.zeros_like(next_obs), reward, torch.zeros_like(reward)
        )


def analytic_dynamics(
    env_id: str, mass_scale: float = 1.0, length_scale: float = 1.0
) -> PendulumDynamics | CartPoleSwingUpDynamics | None:
    """The analytic model of ``env_id`` with its masses times ``mass_scale`` and lengths times
    ``length_scale`` (1: the env's own physics), ``None`` if the package has none.

    Pendulum-v1: the bob's mass ``m`` and the rod's length ``l``; CartPoleSwingUp-v0: the
    cart's and the pole's masses and the pole's length.
    """
    if env_id == "Pendulum-v1":
        return PendulumDynamics(m=mass_scale, l=length_scale)
    if env_id == "modelbased/CartPoleSwingUp-v0":
        return CartPoleSwingUpDynamics(
            cart_mass=swingup.CART_MASS * mass_scale,
            pole_mass=swingup.POLE_MASS * mass_scale,
            pole_length=swingup.POLE_LENGTH * length_scale,
        )
    return None


ANALYTIC_ENVS = ("Pendulum-v1", "modelbased/CartPoleSwingUp-v0")
