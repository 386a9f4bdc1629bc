"""Pixel versions of classic control tasks, as PlaNet and Dreamer see the world (Hafner et al.
2019, 2020): 64x64 RGB frames rendered off-screen, and action repeat as a wrapper.

* :class:`PixelObservation` replaces an env's observation by a ``uint8 [64, 64, 3]`` frame from
  a render function of the unwrapped env (numpy only: no display, no OpenGL, about 0.1 ms).
* :func:`pendulum_frame` and :func:`swingup_frame` draw Pendulum-v1 and the cart-pole swing-up
  with lines a few pixels wide, so that the pole survives the small size.
* :class:`RenderedObservation` does the same for any env with ``render_mode="rgb_array"``, its
  frame resized to 64x64 (nearest neighbour): any Gymnasium task as pixels.
* :class:`ActionRepeat` repeats each action ``repeat`` times, summing the rewards (stopping at
  the end of the episode).

Registered ids: ``modelbased/PixelPendulum-v0`` and ``modelbased/PixelCartPoleSwingUp-v0``
(``gym.make(id, action_repeat=2)`` to repeat actions; default 1, so env steps are the task's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from modelbased.envs.cartpole_swingup import POLE_LENGTH, TRACK_LIMIT

SIZE = 64


def _grid(size: int, half_width: float, centre_y: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres in world units (y up): a view ``2 * half_width`` wide around (0, centre_y)."""
    scale = size / (2 * half_width)
    rows, cols = np.mgrid[0:size, 0:size] + 0.5
    return (cols - size / 2) / scale, centre_y + (size / 2 - rows) / scale


def _segment(px: np.ndarray, py: np.ndarray, a: tuple[float, float], b: tuple[float, float]):
    """Distance of every pixel centre to the segment from ``a`` to ``b``."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    t = np.clip(((px - a[0]) * dx + (py - a[1]) * dy) / max(dx * dx + dy * dy, 1e-12), 0, 1)
    return np.hypot(px - a[0] - t * dx, py - a[1] - t * dy)


_PENDULUM_GRID = _grid(SIZE, 1.25)
_SWINGUP_GRID = _grid(SIZE, TRACK_LIMIT + 0.3, 0.1)


def pendulum_frame(env: Any) -> np.ndarray:
    """Pendulum-v1 (``env.state = (theta, theta_dot)``, theta 0 upright) as ``[64, 64, 3]``."""
    theta = float(env.state[0])
    px, py = _PENDULUM_GRID
    img = np.full((SIZE, SIZE, 3), 255, dtype=np.uint8)
    tip = (np.sin(theta), np.cos(theta))
    img[_segment(px, py, (0.0, 0.0), tip) < 0.09] = (204, 77, 77)
    img[np.hypot(px, py) < 0.07] = (40, 40, 40)
    return img


def swingup_frame(env: Any) -> np.ndarray:
    """The cart-pole swing-up (``env.state = (x, x_dot, theta, theta_dot)``) as
    ``[64, 64, 3]``: track, cart, pole and the tip's target."""
    x, _, theta, _ = (float(v) for v in env.state)
    px, py = _SWINGUP_GRID
    img = np.full((SIZE, SIZE, 3), 255, dtype=np.uint8)
    img[np.abs(py) < 0.05] = (150, 150, 150)  # track
    img[(np.abs(np.abs(px) - TRACK_LIMIT) < 0.08) & (np.abs(py) < 0.3)] = (150, 150, 150)
    img[np.hypot(px, py - POLE_LENGTH) < 0.12] = (60, 170, 60)  # target for the tip
    img[(np.abs(px - x) < 0.35) & (np.abs(py) < 0.15)] = (40, 40, 40)  # cart
    tip = (x + POLE_LENGTH * np.sin(theta), POLE_LENGTH * np.cos(theta))
    img[_segment(px, py, (x, 0.0), tip) < 0.09] = (200, 140, 80)
    return img


class PixelObservation(gym.ObservationWrapper):
    """Observations replaced by ``render(env.unwrapped) -> uint8 [64, 64, 3]``."""

    def __init__(self, env: gym.Env, render: Callable[[Any], np.ndarray]) -> None:
        super().__init__(env)
        self.render_frame = render
        self.observation_space = gym.spaces.Box(0, 255, (SIZE, SIZE, 3), np.uint8)

    def observation(self, observation: Any) -> np.ndarray:
        """The frame of the env's current state."""
        return self.render_frame(self.env.unwrapped)


class RenderedObservation(gym.ObservationWrapper):
    """Observations replaced by the env's own ``rgb_array`` frame resized to ``size x size``
    (nearest neighbour); the env must be made with ``render_mode="rgb_array"``."""

    def __init__(self, env: gym.Env, size: int = SIZE) -> None:
        super().__init__(env)
        if env.render_mode != "rgb_array":
            raise ValueError("RenderedObservation needs an env made with render_mode='rgb_array'")
        self.size = size
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)

    def observation(self, observation: Any) -> np.ndarray:
        """The env's frame, resized."""
        frame = np.asarray(self.env.render())
        rows = (np.arange(self.size) + 0.5) * frame.shape[0] / self.size
        cols = (np.arange(self.size) + 0.5) * frame.shape[1] / self.size
        return np.ascontiguousarray(frame[rows.astype(int)][:, cols.astype(int), :3])


class ActionRepeat(gym.Wrapper):
    """Each action taken ``repeat`` times; the rewards summed; stops early at an episode end."""

    def __init__(self, env: gym.Env, repeat: int) -> None:
        super().__init__(env)
        if repeat < 1:
            raise ValueError(f"action repeat must be >= 1, got {repeat}")
        self.repeat = int(repeat)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """``repeat`` env steps with ``action``; the summed reward."""
        total = 0.0
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


def make_pixel_pendulum(action_repeat: int = 1, **kwargs: Any) -> gym.Env:
    """``modelbased/PixelPendulum-v0``: Pendulum-v1 (200 steps) seen as 64x64 RGB frames."""
    env = PixelObservation(gym.make("Pendulum-v1", **kwargs), pendulum_frame)
    return ActionRepeat(env, action_repeat) if action_repeat > 1 else env


def make_pixel_swingup(action_repeat: int = 1, **kwargs: Any) -> gym.Env:
    """``modelbased/PixelCartPoleSwingUp-v0``: the swing-up (200 steps) as 64x64 RGB frames."""
    env = PixelObservation(gym.make("modelbased/CartPoleSwingUp-v0", **kwargs), swingup_frame)
    return ActionRepeat(env, action_repeat) if action_repeat > 1 else env
