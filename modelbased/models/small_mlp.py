"""Small-batch inference of MLPs in compiled loops, for searches that call a network on one row
per simulation (play, arena, a single env).

At batch 1 torch spends its time in dispatch, not arithmetic: the 3 x 128 policy-value MLP of
``benchmarks/mcts_speed.py`` takes about 75 us per forward through ``nn.Module`` calls against
about 50k multiply-adds. :class:`MLPPlan` runs an ``nn.Sequential`` of ``Flatten``, ``Linear``
and ``ReLU`` in one numba call on numpy views of its CPU float32 parameters (no copy, so the
plan sees every in-place update: optimizer steps, ``load_state_dict``), about 4 us for that
trunk. Above :data:`SMALL_BATCH` rows torch's blocked matmuls win and callers use the module.

Shapes: input ``float32 [B, *X]`` (flattened to ``[B, D]``), output ``float32 [B, out]``.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor, nn

SMALL_BATCH = 8  # rows up to which the compiled loops beat torch (benchmarks/mcts_speed.py)


@numba.njit(cache=True, fastmath=True)
def dense_chain(x, weights, biases, relu_last):
    """``x [B, D]`` through ``Linear`` layers ``weights[i] [out, in]`` (torch's layout) and
    ``biases[i] [out]``, ReLU after each but the last (after the last too if ``relu_last``)."""
    h = x
    layers = len(weights)
    for i in range(layers):
        w, b = weights[i], biases[i]
        out = np.empty((h.shape[0], w.shape[0]), np.float32)
        for r in range(h.shape[0]):
            for j in range(w.shape[0]):
                s = b[j]
                for k in range(w.shape[1]):
                    s += w[j, k] * h[r, k]
                if (i < layers - 1 or relu_last) and s < 0:
                    s = 0.0
                out[r, j] = s
        h = out
    return h


@numba.njit(cache=True)
def softmax_rows(logits):
    """Row-wise softmax of ``logits [B, A]`` (float32)."""
    out = np.empty_like(logits)
    for r in range(logits.shape[0]):
        top = logits[r].max()
        total = 0.0
        for a in range(logits.shape[1]):
            out[r, a] = np.exp(logits[r, a] - top)
            total += out[r, a]
        for a in range(logits.shape[1]):
            out[r, a] /= total
    return out


class MLPPlan:
    """``plan(x [B, *X]) -> [B, out]``: the eval-mode forward of ``module`` (a ``Linear``, or an
    ``nn.Sequential``, nested or not, of an optional leading ``Flatten``, then ``Linear``
    layers with a ``ReLU`` after each but possibly the last) in :func:`dense_chain`. Build with
    :meth:`of`, which
    returns None for any other module or for parameters that are not CPU float32; check
    :meth:`valid` before a call (a parameter replaced or moved, e.g. by ``.to()`` or a deep
    copy, invalidates the plan)."""

    def __init__(self, linears: list[nn.Linear], relu_last: bool) -> None:
        params: list[Tensor] = []
        for m in linears:
            params += [m._parameters["weight"], m._parameters["bias"]]  # type: ignore[list-item]
        self._owners = [(m._parameters, name) for m in linears for name in ("weight", "bias")]
        self._params = params
        self._ptrs = [p.data_ptr() for p in params]
        views = [p.detach().numpy() for p in params]
        self.weights, self.biases = tuple(views[0::2]), tuple(views[1::2])
        self.relu_last = relu_last

    @classmethod
    def of(cls, module: nn.Module) -> MLPPlan | None:
        """A plan for ``module``, or None if it is not an MLP of the supported form."""
        mods = _flat(module)
        if mods and isinstance(mods[0], nn.Flatten):
            if (mods[0].start_dim, mods[0].end_dim) != (1, -1):
                return None
            mods = mods[1:]
        linears: list[nn.Linear] = []
        relu_last = False
        for i, m in enumerate(mods):
            if isinstance(m, nn.Linear) and (i == 0 or isinstance(mods[i - 1], nn.ReLU)):
                linears.append(m)
            elif isinstance(m, nn.ReLU) and i > 0 and isinstance(mods[i - 1], nn.Linear):
                relu_last = i == len(mods) - 1
            else:
                return None
        if not linears or any(m.bias is None for m in linears):
            return None
        for m in linears:
            for p in (m.weight, m.bias):
                if p.device.type != "cpu" or p.dtype != torch.float32 or not p.is_contiguous():
                    return None
        return cls(linears, relu_last)

    def valid(self) -> bool:
        """The module still holds the same parameter tensors, in the same memory."""
        for (owner, name), p, ptr in zip(self._owners, self._params, self._ptrs, strict=True):
            if owner.get(name) is not p or p.data_ptr() != ptr:
                return False
        return True

    def args(self) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...], bool]:
        """``(weights, biases, relu_last)``: :func:`dense_chain`'s arguments after ``x``, for
        kernels that run several plans in one call."""
        return self.weights, self.biases, self.relu_last

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``x [B, *X]`` -> ``float32 [B, out]``."""
        flat = np.ascontiguousarray(x, dtype=np.float32).reshape(len(x), -1)
        return dense_chain(flat, self.weights, self.biases, self.relu_last)


def _flat(module: nn.Module) -> list[nn.Module]:
    """The modules of nested ``nn.Sequential`` containers in call order."""
    if not isinstance(module, nn.Sequential):
        return [module]
    return [leaf for m in module for leaf in _flat(m)]
