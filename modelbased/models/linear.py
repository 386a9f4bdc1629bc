"""A linear (affine) dynamics model ``s' = A s + B a + c`` fitted by ridge regression, the model
LQR needs when the dynamics are learned (system identification by least squares; Ljung,
"System Identification", 1999, ch. 7)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from modelbased.core.errors import DataError


def fit_linear(
    obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray, ridge: float = 1e-6
) -> tuple[Tensor, Tensor, Tensor, float]:
    """Least squares ``next_obs ~ A obs + B action + c`` (``ridge`` on ``A``, ``B``) on
    ``[N, o]``, ``[N, a]``, ``[N, o]``; returns ``A [o, o]``, ``B [o, a]``, ``c [o]`` (float64)
    and the mean squared one-step error."""
    if len(obs) < 2 or not (len(obs) == len(action) == len(next_obs)):
        raise DataError(f"fit_linear: need N >= 2 matching rows, got {len(obs)}, {len(action)}")
    X = torch.as_tensor(np.concatenate([obs, action], 1), dtype=torch.float64)
    Y = torch.as_tensor(next_obs, dtype=torch.float64)
    Z = torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], 1)
    penalty = ridge * torch.eye(Z.shape[1], dtype=Z.dtype)
    penalty[-1, -1] = 0.0  # the offset is not shrunk
    W = torch.linalg.solve(Z.T @ Z + penalty, Z.T @ Y)  # [o + a + 1, o]
    o = obs.shape[1]
    A, B, c = W[:o].T, W[o:-1].T, W[-1]
    mse = float(((Z @ W - Y) ** 2).mean())
    return A, B, c, mse
