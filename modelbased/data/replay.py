"""Experience replay of single transitions (Lin 1992; Mnih et al. 2015), as used by PETS
(Chua et al. 2018), MBPO (Janner et al. 2019) and SAC (Haarnoja et al. 2018).

* :class:`Batch` — transitions ``(obs, action, reward, next_obs, terminated, truncated)`` as
  numpy arrays with a leading batch dimension, convertible to torch tensors.
* :class:`ReplayBuffer` — a preallocated numpy ring buffer of those transitions: uniform
  sampling, all rows at once (what :meth:`EnsembleModel.fit` reads; its holdout split,
  bootstrap resamples and minibatches are tensor steps of
  :mod:`modelbased.models.ensemble_training`), and atomic ``.npz`` files.

Rows are addressed by *logical* index ``0 .. len-1``, oldest first. Once the buffer is full,
each ``add`` shifts them by one, so an index holds only until the next ``add``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import DTypeLike

from modelbased.core.checkpoint import atomic_write
from modelbased.core.env_utils import env_name
from modelbased.core.errors import CheckpointError, DataError, UnsupportedSpaceError

_FORMAT = "modelbased.ReplayBuffer/1"


@dataclasses.dataclass
class Batch:
    """A batch of transitions as numpy arrays with a leading batch dimension."""

    obs: np.ndarray  # [B, *obs_shape]
    action: np.ndarray  # [B, *action_shape]
    reward: np.ndarray  # [B] float32
    next_obs: np.ndarray  # [B, *obs_shape]
    terminated: np.ndarray  # [B] bool
    truncated: np.ndarray  # [B] bool

    FIELDS: ClassVar[tuple[str, ...]] = (
        "obs",
        "action",
        "reward",
        "next_obs",
        "terminated",
        "truncated",
    )

    def __len__(self) -> int:
        return len(self.reward)

    def to_torch(self, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        """float32 tensors for ``obs, action, reward, next_obs``; bool for the two flags."""
        flags = ("terminated", "truncated")
        return {
            k: torch.as_tensor(v, dtype=torch.bool if k in flags else torch.float32, device=device)
            for k, v in vars(self).items()
        }


def _shape_str(shape: tuple[Any, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


class ReplayBuffer:
    """A ring buffer of ``capacity`` transitions; when full, ``add`` overwrites the oldest."""

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        action_shape: tuple[int, ...],
        obs_dtype: DTypeLike = np.float32,
        action_dtype: DTypeLike = np.float32,
    ) -> None:
        if (
            not isinstance(capacity, (int, np.integer))
            or isinstance(capacity, bool)
            or capacity < 1
        ):
            raise DataError(f"capacity must be an int >= 1, got {capacity!r}")
        self.capacity = int(capacity)
        self.obs_shape = tuple(int(d) for d in obs_shape)
        self.action_shape = tuple(int(d) for d in action_shape)
        self.obs_dtype, self.action_dtype = np.dtype(obs_dtype), np.dtype(action_dtype)
        shapes = (self.obs_shape, self.action_shape, (), self.obs_shape, (), ())
        dtypes = (self.obs_dtype, self.action_dtype, np.float32, self.obs_dtype, bool, bool)
        self._row_shapes = dict(zip(Batch.FIELDS, shapes, strict=True))
        self._storage = {
            name: np.zeros((self.capacity, *shape), dtype=dtype)
            for name, shape, dtype in zip(Batch.FIELDS, shapes, dtypes, strict=True)
        }
        self._ptr = 0  # physical row the next add writes
        self._size = 0

    @classmethod
    def for_env(cls, env: gym.Env, capacity: int) -> ReplayBuffer:
        """Box spaces are stored as float32 of their shape, Discrete ones as int64 scalars."""
        specs = []
        for kind, space in (("observation", env.observation_space), ("action", env.action_space)):
            if isinstance(space, gym.spaces.Box):
                specs.append((space.shape, np.float32))
            elif isinstance(space, gym.spaces.Discrete):
                specs.append(((), np.int64))
            else:
                name = env_name(env)
                raise UnsupportedSpaceError(
                    f"ReplayBuffer stores Box or Discrete spaces; {name} has {kind} space {space}"
                )
        (obs_shape, obs_dtype), (action_shape, action_dtype) = specs
        return cls(capacity, obs_shape, action_shape, obs_dtype, action_dtype)

    def __len__(self) -> int:
        return self._size

    @property
    def _start(self) -> int:
        """Physical row of logical index 0 (the oldest transition)."""
        return (self._ptr - self._size) % self.capacity

    def _checked(self, values: tuple[Any, ...], batched: bool) -> dict[str, np.ndarray]:
        """The six fields as arrays, in ``Batch.FIELDS`` order, after checking their shapes."""
        arrays = {name: np.asarray(v) for name, v in zip(Batch.FIELDS, values, strict=True)}
        for name, arr in arrays.items():
            row = self._row_shapes[name]
            if arr.shape[int(batched) :] != row or arr.ndim != len(row) + int(batched):
                expected = ("N", *row) if batched else row
                raise DataError(
                    f"{name} has shape {_shape_str(arr.shape)}, expected {_shape_str(expected)}"
                )
        if batched and len({len(arr) for arr in arrays.values()}) > 1:
            rows = ", ".join(f"{name} {len(arr)}" for name, arr in arrays.items())
            raise DataError(f"fields disagree on the number of rows: {rows}")
        return arrays

    def add(self, obs, action, reward, next_obs, terminated, truncated) -> None:
        """Store one transition (no leading batch dimension)."""
        for name, arr in self._checked(
            (obs, action, reward, next_obs, terminated, truncated), False
        ).items():
            self._storage[name][self._ptr] = arr
        self._ptr = (self._ptr + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)

    def add_batch(self, obs, action, reward, next_obs, terminated, truncated) -> None:
        """Store ``N`` transitions as if added one by one: only the last ``capacity`` remain."""
        arrays = self._checked((obs, action, reward, next_obs, terminated, truncated), True)
        n = len(arrays["reward"])
        kept = min(n, self.capacity)
        rows = (self._ptr + np.arange(n - kept, n)) % self.capacity
        for name, arr in arrays.items():
            self._storage[name][rows] = arr[n - kept :]
        self._ptr = (self._ptr + n) % self.capacity
        self._size = min(self._size + n, self.capacity)

    def _physical(self, indices: np.ndarray) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise IndexError(f"indices must be a 1-D integer array, got {idx.dtype} {idx.shape}")
        if idx.size and (idx.min() < 0 or idx.max() >= self._size):
            raise IndexError(
                f"indices must lie in [0, {self._size}), got [{idx.min()}, {idx.max()}]"
            )
        return (self._start + idx.astype(np.int64)) % self.capacity

    def get(self, indices: np.ndarray) -> Batch:
        """Rows by logical index (0 = oldest), copied out of the buffer."""
        rows = self._physical(indices)
        return Batch(**{name: arr[rows] for name, arr in self._storage.items()})

    def all(self) -> Batch:
        """Every stored row, oldest first (copies)."""
        return self.get(np.arange(self._size))

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """``batch_size`` rows drawn uniformly with replacement."""
        if self._size == 0:
            raise DataError("cannot sample from an empty ReplayBuffer; add transitions first")
        return self.get(rng.integers(0, self._size, size=batch_size))

    def check_finite(self) -> None:
        """Raise :class:`DataError` naming the first of obs/action/reward/next_obs with NaN or
        inf, how many rows hold it and the first such logical row."""
        for name in ("obs", "action", "reward", "next_obs"):
            arr = self._storage[name][: self._size]
            if not np.issubdtype(arr.dtype, np.floating):
                continue
            arr = arr.reshape(self._size, math.prod(arr.shape[1:]))
            nan, inf = np.isnan(arr).any(axis=1), np.isinf(arr).any(axis=1)
            bad = nan | inf
            if bad.any():
                what = " and ".join(w for w, m in (("NaN", nan), ("inf", inf)) if m.any())
                first = int(((np.flatnonzero(bad) - self._start) % self.capacity).min())
                raise DataError(
                    f"{name} contains {what} at {int(bad.sum())} of {self._size} rows "
                    f"(first at row {first}, 0 = oldest)"
                )

    def _meta(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity,
            "obs_shape": list(self.obs_shape),
            "action_shape": list(self.action_shape),
            "obs_dtype": self.obs_dtype.name,
            "action_dtype": self.action_dtype.name,
        }

    def state_dict(self) -> dict[str, Any]:
        """Arrays in logical order plus plain metadata; loads with ``weights_only=True``."""
        return self._meta() | vars(self.all())  # not dataclasses.asdict: it deep-copies

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore contents from :meth:`state_dict` (numpy arrays or CPU tensors); capacity,
        shapes and dtypes must match this buffer. Later adds continue after the newest row."""
        required = (*Batch.FIELDS, "capacity", "obs_shape", "action_shape")
        missing = [key for key in required if key not in state]
        if missing:
            raise DataError(f"replay buffer state lacks {', '.join(missing)}")
        for key, mine in self._meta().items():
            theirs = state.get(key, mine)
            theirs = [int(d) for d in theirs] if isinstance(mine, list) else type(mine)(theirs)
            if theirs != mine:
                raise DataError(f"replay buffer state has {key} {theirs}, this buffer has {mine}")
        arrays = self._checked(tuple(state[name] for name in Batch.FIELDS), True)
        n = len(arrays["reward"])
        if n > self.capacity:
            raise DataError(f"replay buffer state holds {n} rows, capacity is {self.capacity}")
        for name, arr in arrays.items():
            self._storage[name][:n] = arr
        self._size, self._ptr = n, n % self.capacity

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write an ``.npz`` at exactly ``path``, atomically (temp file in the same directory,
        fsync, rename), so that a crash leaves the old file or the new one."""
        state = self.state_dict()
        arrays = {
            k: np.asarray(v, dtype=np.int64 if "shape" in k else None) for k, v in state.items()
        }
        atomic_write(path, lambda f: np.savez(f, format=np.asarray(_FORMAT), **arrays))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ReplayBuffer:
        """Read a file written by :meth:`save`; anything else is a :class:`CheckpointError`."""
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"no replay buffer file at {path}")
        if not zipfile.is_zipfile(path):  # np.load would guess pickle and say so
            raise CheckpointError(f"{path} is not an .npz archive: corrupt or another format")
        try:
            with np.load(path, allow_pickle=False) as npz:
                if "format" not in npz.files or str(npz["format"]) != _FORMAT:
                    raise CheckpointError(f"{path} is not a modelbased replay buffer file")
                state = {key: npz[key] for key in npz.files if key != "format"}
            meta = [state[k] for k in ("capacity", "obs_shape", "action_shape")]
            dtypes = [str(state[k]) for k in ("obs_dtype", "action_dtype")]
            buffer = cls(int(meta[0]), tuple(meta[1]), tuple(meta[2]), *dtypes)
            buffer.load_state_dict(state)
        except CheckpointError:
            raise
        except Exception as exc:  # zipfile, numpy and our own DataError for foreign contents
            raise CheckpointError(
                f"{path} is corrupt or not a modelbased replay buffer "
                f"({type(exc).__name__}: {str(exc)[:120]})"
            ) from exc
        return buffer
