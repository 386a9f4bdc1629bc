"""Replay of sequences for latent world models (PlaNet, Hafner et al. 2019; Dreamer V1-V3,
Hafner et al. 2020, 2021, 2023): uniform chunks of ``T`` consecutive steps, and the replay
ratio that says how many gradient steps each env step buys.

Steps are stored in the order they happen, in one ring of ``capacity`` slots. Step ``t``
holds what the agent sees on arriving there::

    obs_t, action_{t-1} (zeros at an episode's first step), reward_t (0 at the first step),
    is_first_t, is_terminal_t

so an RSSM reads a chunk as ``h_t = f(h_{t-1}, z_{t-1}, a_{t-1})``, ``z_t ~ q(z | h_t, o_t)``.
A chunk may run across an episode's end: the new episode's first step carries
``is_first = True``, and the model restarts its latent state there. The first step of every
sampled chunk is flagged too (the model starts a chunk from its initial state), so no chunk
ever joins two episodes unflagged. Chunks start anywhere in the written, chronological part
of the ring (absolute times ``[max(0, n - capacity), n - T]``, ``n`` steps written), so a
chunk never crosses the ring's seam between the newest and the oldest step.

:class:`ReplayRatio` turns env steps into gradient steps at ``ratio`` replayed steps per env
step (DreamerV3's ``train_ratio``): each gradient step replays ``B * T`` steps.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class SequenceReplay:
    """A ring of ``capacity`` steps sampled as ``[B, T]`` chunks (see the module docstring)."""

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        action_dim: int,
        obs_dtype: Any = np.float32,
    ) -> None:
        self.capacity = int(capacity)
        self.obs = np.zeros((self.capacity, *obs_shape), dtype=obs_dtype)
        self.action = np.zeros((self.capacity, action_dim), dtype=np.float32)
        self.reward = np.zeros(self.capacity, dtype=np.float32)
        self.is_first = np.zeros(self.capacity, dtype=bool)
        self.is_terminal = np.zeros(self.capacity, dtype=bool)
        self.steps = 0  # steps ever written; the newest is at (steps - 1) % capacity

    def __len__(self) -> int:
        return min(self.steps, self.capacity)

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: float,
        is_first: bool,
        is_terminal: bool,
    ) -> None:
        """Append one step: ``obs [*O]`` arrived at by ``action [A]`` (zeros when
        ``is_first``) with ``reward``."""
        slot = self.steps % self.capacity
        self.obs[slot], self.action[slot] = obs, action
        self.reward[slot], self.is_first[slot] = reward, is_first
        self.is_terminal[slot] = is_terminal
        self.steps += 1

    def can_sample(self, length: int) -> bool:
        """Whether a chunk of ``length`` steps fits in what is written."""
        return len(self) >= length

    def sample(self, batch_size: int, length: int, rng: np.random.Generator) -> dict[str, Any]:
        """``batch_size`` chunks of ``length`` steps with uniform starts: ``obs [B, T, *O]``,
        ``action [B, T, A]`` (the action into each step), ``reward [B, T]``, ``is_first
        [B, T]`` (True at every chunk's first step), ``is_terminal [B, T]``."""
        if not self.can_sample(length):
            raise ValueError(f"the replay holds {len(self)} steps; a chunk needs {length}")
        oldest = self.steps - len(self)
        start = oldest + rng.integers(self.steps - length - oldest + 1, size=batch_size)
        slots = (start[:, None] + np.arange(length)) % self.capacity  # [B, T]
        is_first = self.is_first[slots]
        is_first[:, 0] = True
        return {
            "obs": self.obs[slots],
            "action": self.action[slots],
            "reward": self.reward[slots],
            "is_first": is_first,
            "is_terminal": self.is_terminal[slots],
        }

    def state_dict(self) -> dict[str, Any]:
        """The written steps in chronological order and the step count (a smaller file than
        the whole ring while it fills)."""
        order = (np.arange(self.steps - len(self), self.steps)) % self.capacity
        names = ("obs", "action", "reward", "is_first", "is_terminal")
        return {k: getattr(self, k)[order] for k in names} | {"steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` wrote (same capacity and shapes)."""
        steps = int(state["steps"])
        n = min(steps, self.capacity)
        order = (np.arange(steps - n, steps)) % self.capacity
        for key in ("obs", "action", "reward", "is_first", "is_terminal"):
            value = np.asarray(state[key])
            if len(value) != n:
                raise ValueError(f"replay {key} holds {len(value)} steps, expected {n}")
            getattr(self, key)[order] = value
        self.steps = steps


class ReplayRatio:
    """Gradient steps due at ``ratio`` replayed steps per env step, each replaying
    ``batch_steps = B * T`` steps; the fractional remainder carries over (and is checkpointed)."""

    def __init__(self, ratio: float, batch_steps: int) -> None:
        self.per_step = float(ratio) / int(batch_steps)
        self.credit = 0.0

    def due(self, env_steps: int = 1) -> int:
        """Gradient steps earned by ``env_steps`` more env steps."""
        self.credit += env_steps * self.per_step
        updates = math.floor(self.credit)
        self.credit -= updates
        return updates

    def state_dict(self) -> dict[str, float]:
        """The fractional credit."""
        return {"credit": self.credit}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        credit = float(state["credit"])
        if not math.isfinite(credit):
            raise ValueError("replay ratio credit is not finite")
        self.credit = credit
