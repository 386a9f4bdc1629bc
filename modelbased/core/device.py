"""The device every tensor of an agent follows: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

``auto`` picks CUDA when torch sees a GPU, else the CPU (the tested default). Nothing in the
package names a device of its own: networks, buffers' batches, planners and generators take
the agent's ``device``; checkpoints are saved from and loaded to the CPU, then moved.

On the CPU, training runs with subnormal floats flushed to zero (:func:`flush_denormal`):
gradients that shrink step after step (MuZero's halved dynamics gradients, weight decay, Adam's
second moments) leave float32 values below 1.2e-38, and every multiply that touches one takes
a slow path: on MuZero's CartPole preset the update grows several times slower over the first
few thousand env steps unless they are flushed (``benchmarks/denormal.py`` measures it).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import torch

from modelbased.core.errors import ConfigError

_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """The :class:`torch.device` for ``device``; :class:`ConfigError` for a name that is not
    ``auto|cpu|cuda[:N]`` or a CUDA device this machine does not have."""
    if isinstance(device, torch.device):
        device = str(device)
    name = "auto" if device is None else str(device).strip().lower()
    if not _PATTERN.match(name):
        raise ConfigError(f"device={device!r} is not one of auto, cpu, cuda, cuda:N")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(name.partition(":")[2] or 0)
        if index >= count:
            have = f"{count} CUDA device(s)" if count else "no CUDA device"
            raise ConfigError(f"device={device!r}: torch sees {have}; use --device cpu")
    return torch.device(name)


def flushing_denormals() -> bool:
    """Whether this thread's CPU arithmetic flushes subnormal floats to zero now (torch has a
    setter, :func:`torch.set_flush_denormal`, and no getter: a subnormal float32 is probed)."""
    tiny = torch.full((1,), 1e-40, dtype=torch.float32)  # subnormal: below 1.18e-38
    return bool((tiny * 1.0).item() == 0.0)


@contextlib.contextmanager
def flush_denormal() -> Iterator[None]:
    """Flush subnormal floats to zero on the CPU inside the block (FTZ/DAZ, where the CPU has
    them), then put back the mode found on entry. Values below 1.18e-38 become 0: a training
    step changes by far less than float32 resolves in its normal-range results
    (``tests/test_device.py`` checks a MuZero update against one without)."""
    before = flushing_denormals()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)
