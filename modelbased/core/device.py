"""The device every tensor of an agent follows: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

``auto`` picks CUDA when torch sees a GPU, else the CPU (the tested default). Nothing in the
package names a device of its own: networks, buffers' batches, planners and generators take
the agent's ``device``; checkpoints are saved from and loaded to the CPU, then moved.
"""

from __future__ import annotations

import re

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
