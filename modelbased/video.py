"""Recording an agent's evaluation episode to an MP4 file (needs ``modelbased[video]``)."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np

from modelbased.core.agent import Agent
from modelbased.core.errors import ModelbasedError
from modelbased.core.seeding import derive_seed, make_rng


def record_video(agent: Agent, path: str | Path, seed: int, fps: int | None = None) -> int:
    """Play one deterministic episode with ``render_mode='rgb_array'``; returns frames written."""
    try:
        import imageio.v2 as imageio
    except ImportError as exc:
        raise ModelbasedError(
            "--video needs imageio and imageio-ffmpeg: pip install 'modelbased[video]'"
        ) from exc
    if agent.env_id is None:
        raise ModelbasedError("--video needs an env with a registered id")
    try:
        env = gym.make(agent.env_id, render_mode="rgb_array")
    except (gym.error.Error, TypeError) as exc:
        raise ModelbasedError(f"{agent.env_id} cannot render frames: {exc}") from exc
    rng = make_rng(seed, "act")
    obs, _ = env.reset(seed=derive_seed(seed, 0))
    try:
        frames = [env.render()]
    except gym.error.DependencyNotInstalled as exc:
        raise ModelbasedError(f"{agent.env_id} cannot render frames: {exc}") from exc
    done = False
    while not done:
        obs, _, terminated, truncated, _ = env.step(agent.policy(obs, True, rng))
        frames.append(env.render())
        done = terminated or truncated
    fps = fps or env.metadata.get("render_fps", 30)
    env.close()
    with imageio.get_writer(str(path), fps=fps, macro_block_size=1) as writer:
        for frame in frames:
            writer.append_data(np.asarray(frame, dtype=np.uint8))
    return len(frames)
