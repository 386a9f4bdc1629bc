"""The linear-quadratic regulator (LQR) in discrete time, and linearisation by batched autograd.

For dynamics ``x' = A x + B u`` and the cost ``sum_t x_t' Q x_t + u_t' R u_t`` (plus ``x_H' Q_f
x_H`` over a finite horizon) the optimal control is linear, ``u_t = -K_t x_t``, with ``K_t``
from the backward Riccati recursion (Kalman 1960; Anderson & Moore, "Optimal Control: Linear
Quadratic Methods", 1990, ch. 2)::

    K_t = (R + B' P_{t+1} B)^{-1} B' P_{t+1} A
    P_t = Q + A' P_{t+1} (A - B K_t),        P_H = Q_f

and over an infinite horizon the stationary ``K`` of the discrete algebraic Riccati equation
(DARE) ``P = Q + A' P A - A' P B (R + B' P B)^{-1} B' P A``, solved here by the
structure-preserving doubling algorithm (Chu, Fan & Lin 2005, "A structure-preserving doubling
algorithm for continuous-time algebraic Riccati equations"; its discrete form), which converges
quadratically.

This module owns :func:`lqr_finite`, :func:`lqr_infinite` and :func:`linearize` (the Jacobians
``A = df/dx``, ``B = df/du`` of any differentiable batched ``f(x [N, n], u [N, m]) -> [N, n]``
by ``torch.func.vmap`` over ``torch.func.jacrev``), which turns a known or learned model into
the linear model LQR needs. Every function is batched over leading dimensions ``...``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.func import jacrev, vmap

Dynamics = Callable[[Tensor, Tensor], Tensor]
"""``f(x [N, n], u [N, m]) -> x' [N, n]``, rows independent and differentiable."""


def linearize(f: Dynamics, x: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    """The Jacobians of ``f`` at ``x [N, n]``, ``u [N, m]``: ``A [N, n, n]``, ``B [N, n, m]``.

    One ``vmap(jacrev(f))`` call over the ``N`` rows (each row is passed to ``f`` as a batch of
    one), so a learned network is differentiated for all rows at once.
    """

    def single(xi: Tensor, ui: Tensor) -> Tensor:
        return f(xi.unsqueeze(0), ui.unsqueeze(0)).squeeze(0)

    with torch.enable_grad():
        A, B = vmap(jacrev(single, argnums=(0, 1)))(x, u)
    return A, B


def _gain(A: Tensor, B: Tensor, R: Tensor, P: Tensor) -> Tensor:
    """``K = (R + B' P B)^{-1} B' P A`` (``[..., m, n]``)."""
    BtP = B.transpose(-1, -2) @ P
    return torch.linalg.solve(R + BtP @ B, BtP @ A)


def lqr_finite(
    A: Tensor,
    B: Tensor,
    Q: Tensor,
    R: Tensor,
    horizon: int,
    Qf: Tensor | None = None,
    time_varying: bool = False,
) -> tuple[Tensor, Tensor]:
    """Finite-horizon discrete LQR by the backward Riccati recursion (module docstring).

    Args:
        A: ``[..., n, n]`` state matrix, or ``[H, ..., n, n]`` with ``time_varying``.
        B: ``[..., n, m]`` input matrix, or ``[H, ..., n, m]`` with ``time_varying``.
        Q: ``[..., n, n]`` stage state cost (symmetric positive semi-definite).
        R: ``[..., m, m]`` stage control cost (symmetric positive definite).
        horizon: ``H`` steps.
        Qf: ``[..., n, n]`` terminal cost ``P_H`` (default zeros).
        time_varying: ``A`` and ``B`` have a leading time dimension (a linearised trajectory).

    Returns:
        ``K [H, ..., m, n]`` (``u_t = -K_t x_t``) and ``P [H + 1, ..., n, n]`` (the cost-to-go
        ``x' P_t x`` from step ``t``).
    """
    P = torch.zeros_like(Q) if Qf is None else Qf
    gains, costs = [], [P]
    for t in reversed(range(horizon)):
        At, Bt = (A[t], B[t]) if time_varying else (A, B)
        K = _gain(At, Bt, R, P)
        P = Q + At.transpose(-1, -2) @ P @ (At - Bt @ K)
        P = (P + P.transpose(-1, -2)) / 2
        gains.append(K)
        costs.append(P)
    return torch.stack(gains[::-1]), torch.stack(costs[::-1])


def lqr_infinite(
    A: Tensor, B: Tensor, Q: Tensor, R: Tensor, tol: float = 1e-10, max_iterations: int = 100
) -> tuple[Tensor, Tensor]:
    """Infinite-horizon discrete LQR: the stabilising DARE solution by structure-preserving
    doubling (module docstring).

    Args:
        A: ``[..., n, n]`` state matrix, with ``(A, B)`` stabilisable.
        B: ``[..., n, m]`` input matrix.
        Q: ``[..., n, n]`` state cost, with ``(A, Q^{1/2})`` detectable.
        R: ``[..., m, m]`` control cost (positive definite).
        tol: stop when the largest change of ``P`` relative to its size falls below.
        max_iterations: doubling steps at most (each doubles the horizon covered).

    Returns:
        ``K [..., m, n]`` (``u = -K x``) and ``P [..., n, n]``.

    Raises:
        RuntimeError: if the doubling has not converged within ``max_iterations``.
    """
    n = A.shape[-1]
    eye = torch.eye(n, dtype=A.dtype, device=A.device)
    Ak = A
    Gk = B @ torch.linalg.solve(R, B.transpose(-1, -2))
    Hk = Q
    for _ in range(max_iterations):
        W = torch.linalg.inv(eye + Gk @ Hk)
        A_next = Ak @ W @ Ak
        G_next = Gk + Ak @ W @ Gk @ Ak.transpose(-1, -2)
        H_next = Hk + Ak.transpose(-1, -2) @ Hk @ W @ Ak
        change = (H_next - Hk).abs().amax() / H_next.abs().amax().clamp_min(1e-300)
        Ak, Gk, Hk = A_next, G_next, (H_next + H_next.transpose(-1, -2)) / 2
        if float(change) < tol:
            return _gain(A, B, R, Hk), Hk
    raise RuntimeError(f"lqr_infinite: the Riccati doubling did not converge in {max_iterations}")
