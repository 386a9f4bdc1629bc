"""Gaussian-process dynamics for PILCO (Deisenroth & Rasmussen 2011), in plain torch.

One exact GP per output dimension ``a = 1..E`` over inputs ``x [D]`` (state and action), with
the squared-exponential ARD kernel (Rasmussen & Williams 2006, eq. 5.1)::

    k_a(x, x') = sf_a^2 exp(-1/2 (x - x')' Lambda_a^{-1} (x - x')),   Lambda_a = diag(ell_a^2)

and Gaussian noise ``sn_a^2``; the hyperparameters ``(ell, sf, sn)`` maximise the log marginal
likelihood (eq. 5.8) by L-BFGS, with PILCO's soft curb on length-scales and signal-to-noise
ratio (``hypCurb``) so that a few points do not give a degenerate fit. All ``E`` GPs share the
inputs and are batched along a leading ``E`` dimension. When the data outgrow an exact GP,
:meth:`GaussianProcess.fit` keeps a random subset of ``max_points`` (the subset-of-data
approximation, Rasmussen & Williams section 8.3.1).

:func:`moment_match` propagates a Gaussian input ``x ~ N(m, s)`` through the GP analytically
(Deisenroth 2010, "Efficient reinforcement learning using Gaussian processes", section 2.3;
Quinonero-Candela et al. 2003): the exact mean, covariance and input-output covariance of the
prediction ``f(x)``, including the GP's own uncertainty. With ``iK=None`` it is the same
computation for a deterministic RBF network ``sum_n beta_n k(x, X_n)`` (PILCO's RBF policy).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from modelbased.core.config import Config
from modelbased.core.errors import DataError


@dataclasses.dataclass(frozen=True)
class GPConfig(Config):
    """Exact GP dynamics model settings."""

    max_points: int = 300  # data kept for the GP (a random subset beyond: subset of data)
    fit_iterations: int = 100  # L-BFGS iterations of the marginal likelihood
    curb_lengthscale: float = 100.0  # PILCO's soft bound on ell / std(inputs)
    curb_snr: float = 500.0  # PILCO's soft bound on sf / sn
    min_noise: float = 1e-4  # noise standard deviation at least this

    def validate(self) -> None:
        """Positive sizes and bounds."""
        self.require(self.max_points >= 2, "max_points", "must be >= 2")
        self.require(self.fit_iterations >= 1, "fit_iterations", "must be >= 1")
        self.require(self.curb_lengthscale > 1, "curb_lengthscale", "must be > 1")
        self.require(self.curb_snr > 1, "curb_snr", "must be > 1")
        self.require(self.min_noise > 0, "min_noise", "must be > 0")


def se_kernel(a: Tensor, b: Tensor, log_ell: Tensor, log_sf: Tensor) -> Tensor:
    """SE-ARD kernel matrices ``[E, N, M]`` of ``a [N, D]``, ``b [M, D]`` for ``E`` GPs with
    log length-scales ``[E, D]`` and log signal standard deviations ``[E]``."""
    ia = a[None] / log_ell.exp()[:, None]  # [E, N, D]
    ib = b[None] / log_ell.exp()[:, None]
    sq = (ia * ia).sum(-1)[:, :, None] + (ib * ib).sum(-1)[:, None, :] - 2 * ia @ ib.mT
    return (2 * log_sf)[:, None, None].exp() * torch.exp(-0.5 * sq.clamp_min(0))


def moment_match(
    X: Tensor,
    beta: Tensor,
    log_ell: Tensor,
    log_sf: Tensor,
    m: Tensor,
    s: Tensor,
    iK: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Exact moments of ``f(x)``, ``x ~ N(m, s)``, for ``E`` GPs (or RBF networks) over shared
    inputs (Deisenroth 2010, eqs. 2.34-2.57; PILCO's ``gp0``/``gp2``).

    Args:
        X: ``[N, D]`` training (or centre) inputs.
        beta: ``[E, N]`` weights ``K^{-1} y`` (or an RBF network's weights).
        log_ell: ``[E, D]`` log length-scales.
        log_sf: ``[E]`` log signal standard deviations.
        m: ``[B, D]`` input means.
        s: ``[B, D, D]`` input covariances.
        iK: ``[E, N, N]`` inverse kernel matrices (with noise) to include the GP's own
            variance; ``None`` for a deterministic RBF network.

    Returns:
        ``M [B, E]`` the mean, ``S [B, E, E]`` the covariance and ``C [B, D, E]`` the
        input-output covariance ``Cov[x, f(x)]``.
    """
    B, D = m.shape
    eye = torch.eye(D, dtype=m.dtype, device=m.device)
    inp = X[None] - m[:, None]  # [B, N, D]
    iell = (-log_ell).exp()  # [E, D]
    scaled = inp[:, None] * iell[None, :, None]  # [B, E, N, D]
    Bm = iell[None, :, :, None] * s[:, None] * iell[None, :, None, :] + eye  # [B, E, D, D]
    t = torch.linalg.solve(Bm, scaled.mT).mT  # [B, E, N, D] = scaled B^{-1}
    lb = torch.exp(-0.5 * (scaled * t).sum(-1)) * beta  # [B, E, N]
    c = (2 * log_sf).exp() / torch.linalg.det(Bm).sqrt()  # [B, E]
    M = lb.sum(-1) * c
    V = ((t * iell[None, :, None]) * lb[..., None]).sum(-2) * c[..., None]  # [B, E, D]
    C = s @ V.mT  # [B, D, E]: Cov[x, f] = s (s + Lambda)^{-1} sum_n (X_n - m) q_n beta_n
    # E[k_i(x, X_n) k_j(x, X_m)] = L_ij[n, m] / sqrt|R_ij| for the pairs i <= j (S is
    # symmetric), with log L_ij[n, m] = k_i[n] + k_j[m] + (a_n + b_m)' Q_ij (a_n + b_m)
    E = len(beta)
    pi, pj = torch.triu_indices(E, E, device=m.device)  # [P] pairs
    k = 2 * log_sf[None, :, None] - 0.5 * (scaled * scaled).sum(-1)  # [B, E, N]
    iell2 = (-2 * log_ell).exp()  # [E, D]
    ii = inp[:, None] * iell2[None, :, None]  # [B, E, N, D]
    R = s[:, None] * (iell2[pi] + iell2[pj])[None, :, None, :] + eye  # [B, P, D, D]
    Q = torch.linalg.solve(R, s[:, None].expand_as(R)) / 2  # symmetric
    a, b = ii[:, pi], ii[:, pj]  # [B, P, N, D]
    aQ, bQ = a @ Q, b @ Q
    row = k[:, pi] + (aQ * a).sum(-1)  # [B, P, N]
    col = k[:, pj] + (bQ * b).sum(-1)
    P, N = len(pi), len(X)
    outer = (row[..., :, None] + col[..., None, :]).reshape(B * P, N, N)
    L = torch.baddbmm(outer, aQ.reshape(B * P, N, D), b.reshape(B * P, N, D).mT, alpha=2)
    L = L.exp().reshape(B, P, N, N)
    tdet = torch.linalg.det(R).rsqrt()  # [B, P]
    pairs = tdet * (beta[pi] * (L @ beta[pj].unsqueeze(-1)).squeeze(-1)).sum(-1)  # [B, P]
    S = torch.zeros(B, E, E, dtype=m.dtype, device=m.device)
    S[:, pi, pj] = pairs
    S[:, pj, pi] = pairs
    if iK is not None:  # E[var f] = sf^2 - E[k' K^{-1} k] on the diagonal
        diag = pi == pj  # the pairs (i, i), in the order i = 0..E-1
        own = (2 * log_sf).exp() - tdet[:, diag] * (iK * L[:, diag]).sum((-1, -2))
        S = S + torch.diag_embed(own)
    S = S - M[:, :, None] * M[:, None, :]
    return M, (S + S.mT) / 2, C


class GaussianProcess:
    """``E`` exact GPs with SE-ARD kernels on shared inputs; see the module docstring.

    ``X [N, D]``, ``Y [N, E]``; hyperparameters ``log_ell [E, D]``, ``log_sf [E]``,
    ``log_sn [E]``; after :meth:`fit`, ``beta [E, N]`` and ``iK [E, N, N]``. Computations in
    ``dtype`` (float64: the inverse kernel matrices of smooth data are ill-conditioned).
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        config: GPConfig | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float64,
    ) -> None:
        self.config = config or GPConfig()
        self.input_dim, self.output_dim = input_dim, output_dim
        self.device, self.dtype = torch.device(device), dtype
        kw: dict[str, Any] = {"dtype": dtype, "device": self.device}
        self.X = torch.zeros(0, input_dim, **kw)
        self.Y = torch.zeros(0, output_dim, **kw)
        self.log_ell = torch.zeros(output_dim, input_dim, **kw)
        self.log_sf = torch.zeros(output_dim, **kw)
        self.log_sn = torch.full((output_dim,), math.log(0.1), **kw)
        self.beta = torch.zeros(output_dim, 0, **kw)
        self.iK = torch.zeros(output_dim, 0, 0, **kw)

    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` has run."""
        return len(self.X) > 0

    def _tensor(self, a: np.ndarray | Tensor) -> Tensor:
        return torch.as_tensor(a, dtype=self.dtype, device=self.device)

    def fit(
        self, inputs: np.ndarray | Tensor, targets: np.ndarray | Tensor, rng: np.random.Generator
    ) -> dict[str, float]:
        """Maximise the marginal likelihood on ``inputs [N, D]``, ``targets [N, E]`` (a random
        subset of ``max_points`` if ``N`` is larger), warm-started from the last fit. Returns
        the negative log marginal likelihood per point and the points used."""
        X, Y = self._tensor(inputs), self._tensor(targets)
        if X.ndim != 2 or Y.ndim != 2 or len(X) != len(Y) or len(X) < 2:
            raise DataError(f"GP.fit: need [N, D] and [N, E] with N >= 2, got {X.shape}, {Y.shape}")
        if len(X) > self.config.max_points:
            keep = np.sort(rng.choice(len(X), self.config.max_points, replace=False))
            X, Y = X[keep], Y[keep]
        std_x = X.std(0).clamp_min(1e-6)
        if not self.fitted:  # initial hyperparameters from the data (PILCO's trainDynModel)
            self.log_ell = std_x.log().expand(self.output_dim, -1).clone()
            self.log_sf = Y.std(0).clamp_min(1e-6).log()
            self.log_sn = self.log_sf - math.log(10.0)
        params = [p.clone().requires_grad_(True) for p in (self.log_ell, self.log_sf, self.log_sn)]
        optimizer = torch.optim.LBFGS(
            params, max_iter=self.config.fit_iterations, line_search_fn="strong_wolfe"
        )

        def closure() -> Tensor:
            optimizer.zero_grad()
            loss = self._objective(X, Y, std_x, *params)
            loss.backward()
            return loss

        with torch.enable_grad():
            optimizer.step(closure)
            final = self._objective(X, Y, std_x, *params)
        if torch.isfinite(final):
            self.log_ell, self.log_sf, self.log_sn = (p.detach() for p in params)
        self.X, self.Y = X, Y
        self._solve()
        return {"gp_nlml": float(final.detach()) / len(X), "gp_points": float(len(X))}

    def _objective(
        self, X: Tensor, Y: Tensor, std_x: Tensor, log_ell: Tensor, log_sf: Tensor, log_sn: Tensor
    ) -> Tensor:
        """Negative log marginal likelihood summed over the ``E`` GPs, plus PILCO's curb."""
        c = self.config
        log_sn = torch.logaddexp(log_sn, torch.full_like(log_sn, math.log(c.min_noise)))
        K = se_kernel(X, X, log_ell, log_sf)
        K = K + (2 * log_sn).exp()[:, None, None] * torch.eye(
            len(X), dtype=X.dtype, device=X.device
        )
        chol, info = torch.linalg.cholesky_ex(K)
        if bool((info != 0).any()):
            return torch.full((), float("inf"), dtype=X.dtype, device=X.device)
        alpha = torch.cholesky_solve(Y.T.unsqueeze(-1), chol).squeeze(-1)  # [E, N]
        nlml = 0.5 * (Y.T * alpha).sum() + chol.diagonal(dim1=-2, dim2=-1).log().sum()
        nlml = nlml + 0.5 * Y.numel() * math.log(2 * math.pi)
        p = 30
        curb = (((log_ell - std_x.log()) / math.log(c.curb_lengthscale)) ** p).sum()
        curb = curb + (((log_sf - log_sn) / math.log(c.curb_snr)) ** p).sum()
        return nlml + curb

    def _solve(self) -> None:
        """``iK = K^{-1}`` and ``beta = K^{-1} y`` for the current data and hyperparameters."""
        K = se_kernel(self.X, self.X, self.log_ell, self.log_sf)
        eye = torch.eye(len(self.X), dtype=self.dtype, device=self.device)
        K = K + self.noise_var[:, None, None] * eye
        chol = torch.linalg.cholesky(K)
        self.iK = torch.cholesky_inverse(chol)
        self.beta = torch.cholesky_solve(self.Y.T.unsqueeze(-1), chol).squeeze(-1)

    @property
    def noise_var(self) -> Tensor:
        """``sn^2 [E]`` with the floor ``min_noise^2``."""
        floor = torch.full_like(self.log_sn, math.log(self.config.min_noise))
        return (2 * torch.logaddexp(self.log_sn, floor)).exp()

    def predict(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior mean ``[B, E]`` and variance ``[B, E]`` of the latent ``f`` at ``x [B, D]``."""
        k = se_kernel(x.to(self.dtype), self.X, self.log_ell, self.log_sf)  # [E, B, N]
        mean = (k @ self.beta.unsqueeze(-1)).squeeze(-1).T
        var = (2 * self.log_sf).exp()[:, None] - ((k @ self.iK) * k).sum(-1)
        return mean, var.T.clamp_min(0)

    def moments(self, m: Tensor, s: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """:func:`moment_match` of ``x ~ N(m [B, D], s [B, D, D])`` through this GP."""
        return moment_match(self.X, self.beta, self.log_ell, self.log_sf, m, s, self.iK)

    def state_dict(self) -> dict[str, Tensor]:
        """Data and hyperparameters (``beta``, ``iK`` are recomputed on load)."""
        names = ("X", "Y", "log_ell", "log_sf", "log_sn")
        return {k: getattr(self, k).cpu() for k in names}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore :meth:`state_dict`."""
        for k in ("X", "Y", "log_ell", "log_sf", "log_sn"):
            setattr(self, k, self._tensor(state[k]))
        if self.fitted:
            self._solve()
