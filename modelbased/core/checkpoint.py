"""Atomic, code-free checkpoints: tensors and plain data written with ``torch.save`` to a temp
file, fsynced and renamed over the target; read back with ``torch.load(weights_only=True)`` so
no pickled code ever runs on load."""

from __future__ import annotations

import os
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from modelbased.core.errors import CheckpointError


def to_saveable(obj: Any) -> Any:
    """Replace numpy arrays and scalars by tensors and Python numbers, recursively."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj).copy())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: to_saveable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_saveable(v) for v in obj)
    return obj


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(file)`` on a temp file beside ``path``, fsync it, rename it over ``path``
    and fsync the directory, so that a crash leaves either the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` of ``obj`` (numpy converted to tensors) through :func:`atomic_write`."""
    saveable = to_saveable(obj)
    atomic_write(path, lambda f: torch.save(saveable, f))


def load_tensors(path: str | os.PathLike[str], what: str = "checkpoint") -> Any:
    """``torch.load(path, weights_only=True)`` on CPU; a missing, truncated or foreign file is a
    :class:`CheckpointError` naming ``what`` was expected."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no {what} at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise CheckpointError(
            f"{path} is corrupt or not a modelbased {what} "
            f"({type(exc).__name__}: {shorten(str(exc))})"
        ) from exc


def shorten(message: str, width: int = 120) -> str:
    """The first line of ``message``, cut at a word boundary to ``width`` characters (with
    "...")."""
    lines = message.strip().splitlines()
    return textwrap.shorten(lines[0], width, placeholder=" ...") if lines else ""


def safe_load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load an agent checkpoint with ``weights_only=True``; any failure is a
    :class:`CheckpointError`."""
    data = load_tensors(path)
    if not isinstance(data, dict) or "algo" not in data or "agent" not in data:
        raise CheckpointError(f"{path} is not a modelbased checkpoint (no 'algo'/'agent' entries)")
    return data
