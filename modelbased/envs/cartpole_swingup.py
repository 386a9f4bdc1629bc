"""Continuous cart-pole swing-up, the "cartpole" task of PETS (Chua et al., 2018).

The pole starts hanging down and the agent pushes the cart, with a force in [-1, 1] times
``force_mag``, to swing it up and balance it with its tip above the middle of the track.

Physics: a cart of mass ``CART_MASS`` on a frictionless track carrying a uniform rod of mass
``POLE_MASS`` and length ``POLE_LENGTH`` (pivot to tip). The equations of motion are the
standard cart-pole ones (Barto, Sutton & Anderson, 1983) in the corrected form of Florian
(2007), without friction; ``theta`` is 0 upright and pi hanging down, positive clockwise (the
tip moves towards +x). Each step of ``dt = 0.04`` s (PETS's control period) runs ``substeps``
semi-implicit Euler steps. The track ends at ``+-TRACK_LIMIT``: a cart reaching an end stops
there (an inelastic impulse on the cart, which also kicks the pole as the mechanics demand).
There is no termination: episodes end at the time limit of 200 steps (8 s).

Observation: ``(x, cos theta, sin theta, x_dot, theta_dot)`` as float32.

Reward, from the next observation and the action clipped to [-1, 1], PETS-style::

    r = exp(-|tip - target|^2 / (2 * REWARD_WIDTH^2)) - ACTION_COST * a^2

with ``tip = (x + L sin theta, L cos theta)`` and ``target = (0, L)``, ``L = POLE_LENGTH``.
A step earns at most 1 (pole upright over the centre, no push) and at least -0.01, so the
maximum return of a 200-step episode is 200 (``MAX_RETURN``). The pole cannot be swung up at
once: a true-model CEM planner collects about 192, a random policy about 24.

Differences from PETS, whose task is a MuJoCo model: analytic physics with a light cart
(1 kg, 0.5 kg pole, 40 N, about twice PETS's force-to-mass ratio, so one swing suffices),
a Gaussian of width 0.6 in the ``2 * width^2`` form (PETS divides by ``width^2``), and the
action cost on a in [-1, 1] rather than on PETS's motor command in [-3, 3].
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

GRAVITY = 9.81
CART_MASS = 1.0
POLE_MASS = 0.5
POLE_LENGTH = 0.6  # pivot to tip; the centre of mass is at half of it
FORCE_MAG = 40.0
TRACK_LIMIT = 2.5
REWARD_WIDTH = 0.6
ACTION_COST = 0.01
MAX_EPISODE_STEPS = 200
MAX_RETURN = float(MAX_EPISODE_STEPS)

_HALF = POLE_LENGTH / 2
_INERTIA = 4.0 / 3.0 * POLE_MASS * _HALF**2  # rod about its pivot
_TOTAL = CART_MASS + POLE_MASS


def accelerations(
    x_dot: np.ndarray, theta: np.ndarray, theta_dot: np.ndarray, force: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(x_ddot, theta_ddot)`` from the Lagrangian equations of the frictionless cart-pole."""
    del x_dot  # no friction
    cos, sin = np.cos(theta), np.sin(theta)
    coupling = POLE_MASS * _HALF * cos
    cart_side = force + POLE_MASS * _HALF * sin * theta_dot**2
    pole_side = POLE_MASS * GRAVITY * _HALF * sin
    det = _TOTAL * _INERTIA - coupling**2
    x_ddot = (_INERTIA * cart_side - coupling * pole_side) / det
    theta_ddot = (_TOTAL * pole_side - coupling * cart_side) / det
    return x_ddot, theta_ddot


def energy(state: np.ndarray) -> np.ndarray:
    """Total mechanical energy of ``state = [..., (x, x_dot, theta, theta_dot)]`` in joules."""
    _, x_dot, theta, theta_dot = np.moveaxis(np.asarray(state, dtype=np.float64), -1, 0)
    kinetic = (
        0.5 * _TOTAL * x_dot**2
        + POLE_MASS * _HALF * np.cos(theta) * x_dot * theta_dot
        + 0.5 * _INERTIA * theta_dot**2
    )
    return kinetic + POLE_MASS * GRAVITY * _HALF * np.cos(theta)


def swingup_reward(next_obs: np.ndarray, action: np.ndarray) -> np.ndarray:
    """The reward above for a batch ``next_obs [..., 5]``, ``action [..., 1]`` (numpy)."""
    x, cos, sin = next_obs[..., 0], next_obs[..., 1], next_obs[..., 2]
    dist_sq = (x + POLE_LENGTH * sin) ** 2 + (POLE_LENGTH * cos - POLE_LENGTH) ** 2
    push = np.clip(action[..., 0], -1.0, 1.0)
    return np.exp(-dist_sq / (2 * REWARD_WIDTH**2)) - ACTION_COST * push**2


class CartPoleSwingUp(gym.Env):
    """Swing the pole up from hanging down and balance it; see the module docstring."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 25}

    def __init__(
        self,
        render_mode: str | None = None,
        force_mag: float = FORCE_MAG,
        dt: float = 0.04,
        substeps: int = 4,
        reset_noise: float = 0.05,
    ) -> None:
        self.render_mode = render_mode
        self.force_mag, self.dt, self.substeps = force_mag, dt, substeps
        self.reset_noise = reset_noise
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        high = np.array([TRACK_LIMIT, 1.0, 1.0, np.inf, np.inf], dtype=np.float32)
        self.observation_space = gym.spaces.Box(-high, high, dtype=np.float32)
        self.state = np.array([0.0, 0.0, np.pi, 0.0])  # x, x_dot, theta, theta_dot

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start hanging down (theta = pi) at rest, plus N(0, ``reset_noise``) on each state
        variable."""
        super().reset(seed=seed)
        noise = self.np_random.normal(0.0, self.reset_noise, size=4)
        self.state = np.array([0.0, 0.0, np.pi, 0.0]) + noise
        return self._obs(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Push with ``force_mag * clip(action, -1, 1)`` for ``dt`` (semi-implicit Euler
        substeps); the reward of the module docstring; the episode never terminates (the time
        limit ends it)."""
        action = np.asarray(action, dtype=np.float64).reshape(1)
        force = self.force_mag * float(np.clip(action[0], -1.0, 1.0))
        x, x_dot, theta, theta_dot = self.state
        h = self.dt / self.substeps
        for _ in range(self.substeps):
            x_ddot, theta_ddot = accelerations(x_dot, theta, theta_dot, force)
            x_dot, theta_dot = x_dot + h * x_ddot, theta_dot + h * theta_ddot
            x, theta = x + h * x_dot, theta + h * theta_dot
            if abs(x) > TRACK_LIMIT:
                # The end stop's impulse cancels the cart's momentum; the pole keeps its own.
                theta_dot += POLE_MASS * _HALF * np.cos(theta) * x_dot / _INERTIA
                x, x_dot = float(np.clip(x, -TRACK_LIMIT, TRACK_LIMIT)), 0.0
        self.state = np.array([x, x_dot, theta, theta_dot])
        obs = self._obs()
        reward = float(swingup_reward(obs.astype(np.float64), action))
        return obs, reward, False, False, {}

    def _obs(self) -> np.ndarray:
        x, x_dot, theta, theta_dot = self.state
        return np.array([x, np.cos(theta), np.sin(theta), x_dot, theta_dot], dtype=np.float32)

    def render(self) -> np.ndarray | None:
        """An RGB image ``[H, W, 3]`` with ``render_mode="rgb_array"``, else ``None``."""
        if self.render_mode != "rgb_array":
            return None
        return self._image()

    def _image(self, width: int = 480, height: int = 240) -> np.ndarray:
        scale = width / (2 * TRACK_LIMIT + 1.0)  # pixels per metre
        rows, cols = np.mgrid[0:height, 0:width]
        px, py = (cols - width / 2) / scale, (height * 0.55 - rows) / scale  # metres, y up
        img = np.full((height, width, 3), 255, dtype=np.uint8)
        img[np.abs(py) < 0.01] = (120, 120, 120)  # track
        img[(np.abs(np.abs(px) - TRACK_LIMIT) < 0.02) & (np.abs(py) < 0.1)] = (120, 120, 120)
        x, _, theta, _ = self.state
        img[(np.abs(px - x) < 0.2) & (np.abs(py) < 0.07)] = (40, 40, 40)  # cart
        tip = np.array([x + POLE_LENGTH * np.sin(theta), POLE_LENGTH * np.cos(theta)])
        along = ((px - x) * (tip[0] - x) + py * tip[1]) / POLE_LENGTH**2
        t = np.clip(along, 0.0, 1.0)
        near_pole = np.hypot(px - x - t * (tip[0] - x), py - t * tip[1]) < 0.03
        img[near_pole] = (200, 140, 80)
        img[np.hypot(px, py - POLE_LENGTH) < 0.04] = (60, 170, 60)  # target for the tip
        return img
