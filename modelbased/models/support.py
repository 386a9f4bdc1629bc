"""Scalars as categorical distributions over a fixed support ("two-hot" discrete regression), as
MuZero (Schrittwieser et al. 2020, appendix F) and TD-MPC2 / DreamerV3 (Hansen et al. 2024;
Hafner et al. 2023) learn rewards and values.

A scalar ``x`` is first squashed by an invertible transform, then represented over the
symmetric support ``width * (-S .. S)`` (``2S + 1`` bins): the transformed value puts its mass
on the two bins around it, in proportion to closeness (two-hot). A network predicts logits over
the support; its scalar is the inverse transform of the expectation. Two transforms:

    h(x)      = sign(x) (sqrt(|x| + 1) - 1) + eps x      MuZero (Pohlen et al. 2018), width 1
    symlog(x) = sign(x) log(1 + |x|)                     TD-MPC2, DreamerV3: 101 bins on [-10, 10]

:class:`Support` is the one implementation; ``two_hot``/``support_to_scalar``/
``logits_to_scalar`` are MuZero's integer support (width 1, ``h``). Shapes: any leading batch
shape ``[*B]`` for scalars, ``[*B, 2S + 1]`` for distributions.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

EPS = 1e-3  # the eps of h(x): keeps h^-1 Lipschitz


def value_transform(x: Tensor, eps: float = EPS) -> Tensor:
    """``h(x) = sign(x) (sqrt(|x| + 1) - 1) + eps x``, elementwise."""
    return torch.sign(x) * (torch.sqrt(torch.abs(x) + 1) - 1) + eps * x


def inverse_value_transform(y: Tensor, eps: float = EPS) -> Tensor:
    """``h^-1(y)``, the closed form of Pohlen et al. (2018), elementwise."""
    root = (torch.sqrt(1 + 4 * eps * (torch.abs(y) + 1 + eps)) - 1) / (2 * eps)
    return torch.sign(y) * (root**2 - 1)


def symlog(x: Tensor) -> Tensor:
    """``sign(x) log(1 + |x|)``, elementwise."""
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(y: Tensor) -> Tensor:
    """``symlog^-1(y) = sign(y) (exp(|y|) - 1)``, elementwise."""
    return torch.sign(y) * torch.expm1(torch.abs(y))


_TRANSFORMS = {"h": (value_transform, inverse_value_transform), "symlog": (symlog, symexp)}


@dataclasses.dataclass(frozen=True)
class Support:
    """``2 * support_size + 1`` bins at ``width * (-S .. S)`` in the space of ``transform``."""

    support_size: int  # S
    width: float = 1.0  # spacing of the bins, in transformed units
    transform: Literal["h", "symlog"] = "h"

    @classmethod
    def from_range(cls, num_bins: int, vmax: float, transform: str = "symlog") -> Support:
        """``num_bins`` (odd) bins spanning ``[-vmax, vmax]`` (TD-MPC2: 101 bins, 10)."""
        if num_bins < 3 or num_bins % 2 == 0 or vmax <= 0:
            raise ValueError(f"a support needs an odd num_bins >= 3 and vmax > 0, got {num_bins}")
        half = (num_bins - 1) // 2
        return cls(half, vmax / half, transform)  # type: ignore[arg-type]

    @property
    def num_bins(self) -> int:
        """``2S + 1``."""
        return 2 * self.support_size + 1

    def encode(self, x: Tensor) -> Tensor:
        """Two-hot distribution ``[*B, 2S + 1]`` of the transformed ``x [*B]`` (values beyond
        the support are clipped to its ends)."""
        forward = _TRANSFORMS[self.transform][0]
        size = self.support_size
        y = (forward(x) / self.width).clamp(-size, size)  # in bin units
        low = torch.floor(y)
        frac = y - low
        index = (low + size).long()
        probs = torch.zeros(*x.shape, 2 * size + 1, dtype=x.dtype, device=x.device)
        probs.scatter_(-1, index.unsqueeze(-1), (1 - frac).unsqueeze(-1))
        upper = (index + 1).clamp(max=2 * size)
        probs.scatter_add_(-1, upper.unsqueeze(-1), frac.unsqueeze(-1))
        return probs

    def decode(self, probs: Tensor) -> Tensor:
        """The inverse transform of the expectation of ``probs [*B, 2S + 1]``: ``[*B]``."""
        size = self.support_size
        bins = torch.arange(-size, size + 1, dtype=probs.dtype, device=probs.device)
        return _TRANSFORMS[self.transform][1]((probs * bins).sum(-1) * self.width)

    def logits_to_scalar(self, logits: Tensor) -> Tensor:
        """The scalar that logits ``[*B, 2S + 1]`` over the support stand for: ``[*B]``."""
        return self.decode(torch.softmax(logits, dim=-1))

    def cross_entropy(self, logits: Tensor, x: Tensor) -> Tensor:
        """``-sum two_hot(x) log softmax(logits)``: the loss of ``logits [*B, 2S + 1]`` against
        scalar targets ``x [*B]``, ``[*B]``."""
        return -(self.encode(x) * F.log_softmax(logits, dim=-1)).sum(-1)


def two_hot(x: Tensor, support_size: int) -> Tensor:
    """MuZero's two-hot distribution ``[*B, 2S + 1]`` of ``h(x)`` over ``-S .. S``."""
    return Support(support_size).encode(x)


def support_to_scalar(probs: Tensor) -> Tensor:
    """``h^-1`` of the expectation of ``probs [*B, 2S + 1]`` over ``-S .. S``: ``[*B]``."""
    return Support((probs.shape[-1] - 1) // 2).decode(probs)


def logits_to_scalar(logits: Tensor) -> Tensor:
    """The scalar a network's logits ``[*B, 2S + 1]`` over MuZero's support stand for."""
    return support_to_scalar(torch.softmax(logits, dim=-1))
