"""A lean Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization") for hot loops.

:class:`FusedAdam` runs the same fused kernel as ``torch.optim.Adam(fused=True)``
(``torch._fused_adam_``: one pass over every parameter) without ``Optimizer.step``'s Python
wrapper (hooks, per-parameter state lookups, profiler records), which on a 2-core CPU costs
about as much as the kernel itself for SAC's 256x256 networks (about 0.1 ms per step, three
steps per SAC update). It has no parameter groups, weight decay or AMSGrad: what SAC uses.

``torch._fused_adam_`` is private, so it is used only where :func:`fused_kernel_works` (a
one-step call on a tiny tensor of the params' device and dtype, checked against Adam's first
step) says it works on this build; elsewhere :class:`FusedAdam` is a thin wrapper over
``torch.optim.Adam`` (``fused=True`` where the device supports it, else the default
implementation), with the same interface and results. The direct call is kept because it
wins: 1.02-1.10x the fallback's SAC updates/s at batch 256, 256x256, 1 thread (median
1.05x wall, 1.06x CPU over four runs of ``benchmarks/fused_adam.py``).

Its ``state_dict`` has ``torch.optim.Adam``'s layout (``state`` by parameter index,
``param_groups``), so checkpoints written with either path or with ``torch.optim.Adam`` load
into any of them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor


def _kernel_step(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avg: list[Tensor],
    exp_avg_sq: list[Tensor],
    steps: list[Tensor],
    lr: float,
    betas: tuple[float, float],
    eps: float,
) -> None:
    """The one call of the private kernel (no weight decay, AMSGrad or maximize); ``steps``
    are already incremented."""
    torch._fused_adam_(
        params,
        grads,
        exp_avg,
        exp_avg_sq,
        [],
        steps,
        lr=lr,
        beta1=betas[0],
        beta2=betas[1],
        weight_decay=0.0,
        eps=eps,
        amsgrad=False,
        maximize=False,
    )


@functools.cache
def fused_kernel_works(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether ``torch._fused_adam_`` exists here, takes :class:`FusedAdam`'s call on ``device``
    and ``dtype``, and gives Adam's first step (``p -= lr * sign(g)``)."""
    if not hasattr(torch, "_fused_adam_"):
        return False
    try:
        p = torch.zeros(2, device=device, dtype=dtype)
        g = torch.tensor([1.0, -1.0], device=device, dtype=dtype)
        step = torch.ones((), device=device, dtype=torch.float32)
        _kernel_step(
            [p], [g], [torch.zeros_like(p)], [torch.zeros_like(p)], [step], 0.5, (0.9, 0.999), 1e-8
        )
        return torch.allclose(p.cpu().double(), torch.tensor([-0.5, 0.5], dtype=torch.double))
    except Exception:  # a private API: any failure means "use the public path"
        return False


def _copied(state_dict: dict[str, Any]) -> dict[str, Any]:
    """``state_dict`` with its per-parameter tensors cloned."""
    state = {
        i: {k: v.clone() if isinstance(v, Tensor) else v for k, v in entry.items()}
        for i, entry in state_dict["state"].items()
    }
    return {"state": state, "param_groups": state_dict["param_groups"]}


class FusedAdam:
    """Adam over a fixed list of tensors (``params``), one fused kernel per :meth:`step`.

    ``kernel``: ``True`` calls ``torch._fused_adam_`` directly, ``False`` goes through
    ``torch.optim.Adam``, ``None`` (default) takes the kernel where :func:`fused_kernel_works`
    for the params' device and dtype (all params must share them; otherwise the public path).
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        *,
        kernel: bool | None = None,
    ) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("FusedAdam needs at least one parameter")
        self.lr, self.betas, self.eps = float(lr), (float(betas[0]), float(betas[1])), float(eps)
        uniform = len({(p.device, p.dtype) for p in self.params}) == 1
        if kernel is None:
            kernel = uniform and fused_kernel_works(self.params[0].device, self.params[0].dtype)
        elif kernel and not uniform:
            raise ValueError("FusedAdam(kernel=True) needs all params on one device and dtype")
        self.kernel = kernel
        self._adam: torch.optim.Adam | None = None
        if kernel:
            self.exp_avg = [torch.zeros_like(p) for p in self.params]
            self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
            # one step count shared by all parameters, on their device as the kernel requires
            self._step = torch.zeros((), dtype=torch.float32, device=self.params[0].device)
            self._steps = [self._step] * len(self.params)
        else:
            try:
                self._adam = torch.optim.Adam(self.params, lr, self.betas, eps, fused=True)
            except RuntimeError:  # fused=True is not supported for this device or dtype
                self._adam = torch.optim.Adam(self.params, lr, self.betas, eps)

    def zero_grad(self) -> None:
        """Drop every parameter's gradient (``grad = None``)."""
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, grads: list[Tensor] | None = None) -> None:
        """One Adam step on every parameter, with ``grads`` (default: each ``.grad``; unlike
        ``torch.optim.Adam``, which skips parameters without one, all must have one)."""
        given = grads is not None
        grads = grads if given else [p.grad for p in self.params]
        if len(grads) != len(self.params) or any(g is None for g in grads):
            raise RuntimeError("FusedAdam.step: a parameter has no gradient (call backward first)")
        if self._adam is None:
            self._step.add_(1.0)
            m, v = self.exp_avg, self.exp_avg_sq
            _kernel_step(self.params, grads, m, v, self._steps, self.lr, self.betas, self.eps)
            return
        if not given:
            self._adam.step()
            return
        held = [p.grad for p in self.params]
        for p, g in zip(self.params, grads, strict=True):
            p.grad = g
        self._adam.step()
        for p, g in zip(self.params, held, strict=True):
            p.grad = g

    # -- checkpoints in torch.optim.Adam's layout ---------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Step count and moments in ``torch.optim.Adam``'s layout (copies, not the live state)."""
        if self._adam is not None:  # copies, like the kernel path's (torch's are the live state)
            return _copied(self._adam.state_dict())
        state = {
            i: {"step": self._step.clone(), "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
            for i, (m, v) in enumerate(zip(self.exp_avg, self.exp_avg_sq, strict=True))
        }
        group = {
            "lr": self.lr,
            "betas": self.betas,
            "eps": self.eps,
            "weight_decay": 0.0,
            "amsgrad": False,
            "maximize": False,
            "fused": True,
            "params": list(range(len(self.params))),
        }
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state in ``torch.optim.Adam``'s layout (one group with this optimizer's
        parameters)."""
        groups, state = state_dict["param_groups"], state_dict["state"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise ValueError(
                f"optimizer state is for {sum(len(g['params']) for g in groups)} parameters in "
                f"{len(groups)} group(s); this optimizer has {len(self.params)} in one"
            )
        self.lr, self.betas, self.eps = groups[0]["lr"], tuple(groups[0]["betas"]), groups[0]["eps"]
        if self._adam is not None:
            # keep this optimizer's implementation: the saved one may not run on this device
            mine = {k: self._adam.param_groups[0][k] for k in ("fused", "foreach")}
            saved = {"state": state, "param_groups": [groups[0] | mine]}
            self._adam.load_state_dict(_copied(saved))  # torch would alias the saved tensors
            return
        with torch.no_grad():
            if not state:  # saved before the first step
                self._step.zero_()
                for buf in (*self.exp_avg, *self.exp_avg_sq):
                    buf.zero_()
                return
            for i, index in enumerate(groups[0]["params"]):
                entry = state[index]
                self.exp_avg[i].copy_(entry["exp_avg"])
                self.exp_avg_sq[i].copy_(entry["exp_avg_sq"])
            self._step.copy_(torch.as_tensor(state[groups[0]["params"][0]]["step"]))
