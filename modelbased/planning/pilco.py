"""PILCO's policy search: Gaussian state distributions pushed through a GP model by moment
matching, a saturating cost in closed form, and policy gradients through the whole predicted
trajectory (Deisenroth & Rasmussen 2011, "PILCO: A Model-Based and Data-Efficient Approach to
Policy Search", sections 2-3; Deisenroth, Fox & Rasmussen 2015, TPAMI, section 4).

One predicted step from ``x_t ~ N(m, S)`` (all moments exact for the Gaussian input):

1. the policy's pre-squash control ``u~ = pi(x)`` (an RBF network, moment-matched like a GP
   mean, or linear ``W x + b``): mean, covariance, ``Cov[x, u~]``;
2. the squashing ``u = mid + half * (9 sin u~ + sin 3u~) / 8`` (the paper's eq. 12, in the
   bounds): trigonometric moments of a Gaussian, ``Cov[x, u]`` by Stein's lemma;
3. the joint ``(x, u)`` through the GP of the state change: ``Delta ~ N(M, S_Delta)``,
   ``C = Cov[(x, u), Delta]`` (:func:`~modelbased.models.gp.moment_match`);
4. ``x_{t+1} ~ N(m + M, S + S_Delta + C_x + C_x')``;
5. the expected saturating cost ``E[1 - exp(-1/2 (x - t)' W (x - t))]``
   ``= 1 - |I + S W|^{-1/2} exp(-1/2 (m - t)' W (I + S W)^{-1} (m - t))`` (eq. 25).

The policy's parameters are fitted by L-BFGS on the summed expected cost of ``H`` such steps,
its gradient by autograd through all of them. A batch ``B`` of start distributions (a mixture
of Gaussians for a wide reset distribution, e.g. Pendulum's uniform angle) is propagated at
once; each step is checkpointed (recomputed in the backward pass) so memory stays that of one
step.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from modelbased.core.config import Config
from modelbased.models.gp import GaussianProcess, moment_match

Moments = tuple[Tensor, Tensor, Tensor]
"""``(mean [B, U], covariance [B, U, U], Cov[x, output] [B, D, U])``."""


@dataclasses.dataclass(frozen=True)
class PolicyConfig(Config):
    """PILCO's policy: an RBF network or a linear map, squashed into the action bounds."""

    kind: Literal["rbf", "linear"] = "rbf"  # the pre-squash controller
    basis: int = 50  # RBF centres
    init_weight_std: float = 0.1  # the RBF weights' initial standard deviation

    def validate(self) -> None:
        """At least one basis function."""
        self.require(self.basis >= 1, "basis", "must be >= 1")
        self.require(self.init_weight_std >= 0, "init_weight_std", "must be >= 0")


class SquashedPolicy(nn.Module):
    """``u = mid + half * sigma(pi(x))`` with ``sigma(z) = (9 sin z + sin 3z) / 8``; ``pi`` an
    RBF network ``sum_n w_n exp(-1/2 (x - c_n)' Lambda^{-1} (x - c_n))`` (one ``Lambda`` per
    action dimension) or ``W x + b``."""

    mid: Tensor  # [U] the middle of the action bounds
    half_range: Tensor  # [U] half their width

    def __init__(
        self, state_dim: int, low: Tensor, high: Tensor, config: PolicyConfig,
        generator: torch.Generator,
    ) -> None:  # fmt: skip
        super().__init__()
        self.config = config
        U = len(low)
        dtype = torch.float64
        self.register_buffer("mid", ((high + low) / 2).to(dtype))
        self.register_buffer("half_range", ((high - low) / 2).to(dtype))
        if config.kind == "rbf":
            n = config.basis
            self.centres = nn.Parameter(torch.randn(n, state_dim, generator=generator, dtype=dtype))
            w = torch.randn(U, n, generator=generator, dtype=dtype) * config.init_weight_std
            self.weights = nn.Parameter(w)
            self.log_ell = nn.Parameter(torch.zeros(U, state_dim, dtype=dtype))
        else:
            self.W = nn.Parameter(torch.zeros(U, state_dim, dtype=dtype))
            self.b = nn.Parameter(torch.zeros(U, dtype=dtype))

    @torch.no_grad()
    def initialise(self, states: Tensor, generator: torch.Generator) -> None:
        """RBF centres at randomly drawn observed states, length-scales their spread (PILCO
        initialises the centres from the start distribution)."""
        if self.config.kind != "rbf":
            return
        states = states.to(self.mid.dtype)
        pick = torch.randint(len(states), (len(self.centres),), generator=generator)
        self.centres.copy_(states[pick])
        self.log_ell.copy_(states.std(0).clamp_min(1e-3).log().expand_as(self.log_ell))

    def pre_squash(self, m: Tensor, s: Tensor) -> Moments:
        """Moments of ``pi(x)`` for ``x ~ N(m [B, D], s [B, D, D])``."""
        if self.config.kind == "rbf":
            zero = torch.zeros(len(self.weights), dtype=m.dtype, device=m.device)
            return moment_match(self.centres, self.weights, self.log_ell, zero, m, s)
        mean = m @ self.W.T + self.b
        return mean, self.W @ s @ self.W.T, s @ self.W.T

    def moments(self, m: Tensor, s: Tensor) -> Moments:
        """Moments of the squashed action ``u`` for ``x ~ N(m, s)`` (module docstring, 1-2)."""
        mu, su, cxu = self.pre_squash(m, s)
        # z = (u~, 3 u~) ~ N(mz, Vz); u = mid + A sin z with A = half * (9/8, 1/8)
        U = mu.shape[-1]
        eye = torch.eye(U, dtype=m.dtype, device=m.device)
        P = torch.cat([eye, 3 * eye])  # [2U, U]
        A = torch.cat([9 / 8 * torch.diag(self.half_range), 1 / 8 * torch.diag(self.half_range)], 1)
        mz, Vz = mu @ P.T, P @ su @ P.T
        mean_sin, cov_sin, dsin = sin_moments(mz, Vz)
        mean = self.mid + mean_sin @ A.T
        cov = A @ cov_sin @ A.T
        # Stein's lemma: Cov[x, sin z] = Cov[x, z] E[cos z]
        cross = (cxu @ P.T) * dsin[:, None, :] @ A.T
        return mean, (cov + cov.mT) / 2, cross

    def forward(self, x: Tensor) -> Tensor:
        """Actions ``[B, U]`` for states ``x [B, D]``."""
        x = x.to(self.mid.dtype)
        if self.config.kind == "rbf":
            d = (x[:, None] - self.centres[None])[:, None] / self.log_ell.exp()[None, :, None]
            u = (torch.exp(-0.5 * (d * d).sum(-1)) * self.weights).sum(-1)  # [B, U]
        else:
            u = x @ self.W.T + self.b
        return self.mid + self.half_range * (9 * torch.sin(u) + torch.sin(3 * u)) / 8


def sin_moments(m: Tensor, V: Tensor) -> Moments:
    """Mean ``[B, K]``, covariance ``[B, K, K]`` of ``sin z`` for ``z ~ N(m [B, K], V)``, and
    ``E[cos z] [B, K]`` (its expected derivative); ``E[sin z] = e^{-v/2} sin m`` and
    ``E[sin z_i sin z_j] = (e^{-(v_i + v_j)/2} / 2) (e^{V_ij} cos(m_i - m_j) - e^{-V_ij}
    cos(m_i + m_j))``."""
    v = V.diagonal(dim1=-2, dim2=-1)
    damp = torch.exp(-v / 2)
    mean = damp * torch.sin(m)
    both = damp[:, :, None] * damp[:, None, :]
    diff, summ = m[:, :, None] - m[:, None, :], m[:, :, None] + m[:, None, :]
    second = both / 2 * (torch.exp(V) * torch.cos(diff) - torch.exp(-V) * torch.cos(summ))
    cov = second - mean[:, :, None] * mean[:, None, :]
    return mean, cov, damp * torch.cos(m)


@dataclasses.dataclass
class SaturatingCost:
    """``c(x) = 1 - exp(-|P x - target|^2 / (2 width^2))`` on a linear projection ``P [K, D]``
    of the state (e.g. the pole tip's position); ``W = P' P / width^2``."""

    projection: Tensor  # [K, D]
    target: Tensor  # [K]
    width: float

    def __post_init__(self) -> None:
        P = self.projection.to(torch.float64)
        self.W = P.T @ P / self.width**2  # [D, D]
        # a state whose projection is the target (least squares)
        self.x_target = torch.linalg.lstsq(P, self.target.to(torch.float64)[:, None]).solution[:, 0]

    def expected(self, m: Tensor, s: Tensor) -> Tensor:
        """``E[c(x)] [B]`` for ``x ~ N(m [B, D], s [B, D, D])`` (module docstring, step 5)."""
        W = self.W.to(m)
        eye = torch.eye(len(W), dtype=m.dtype, device=m.device)
        IsW = eye + s @ W
        e = m - self.x_target.to(m)
        Wi = torch.linalg.solve(IsW.mT, W).mT  # W (I + S W)^{-1}
        quad = (e[:, None, :] @ Wi @ e[:, :, None]).reshape(-1)
        return 1 - torch.exp(-quad / 2) / torch.linalg.det(IsW).sqrt()

    def __call__(self, x: Tensor) -> Tensor:
        """``c(x) [B]`` at states ``x [B, D]``."""
        e = x.to(torch.float64) @ self.projection.T.to(torch.float64) - self.target.to(x.device)
        return 1 - torch.exp(-(e * e).sum(-1) / (2 * self.width**2))


def propagate(
    gp: GaussianProcess, policy: SquashedPolicy, m: Tensor, s: Tensor
) -> tuple[Tensor, Tensor]:
    """One predicted step ``N(m [B, D], s [B, D, D]) -> N(m', s')`` (module docstring, 1-4)."""
    D = m.shape[-1]
    mu, su, cxu = policy.moments(m, s)
    mj = torch.cat([m, mu], -1)
    sj = torch.cat([torch.cat([s, cxu], -1), torch.cat([cxu.mT, su], -1)], -2)
    M, S_delta, C = gp.moments(mj, sj)
    cross = C[:, :D]  # Cov[x, Delta]
    s_next = s + S_delta + cross + cross.mT
    return m + M, (s_next + s_next.mT) / 2


def predicted_cost(
    gp: GaussianProcess,
    policy: SquashedPolicy,
    cost: SaturatingCost,
    m0: Tensor,
    s0: Tensor,
    horizon: int,
    gamma: float = 1.0,
) -> Tensor:
    """Expected costs ``[B, H]`` of the ``H`` predicted states from ``N(m0 [B, D], s0)``."""

    def step(m: Tensor, s: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        m, s = propagate(gp, policy, m, s)
        return m, s, cost.expected(m, s)

    costs, m, s = [], m0, s0
    for t in range(horizon):
        if torch.is_grad_enabled():
            m, s, c = checkpoint(step, m, s, use_reentrant=False)
        else:
            m, s, c = step(m, s)
        costs.append(c * gamma**t)
    return torch.stack(costs, -1)


def optimize_policy(
    gp: GaussianProcess,
    policy: SquashedPolicy,
    cost: SaturatingCost,
    m0: Tensor,
    s0: Tensor,
    weights: Tensor,
    horizon: int,
    iterations: int,
    gamma: float = 1.0,
) -> dict[str, float]:
    """Minimise ``sum_b weights_b sum_t E[c(x_t)]`` over the policy's parameters by L-BFGS
    (gradients by autograd through the predicted trajectories); keeps the best parameters seen.
    Returns the predicted cost per step before and after."""
    params = list(policy.parameters())
    best_loss, best_state = math.inf, [p.detach().clone() for p in params]

    def objective() -> Tensor:
        c = predicted_cost(gp, policy, cost, m0, s0, horizon, gamma)
        return (weights * c.sum(-1)).sum()

    optimizer = torch.optim.LBFGS(params, max_iter=iterations, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = objective()
        nonlocal best_loss, best_state
        if torch.isfinite(loss) and float(loss.detach()) < best_loss:
            best_loss, best_state = float(loss.detach()), [p.detach().clone() for p in params]
        if torch.isfinite(loss):
            loss.backward()
        return loss

    with torch.enable_grad():
        before = float(objective().detach())
        optimizer.step(closure)
    with torch.no_grad():
        for p, b in zip(params, best_state, strict=True):
            p.copy_(b)
    after = min(before, best_loss)
    return {"policy_cost_before": before / horizon, "policy_cost_after": after / horizon}
