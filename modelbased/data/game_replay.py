"""Replay of self-play positions for AlphaZero: ``(state, pi, z)`` rows in a ring buffer.

``state`` is a canonical board ``int8 [H, W]``, ``pi`` the search's visit distribution ``[A]``
and ``z`` the game's final result for the player to move in that state (+1, 0, -1).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class PositionReplay:
    """Ring buffer of self-play positions ``(state [H, W], pi [A], z)`` for AlphaZero's training."""

    def __init__(self, capacity: int, board_shape: tuple[int, ...], num_actions: int) -> None:
        self.capacity = int(capacity)
        self.states = np.zeros((capacity, *board_shape), dtype=np.int8)
        self.pis = np.zeros((capacity, num_actions), dtype=np.float32)
        self.z = np.zeros(capacity, dtype=np.float32)
        self.size = 0
        self.pos = 0

    def __len__(self) -> int:
        return self.size

    def add(self, states: np.ndarray, pis: np.ndarray, z: np.ndarray) -> None:
        """Append ``states [k, H, W]``, ``pis [k, A]``, ``z [k]``, overwriting the oldest."""
        for start in range(0, len(states), self.capacity):
            s, p, v = (x[start : start + self.capacity] for x in (states, pis, z))
            idx = (self.pos + np.arange(len(s))) % self.capacity
            self.states[idx], self.pis[idx], self.z[idx] = s, p, v
            self.pos = int((self.pos + len(s)) % self.capacity)
            self.size = min(self.capacity, self.size + len(s))

    def sample(
        self, batch_size: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``batch_size`` positions drawn uniformly with replacement: ``(states, pis, z)``."""
        idx = rng.integers(0, self.size, size=batch_size)
        return self.states[idx], self.pis[idx], self.z[idx]

    def state_dict(self) -> dict[str, Any]:
        """The positions, oldest first."""
        n = self.size
        order = (np.arange(n) + (self.pos if n == self.capacity else 0)) % self.capacity
        return {"states": self.states[order], "pis": self.pis[order], "z": self.z[order]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replace the contents with the positions of :meth:`state_dict`."""
        self.size, self.pos = 0, 0
        self.add(*(np.asarray(state[k]) for k in ("states", "pis", "z")))
