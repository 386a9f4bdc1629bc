"""Seeding: every random stream is derived from the run's seed and a purpose, so a rerun with
the same seed reproduces training and evaluation exactly, and a resumed run continues the same
streams from its checkpoint."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def derive_seed(seed: int, *path: int | str) -> int:
    """A 32-bit seed for the stream named by ``path`` (e.g. ``("episode", 12)``)."""
    words = [int(seed) & 0xFFFFFFFF]
    for part in path:
        if isinstance(part, str):
            words.extend(part.encode())
        else:
            words.append(int(part) & 0xFFFFFFFF)
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def make_rng(seed: int, *path: int | str) -> np.random.Generator:
    """A numpy generator seeded with ``derive_seed(seed, *path)``: one independent stream per
    path."""
    return np.random.default_rng(derive_seed(seed, *path))


def seed_everything(seed: int) -> None:
    """Seed the global generators some libraries still read (torch, random, numpy legacy)."""
    random.seed(seed)
    np.random.seed(derive_seed(seed, "numpy-global"))
    torch.manual_seed(seed)


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """The generator's bit-generator state (plain data, as checkpoints store it)."""
    return rng.bit_generator.state


def set_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    """Restore a state from :func:`rng_state`."""
    rng.bit_generator.state = state
