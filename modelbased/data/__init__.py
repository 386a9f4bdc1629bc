"""Data: replay of transitions (and, with later issues, of sequences), datasets on disk."""

from modelbased.data.replay import Batch, ReplayBuffer

__all__ = ["Batch", "ReplayBuffer"]
