"""Recording an agent's evaluation episode to an MP4 file (needs ``modelbased[video]``: imageio
with its ffmpeg, and pygame for Gymnasium's classic-control and toy-text renderers)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from modelbased.core.agent import Agent
from modelbased.core.checkpoint import shorten
from modelbased.core.errors import ModelbasedError, OutputError
from modelbased.core.seeding import derive_seed, make_rng


def record_video(agent: Agent, path: str | Path, seed: int, fps: int | None = None) -> int:
    """Play one deterministic episode with ``render_mode='rgb_array'``; returns frames written.

    An env that cannot draw frames (no ``rgb_array`` mode, a renderer's package missing, no
    display for OpenGL) is a :class:`ModelbasedError` of one line; a file that cannot be written
    an :class:`OutputError`.
    """
    try:
        import imageio.v2 as imageio
    except ImportError as exc:
        raise ModelbasedError(
            "--video needs imageio and imageio-ffmpeg: pip install 'modelbased[video]'"
        ) from exc
    if agent.env_id is None:
        raise ModelbasedError("--video needs an env with a registered id")
    if Path(path).suffix.lower() != ".mp4":
        raise OutputError(f"cannot write {path}: --video writes MP4 files (FILE.mp4)")
    if "rgb_array" not in agent.env.metadata.get("render_modes", []):
        raise ModelbasedError(f"{agent.env_id} cannot render frames: it has no rgb_array mode")
    env = _render_env(agent.env_id)
    rng = make_rng(seed, "act")
    obs, _ = env.reset(seed=derive_seed(seed, 0))
    frames = [_frame(env, agent.env_id)]
    done = False
    while not done:
        obs, _, terminated, truncated, _ = env.step(agent.policy(obs, True, rng))
        frames.append(_frame(env, agent.env_id))
        done = terminated or truncated
    fps = fps or env.metadata.get("render_fps", 30)
    env.close()
    try:
        with imageio.get_writer(str(path), fps=fps, macro_block_size=1) as writer:
            for frame in frames:
                writer.append_data(frame)
    except (OSError, RuntimeError, ValueError) as exc:
        Path(path).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {shorten(str(exc))}") from exc
    return len(frames)


def _render_env(env_id: str) -> gym.Env:
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        # off-screen frames need no window: without this SDL probes for one and prints
        # "error: XDG_RUNTIME_DIR is invalid" on a headless machine (pygame renderers)
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    try:
        env = gym.make(env_id, render_mode="rgb_array")
    except Exception as exc:  # whatever the env raises, it cannot render
        raise ModelbasedError(f"{env_id} cannot render frames: {_why(exc)}") from exc
    return env


def _frame(env: gym.Env, env_id: str) -> np.ndarray:
    try:
        frame: Any = env.render()
    except Exception as exc:  # pygame missing, no OpenGL display, ...
        raise ModelbasedError(f"{env_id} cannot render frames: {_why(exc)}") from exc
    if frame is None:
        raise ModelbasedError(f"{env_id} cannot render frames: its renderer returned nothing")
    return np.asarray(frame, dtype=np.uint8)


def _why(exc: Exception) -> str:
    text = shorten(str(exc), 160)
    if isinstance(exc, (ImportError, gym.error.DependencyNotInstalled)):
        return f"{text} (pip install 'modelbased[video]')"
    return text or type(exc).__name__
