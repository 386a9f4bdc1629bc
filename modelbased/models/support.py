"""MuZero's value transform and categorical (two-hot) supports (Schrittwieser et al. 2020,
appendix F; the transform of Pohlen et al. 2018, "Observe and Look Further").

Scalars ``x`` (values, rewards) are squashed by the invertible

    h(x) = sign(x) (sqrt(|x| + 1) - 1) + eps x

and represented as a categorical distribution over the integer support ``-S .. S`` (``2S + 1``
bins): ``h(x)`` puts its mass on the two bins around it, in proportion to closeness (two-hot).
A network predicts logits over the support; its scalar is ``h^-1`` of the expectation. Shapes:
any leading batch shape ``[*B]`` for scalars, ``[*B, 2S + 1]`` for distributions.
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


def two_hot(x: Tensor, support_size: int) -> Tensor:
    """Two-hot distribution ``[*B, 2S + 1]`` of ``h(x)`` over ``-S .. S`` (``x [*B]``; values
    beyond the support are clipped to its ends)."""
    y = value_transform(x).clamp(-support_size, support_size)
    low = torch.floor(y)
    frac = y - low
    index = (low + support_size).long()
    probs = torch.zeros(*x.shape, 2 * support_size + 1, dtype=x.dtype, device=x.device)
    probs.scatter_(-1, index.unsqueeze(-1), (1 - frac).unsqueeze(-1))
    upper = (index + 1).clamp(max=2 * support_size)
    probs.scatter_add_(-1, upper.unsqueeze(-1), frac.unsqueeze(-1))
    return probs


def support_to_scalar(probs: Tensor) -> Tensor:
    """``h^-1`` of the expectation of ``probs [*B, 2S + 1]`` over ``-S .. S``: ``[*B]``."""
    support_size = (probs.shape[-1] - 1) // 2
    bins = torch.arange(-support_size, support_size + 1, dtype=probs.dtype, device=probs.device)
    return inverse_value_transform((probs * bins).sum(-1))


def logits_to_scalar(logits: Tensor) -> Tensor:
    """The scalar a network's logits ``[*B, 2S + 1]`` over the support stand for: ``[*B]``."""
    return support_to_scalar(torch.softmax(logits, dim=-1))
