"""Known reward and termination functions of standard tasks, as batched torch functions.

A planner can score imagined transitions with these instead of a learned reward, as PETS does
(Chua et al., 2018). Every function takes ``obs [B, o]``, ``act [B, a]``, ``next_obs [B, o]``
and returns a float tensor ``[B]`` (reward) or a bool tensor ``[B]`` (termination), and agrees
with the environment's own ``step`` (tested against rollouts of the real environments).

Each reproduces the Gymnasium 1.x source with the environment's default arguments:

* ``Pendulum-v1``: ``-(theta^2 + 0.1 theta_dot^2 + 0.001 u^2)`` of the state *before* the step
  (so from ``obs``), ``theta`` normalized to [-pi, pi) and ``u`` the torque clipped to [-2, 2];
  no termination.
* ``MountainCarContinuous-v0``: ``100 * reached - 0.1 a^2`` with the raw, unclipped action;
  terminates on reaching ``position >= 0.45`` with ``velocity >= 0`` (``goal_velocity=0``).
* ``InvertedPendulum-v4/v5``: terminates when ``next_obs`` is not finite or the pole angle
  ``next_obs[:, 1]`` exceeds 0.2 rad in magnitude; v5 pays 1 per step but 0 on the terminal
  step, v4 pays 1 always.
* ``Hopper-v5``: terminates (unhealthy) unless every entry of ``next_obs[:, 1:]`` lies strictly
  inside (-100, 100), the height ``next_obs[:, 0]`` exceeds 0.7 and the torso angle
  ``next_obs[:, 1]`` lies strictly inside (-0.2, 0.2); the reward (forward progress of the
  x position, which the observation omits) is not known, so the model learns it (as MBPO does).
* ``HalfCheetah-v5``: no termination; reward not known (learned).
* ``modelbased/CartPoleSwingUp-v0``: see :mod:`modelbased.envs.cartpole_swingup`; no
  termination.
* ``CartPole-v1`` (discrete actions): obs ``(x, x_dot, theta, theta_dot)``; terminates when
  ``|x| > 2.4`` or ``|theta| > 12 degrees`` in ``next_obs``; pays 1 per step, the terminal one
  included.

Planning rewards (:func:`planning_reward`) are PETS-style shaped costs that a planner may
optimize in place of a task's own reward, as the PETS paper does for every task (Chua et al.
2018, appendix: cart-pole scores the pole tip's distance to the goal, not "upright or not").
Returns are always measured with the env's own reward. Two are defined:

* ``InvertedPendulum-v4/v5``: ``alive * (2 - min((x / 0.5)^2, 1.44) - 0.5 (theta / 0.2)^2)``.
  The task pays 1 per step alive, so every plan that keeps the pole up over the horizon ties and
  nothing keeps the cart off its rail at ``|x| = 1``, where the pole then falls: MPC with the
  *true* dynamics (``mujoco.rollout``, the iCEM preset, H 15) ends at the rail after 84 steps
  with the task's reward. A cart term of ``x^2`` alone was too weak against the pole's: with a
  learned model the cart still swung from rail to rail and hit one after 200-900 steps; scaled
  by 0.5 m (saturating at 0.6 m) it keeps the cart near the centre. The value stays above 0 while
  alive (at least 0.06), so surviving longer always scores higher.
* ``CartPole-v1``: ``alive * (1 + 0.1 (1 - (x / 2.4)^2 / 2 - (theta / 12 deg)^2 / 2))``.
  Again every surviving plan ties under the task's reward: MPC with the *true* dynamics
  (categorical CEM, H 15) ran the cart off the track after 178 steps in one of 3 episodes, and
  enumeration (H 10, ties to the first sequence) after ~90 in all 3. The bonus (at most 0.1 a
  step, so surviving one more step always scores higher) for a centred cart and an upright
  pole breaks the ties: all 3 episodes lasted 500 steps with either planner.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import gymnasium as gym
import torch

from modelbased.core.env_utils import env_id
from modelbased.envs.cartpole_swingup import ACTION_COST, POLE_LENGTH, REWARD_WIDTH

Tensor = torch.Tensor
RewardFn = Callable[[Tensor, Tensor, Tensor], Tensor]
TerminationFn = Callable[[Tensor, Tensor, Tensor], Tensor]


def no_termination(obs: Tensor, act: Tensor, next_obs: Tensor) -> Tensor:
    """Tasks that only end at the time limit: all False."""
    return torch.zeros(next_obs.shape[0], dtype=torch.bool, device=next_obs.device)


def pendulum_reward(obs: Tensor, act: Tensor, next_obs: Tensor) -> Tensor:
    """Pendulum-v1: obs is ``(cos theta, sin theta, theta_dot)``."""
    theta = torch.atan2(obs[:, 1], obs[:, 0])  # already in (-pi, pi]; the square is the same
    torque = act[:, 0].clamp(-2.0, 2.0)
    return -(theta**2 + 0.1 * obs[:, 2] ** 2 + 0.001 * torque**2)


def mountain_car_termination(obs: Tensor, act: Tensor, next_obs: Tensor) -> Tensor:
    """MountainCarContinuous-v0: obs is ``(position, velocity)``."""
    return (next_obs[:, 0] >= 0.45) & (next_obs[:, 1] >= 0.0)


def mountain_car_reward(obs: Tensor, act: Tensor, next_obs: Tensor) -> Tensor:
    """MountainCarContinuous-v0: 100 on reaching the goal, minus ``0.1 a^2``."""
    reached = mountain_car_termination(obs, act, next_obs).to(next_obs.dtype)
    return 100.0 * reached - 0.1 * act[:, 0] ** 2


def inverted_pendulum_termination(obs: Tensor, act: Tensor, next_obs: Tensor) -> Tensor:
    """InvertedPendulum-v4/v5: obs is ``(cart position, pole angle, cart vel, pole ang. vel)``."""
    return ~torch.isfinite(next_obs).all(dim=1) | (next_obs[:, 1].abs() > 0.2)


def inverted_pendulum_v5_reward(obs: Tensor, act: Tensor, next_obs: Tensor) -> Tensor:
    """InvertedPendulum-v5: 1 per step alive, 0 on the terminal step."""
    return (~inverted_pendulum_termination(obs, act, next_obs)).to(next_obs.dtype)


def inverted_pendulum_v4_reward(obs: Tensor, act: Tensor, next_obs: Tensor) -> Tensor:
    """InvertedPendulum-v4: 1 per step, the terminal one included."""
    return torch.ones(next_obs.shape[0], dtype=next_obs.dtype, device=next_obs.device)


def inverted_pendulum_planning_reward(obs: Tensor, act: Tensor, next_obs: Tensor) -> Tensor:
    """Shaped InvertedPendulum reward for planning (module docstring): centre the cart, keep
    the pole upright, and never prefer falling (the value lies in [0.06, 2] while alive)."""
    alive = (~inverted_pendulum_termination(obs, act, next_obs)).to(next_obs.dtype)
    x, theta = next_obs[:, 0].clamp(-0.6, 0.6), next_obs[:, 1].clamp(-0.2, 0.2)
    return alive * (2.0 - (x / 0.5) ** 2 - 0.5 * (theta / 0.2) ** 2)


def hopper_termination(obs: Tensor, act: Tensor, next_obs: Tensor) -> Tensor:
    """Hopper-v5: obs is ``(z, torso angle, 3 joint angles, 6 velocities)``."""
    healthy = (next_obs[:, 1:].abs() < 100.0).all(dim=1) & torch.isfinite(next_obs).all(dim=1)
    healthy &= (next_obs[:, 0] > 0.7) & (next_obs[:, 1].abs() < 0.2)
    return ~healthy


def cartpole_swingup_reward(obs: Tensor, act: Tensor, next_obs: Tensor) -> Tensor:
    """CartPoleSwingUp: obs is ``(x, cos theta, sin theta, x_dot, theta_dot)``."""
    x, cos, sin = next_obs[:, 0], next_obs[:, 1], next_obs[:, 2]
    dist_sq = (x + POLE_LENGTH * sin) ** 2 + (POLE_LENGTH * cos - POLE_LENGTH) ** 2
    push = act[:, 0].clamp(-1.0, 1.0)
    return torch.exp(-dist_sq / (2 * REWARD_WIDTH**2)) - ACTION_COST * push**2


CARTPOLE_X_LIMIT = 2.4  # CartPole-v1's x_threshold, metres
CARTPOLE_THETA_LIMIT = 12 * 2 * math.pi / 360  # its theta_threshold_radians


def cartpole_termination(obs: Tensor, act: Tensor, next_obs: Tensor) -> Tensor:
    """CartPole-v1: obs is ``(x, x_dot, theta, theta_dot)``; the cart leaves the track or the
    pole leans more than 12 degrees."""
    x, theta = next_obs[:, 0], next_obs[:, 2]
    return (x.abs() > CARTPOLE_X_LIMIT) | (theta.abs() > CARTPOLE_THETA_LIMIT)


def cartpole_reward(obs: Tensor, act: Tensor, next_obs: Tensor) -> Tensor:
    """CartPole-v1: 1 per step, the step on which the pole falls included."""
    return torch.ones(next_obs.shape[0], dtype=next_obs.dtype, device=next_obs.device)


def cartpole_planning_reward(obs: Tensor, act: Tensor, next_obs: Tensor) -> Tensor:
    """Shaped CartPole-v1 reward for planning (module docstring): 1 per step alive plus up to
    0.1 for a centred cart and an upright pole."""
    alive = (~cartpole_termination(obs, act, next_obs)).to(next_obs.dtype)
    x = (next_obs[:, 0] / CARTPOLE_X_LIMIT).clamp(-1.0, 1.0)
    theta = (next_obs[:, 2] / CARTPOLE_THETA_LIMIT).clamp(-1.0, 1.0)
    return alive * (1.0 + 0.1 * (1.0 - 0.5 * x**2 - 0.5 * theta**2))


KNOWN_FUNCTIONS: dict[str, tuple[RewardFn | None, TerminationFn | None]] = {
    "Pendulum-v1": (pendulum_reward, no_termination),
    "MountainCarContinuous-v0": (mountain_car_reward, mountain_car_termination),
    "InvertedPendulum-v4": (inverted_pendulum_v4_reward, inverted_pendulum_termination),
    "InvertedPendulum-v5": (inverted_pendulum_v5_reward, inverted_pendulum_termination),
    "Hopper-v5": (None, hopper_termination),
    "HalfCheetah-v5": (None, no_termination),
    "modelbased/CartPoleSwingUp-v0": (cartpole_swingup_reward, no_termination),
    "CartPole-v1": (cartpole_reward, cartpole_termination),
}


PLANNING_REWARDS: dict[str, RewardFn] = {
    "InvertedPendulum-v4": inverted_pendulum_planning_reward,
    "InvertedPendulum-v5": inverted_pendulum_planning_reward,
    "CartPole-v1": cartpole_planning_reward,
}


def _env_id(env: str | gym.Env) -> str:
    return (env_id(env) or "") if isinstance(env, gym.Env) else env


def planning_reward(env: str | gym.Env) -> RewardFn | None:
    """The shaped planning reward of an env id (or a made env), ``None`` if it has none."""
    return PLANNING_REWARDS.get(_env_id(env))


def known_functions(env: str | gym.Env) -> tuple[RewardFn | None, TerminationFn | None]:
    """``(reward_fn, termination_fn)`` of an env id (or a made env), ``(None, None)`` if unknown.

    The functions assume the environment's default constructor arguments.
    """
    return KNOWN_FUNCTIONS.get(_env_id(env), (None, None))


SaturatingCostSpec = tuple[list[list[float]], list[float], float]
"""``(projection P [K, o], target [K], width)``: PILCO's cost ``1 - exp(-|P s - target|^2 /
(2 width^2))`` on a linear projection of the observation (Deisenroth & Rasmussen 2011, eq. 25)."""

SATURATING_COSTS: dict[str, SaturatingCostSpec] = {
    # the pendulum tip (length 1) from (cos, sin, theta_dot) to the top; PILCO's width 0.5
    "Pendulum-v1": ([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [1.0, 0.0], 0.5),
    # the pole tip (x + L sin, L cos) to (0, L), as PILCO's cart-pole (width 0.25)
    "modelbased/CartPoleSwingUp-v0": (
        [[1.0, 0.0, POLE_LENGTH, 0.0, 0.0], [0.0, POLE_LENGTH, 0.0, 0.0, 0.0]],
        [0.0, POLE_LENGTH],
        0.25,
    ),
    # (x, theta, x_dot, theta_dot): the cart within about 1 m, the pole within its 0.2 rad
    "InvertedPendulum-v4": ([[0.5, 0.0, 0.0, 0.0], [0.0, 5.0, 0.0, 0.0]], [0.0, 0.0], 1.0),
    "InvertedPendulum-v5": ([[0.5, 0.0, 0.0, 0.0], [0.0, 5.0, 0.0, 0.0]], [0.0, 0.0], 1.0),
}


def saturating_cost(env: str | gym.Env) -> SaturatingCostSpec | None:
    """PILCO's saturating cost of an env id (or a made env), ``None`` if none is defined."""
    return SATURATING_COSTS.get(_env_id(env))
