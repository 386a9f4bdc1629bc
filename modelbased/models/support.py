"""MuZero's value transform and categorical (two-hot) supports (Schrittwieser et al. 2020,
appendix F; the transform of Pohlen et al. 2018, "Observe and Look Further").

Scalars ``x`` (values, rewards) are squashed by the invertible

    h(x) = sign(x) (sqrt(|x| + 1) - 1) + eps x

and represented as a categorical distribution over the integer support ``-S .. S`` (``2S + 1``
bins): ``h(x)`` puts its mass on the two bins around it, in proportion to closeness (two-hot).
A network predicts logits over the support; its scalar is ``h^-1`` of the expectation. Shapes:
any leading batch shape ``[*B]`` for scalars, ``[*B, 2S + 1]`` for distributions.

DreamerV3 (Hafner et al. 2023, "Mastering diverse domains through world models", section 3)
uses the same two-hot idea with another squashing function, ``symlog(x) = sign(x) ln(|x| + 1)``
and its inverse ``symexp``, over 255 bins spaced evenly in ``[-20, 20]`` (:func:`symlog_bins`):
:func:`two_hot_bins` is the one two-hot encoder for any evenly spaced bins, MuZero's
:func:`two_hot` is it on ``h(x)`` over ``-S .. S``.
"""

from __future__ import annotations

import torch
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
    """``sign(x) ln(|x| + 1)``, elementwise (DreamerV3)."""
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(y: Tensor) -> Tensor:
    """``sign(y) (exp(|y|) - 1)``, the inverse of :func:`symlog`."""
    return torch.sign(y) * torch.expm1(torch.abs(y))


def symlog_bins(num_bins: int = 255, limit: float = 20.0, device: torch.device | str = "cpu"):
    """DreamerV3's bins: ``num_bins`` evenly spaced in ``[-limit, limit]`` (symlog space)."""
    return torch.linspace(-limit, limit, num_bins, device=device)


def two_hot_bins(y: Tensor, bins: Tensor) -> Tensor:
    """Two-hot distribution ``[*B, K]`` of ``y [*B]`` over the evenly spaced, increasing
    ``bins [K]``: mass on the two bins around ``y`` in proportion to closeness (values beyond
    the ends are clipped to them)."""
    low, high, k = bins[0], bins[-1], bins.shape[0]
    step = (high - low) / (k - 1)
    y = torch.minimum(torch.maximum(y, low), high)
    index = torch.floor((y - low) / step).long().clamp(0, k - 1)
    index = torch.where(bins[index] > y, index - 1, index).clamp(min=0)  # rounding of (y-low)
    frac = ((y - bins[index]) / step).clamp(0, 1)
    probs = torch.zeros(*y.shape, k, dtype=y.dtype, device=y.device)
    probs.scatter_(-1, index.unsqueeze(-1), (1 - frac).unsqueeze(-1))
    upper = (index + 1).clamp(max=k - 1)
    probs.scatter_add_(-1, upper.unsqueeze(-1), frac.unsqueeze(-1))
    return probs


def two_hot(x: Tensor, support_size: int) -> Tensor:
    """Two-hot distribution ``[*B, 2S + 1]`` of ``h(x)`` over ``-S .. S`` (``x [*B]``; values
    beyond the support are clipped to its ends)."""
    bins = torch.arange(-support_size, support_size + 1, dtype=x.dtype, device=x.device)
    return two_hot_bins(value_transform(x), bins)


def symexp_two_hot(x: Tensor, bins: Tensor) -> Tensor:
    """DreamerV3's target: the two-hot of ``symlog(x [*B])`` over ``bins [K]``: ``[*B, K]``."""
    return two_hot_bins(symlog(x), bins)


def symexp_mean(logits: Tensor, bins: Tensor) -> Tensor:
    """The scalar of logits ``[*B, K]`` over symlog ``bins``: ``symexp(E[bins])``, ``[*B]``."""
    return symexp((torch.softmax(logits, dim=-1) * bins).sum(-1))


def support_to_scalar(probs: Tensor) -> Tensor:
    """``h^-1`` of the expectation of ``probs [*B, 2S + 1]`` over ``-S .. S``: ``[*B]``."""
    support_size = (probs.shape[-1] - 1) // 2
    bins = torch.arange(-support_size, support_size + 1, dtype=probs.dtype, device=probs.device)
    return inverse_value_transform((probs * bins).sum(-1))


def logits_to_scalar(logits: Tensor) -> Tensor:
    """The scalar a network's logits ``[*B, 2S + 1]`` over the support stand for: ``[*B]``."""
    return support_to_scalar(torch.softmax(logits, dim=-1))
