"""Feature standardisation for learned world models, as in PETS (Chua et al. 2018) and MBPO
(Janner et al. 2019): inputs and regression targets are shifted and scaled to zero mean and
unit variance using statistics fitted on the training data.

:class:`Normalizer` owns those statistics as buffers, so they travel with the model's
``state_dict`` and checkpoint.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Normalizer(nn.Module):
    """``normalize(x) = (x - mean) / std`` per feature, with ``mean, std`` of shape ``[size]``.

    A feature whose standard deviation is below ``eps`` (constant in the data) gets
    ``std = 1`` rather than ``eps``, as MBPO's scaler does: it is then only centred, so a value
    that later departs from the constant stays of order one instead of being blown up by
    ``1 / eps``.  Before :meth:`fit` the normalizer is the identity.
    """

    mean: Tensor
    std: Tensor

    def __init__(self, size: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.size, self.eps = size, eps
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("std", torch.ones(size))

    @torch.no_grad()
    def fit(self, x: Tensor) -> None:
        """Set ``mean`` and ``std`` from data ``x [N, size]`` (population std)."""
        if x.dim() != 2 or x.shape[1] != self.size:
            raise ValueError(f"Normalizer.fit expects [N, {self.size}], got {list(x.shape)}")
        x = x.to(self.mean.dtype)
        std, mean = torch.std_mean(x, dim=0, correction=0)
        self.mean.copy_(mean)
        self.std.copy_(torch.where(std < self.eps, torch.ones_like(std), std))

    @property
    def is_identity(self) -> bool:
        """Whether the statistics are the identity's (``mean 0``, ``std 1``: never fitted)."""
        return bool((self.mean == 0).all() and (self.std == 1).all())

    def normalize(self, x: Tensor) -> Tensor:
        """``x [..., size]`` -> standardised ``[..., size]``."""
        return (x - self.mean) / self.std

    def denormalize(self, x: Tensor) -> Tensor:
        """Inverse of :meth:`normalize`: ``[..., size]`` -> original units."""
        return x * self.std + self.mean

    def denormalize_var(self, var: Tensor) -> Tensor:
        """A variance in normalized units ``[..., size]`` -> original units (``var * std^2``)."""
        return var * self.std.square()

    def forward(self, x: Tensor) -> Tensor:
        """The same as :meth:`normalize`."""
        return self.normalize(x)

    def extra_repr(self) -> str:
        """The feature count and epsilon, for ``repr``."""
        return f"size={self.size}, eps={self.eps}"
