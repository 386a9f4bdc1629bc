"""Iterative LQR (iLQR) over a differentiable model, as an MPC trajectory optimizer.

iLQR (Li & Todorov 2004, "Iterative linear quadratic regulator design for nonlinear biological
movement systems") improves an action sequence ``U [H, a]`` by repeating

1. a rollout ``x_{t+1} = f(x_t, u_t)`` of the current plan;
2. a first-order expansion of the dynamics (``f_x``, ``f_u``) and a second-order one of the cost
   ``l(x, u) = -gamma^t r(x, u, f(x, u))`` around it, by batched autograd (``torch.func``:
   ``vmap`` over ``jacrev`` of the model's forward pass, so a known model, an ensemble's mean or
   a hybrid model are differentiated alike, all ``B * H`` points in one call);
3. a backward Riccati-like pass giving open-loop steps ``k_t`` and feedback gains ``K_t``;
4. a forward pass ``u_t = U_t + alpha k_t + K_t (x_t - X_t)`` for several ``alpha`` at once.

As Tassa, Erez & Todorov 2012 ("Synthesis and stabilization of complex behaviors through online
trajectory optimization", section II-F) it regularises ``V_xx + mu I`` inside ``Q_uu`` and
``Q_ux`` (``mu`` grows quadratically when ``Q_uu`` is not positive definite or no ``alpha``
improves, and shrinks after a success) and accepts the largest ``alpha`` (of
``10^linspace(0, -3, n)``) whose actual improvement is a fraction ``accept_ratio`` of the
predicted one. Box-constrained controls are handled by ``constraints``:

* ``clamp`` — unconstrained gains, controls clamped to the bounds in the forward pass;
* ``projected`` — the control-limited backward pass of Tassa, Mansard & Todorov 2014
  ("Control-limited differential dynamic programming"): ``k_t`` solves the box QP
  ``min_k 0.5 k' Q_uu k + Q_u' k`` s.t. ``low <= U_t + k <= high`` by projected Newton
  (:func:`box_qp`), and ``K_t`` acts on the free dimensions only.

Everything is batched over ``B`` start states (per-row ``mu``, line search and convergence);
the only Python loops are over time and iterations. The plan's return is evaluated on the mean
model (termination is ignored).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal, Protocol

import torch
from torch import Tensor
from torch.func import jacrev, vmap

from modelbased.core.config import Config
from modelbased.core.errors import ConfigError
from modelbased.planning.trajectory import PlanResult, Score, TrajectoryOptimizer

Transition = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
"""``(obs [N, o], action [N, a]) -> (next_obs [N, o], reward [N])``, differentiable."""


class DifferentiableScore(Protocol):
    """A score that also exposes its model (``mpc.ModelScore``): what iLQR needs."""

    obs: Tensor  # [B, o] start states
    gamma: float
    terminal_value: Callable[[Tensor], Tensor] | None

    def transition(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """The model's mean next state ``[N, o]`` and reward ``[N]``, differentiable."""

    def __call__(self, action_sequences: Tensor) -> Tensor:
        """``[B, K, H, a] -> [B, K]`` imagined returns."""


@dataclasses.dataclass(frozen=True)
class ILQRConfig(Config):
    """iLQR settings (Tassa et al. 2012's regularisation and line search)."""

    kind: Literal["ilqr"] = "ilqr"  # the optimizer
    iterations: int = 10  # iLQR iterations at most per plan
    tolerance: float = 1e-4  # stop when every row's relative cost improvement is below this
    constraints: Literal["projected", "clamp"] = "projected"  # how box bounds are kept
    line_search_steps: int = 8  # step sizes alpha = 10^linspace(0, -3, n), tried at once
    accept_ratio: float = 0.1  # accept alpha when actual >= ratio * predicted improvement
    reg_init: float = 0.0  # initial mu added to V_xx
    reg_min: float = 1e-6  # mu below this becomes 0
    reg_max: float = 1e10  # a row whose mu exceeds this stops improving
    reg_factor: float = 2.0  # Tassa's Delta_0: mu grows or shrinks by powers of it
    qp_iterations: int = 10  # projected-Newton iterations of the box QP at most

    def validate(self) -> None:
        """Positive counts and a sensible regularisation schedule."""
        for key in ("iterations", "line_search_steps", "qp_iterations"):
            self.require(getattr(self, key) >= 1, key, "must be >= 1")
        self.require(self.tolerance >= 0, "tolerance", "must be >= 0")
        self.require(0 <= self.accept_ratio < 1, "accept_ratio", "must be in [0, 1)")
        self.require(self.reg_init >= 0, "reg_init", "must be >= 0")
        self.require(self.reg_min > 0, "reg_min", "must be > 0")
        self.require(self.reg_max > self.reg_min, "reg_max", f"must be > reg_min={self.reg_min}")
        self.require(self.reg_factor > 1, "reg_factor", "must be > 1")


def box_qp(
    H: Tensor, g: Tensor, lower: Tensor, upper: Tensor, x: Tensor, iterations: int = 10
) -> tuple[Tensor, Tensor]:
    """``min_x 0.5 x' H x + g' x`` s.t. ``lower <= x <= upper`` by projected Newton (Tassa,
    Mansard & Todorov 2014, algorithm 3; Bertsekas 1982), batched.

    Args:
        H: ``[B, m, m]`` positive definite Hessian.
        g: ``[B, m]`` gradient at 0.
        lower: ``[B, m]`` lower bounds.
        upper: ``[B, m]`` upper bounds.
        x: ``[B, m]`` the warm start (projected into the box first).
        iterations: Newton steps at most (stops early once no row moves).

    Returns:
        The minimiser ``[B, m]`` and the free mask ``[B, m]`` (dimensions not held at a bound
        by the gradient), whose Hessian block the feedback gains use.
    """
    eye = torch.eye(H.shape[-1], dtype=H.dtype, device=H.device)
    steps = 0.5 ** torch.arange(8, dtype=H.dtype, device=H.device)  # Armijo backtracking
    x = torch.minimum(torch.maximum(x, lower), upper)

    def value(z: Tensor) -> Tensor:  # [B, S, m] -> [B, S]
        return (g.unsqueeze(1) * z).sum(-1) + 0.5 * (z * (z @ H.transpose(-1, -2))).sum(-1)

    free = torch.ones_like(x, dtype=torch.bool)
    for _ in range(iterations):
        grad = g + (H @ x.unsqueeze(-1)).squeeze(-1)
        free = ~(((x <= lower) & (grad > 0)) | ((x >= upper) & (grad < 0)))
        both = free.unsqueeze(-1) & free.unsqueeze(-2)
        step = -torch.linalg.solve(torch.where(both, H, eye), torch.where(free, grad, 0.0))
        if not bool((step.abs() > 1e-12).any()):
            break
        trial = x.unsqueeze(1) + steps[:, None] * step.unsqueeze(1)
        trial = torch.minimum(torch.maximum(trial, lower.unsqueeze(1)), upper.unsqueeze(1))
        decrease = value(x.unsqueeze(1)) - value(trial)
        armijo = decrease >= 0.1 * (grad.unsqueeze(1) * (x.unsqueeze(1) - trial)).sum(-1)
        first = torch.where(armijo.any(1), armijo.int().argmax(1), -1)
        chosen = trial[torch.arange(len(x), device=x.device), first.clamp_min(0)]
        x = torch.where((first >= 0).unsqueeze(-1), chosen, x)
    return x, free


@dataclasses.dataclass
class _Expansion:
    """Derivatives along a trajectory, ``[B, H, ...]`` (costs, i.e. negated rewards)."""

    fx: Tensor  # [B, H, o, o]
    fu: Tensor  # [B, H, o, a]
    lx: Tensor  # [B, H, o]
    lu: Tensor  # [B, H, a]
    lxx: Tensor  # [B, H, o, o]
    lux: Tensor  # [B, H, a, o]
    luu: Tensor  # [B, H, a, a]
    vx: Tensor  # [B, o] terminal cost gradient
    vxx: Tensor  # [B, o, o] terminal cost Hessian


class ILQR(TrajectoryOptimizer):
    """iLQR as a :class:`TrajectoryOptimizer`; ``score`` must be a :class:`DifferentiableScore`
    (:func:`~modelbased.planning.mpc.imagined_return` gives one); see the module docstring."""

    config_class = ILQRConfig
    config: ILQRConfig

    def optimize(
        self,
        score: Score,
        batch_size: int | None = None,
        init_mean: Tensor | None = None,
        init_std: Tensor | None = None,
    ) -> PlanResult:
        """Improve ``init_mean [B, H, a]`` (default: the middle of the bounds) by iLQR on the
        score's model from its start states ``[B, o]``; ``init_std`` is ignored."""
        transition = getattr(score, "transition", None)
        if transition is None:
            raise ConfigError(
                "ILQR: needs a differentiable score with a model (planning.mpc.imagined_return "
                "of a ModelEnv), got a plain score function"
            )
        problem: DifferentiableScore = score  # type: ignore[assignment]
        with torch.inference_mode(False), torch.enable_grad():
            x0 = problem.obs.clone()
            U, _ = self._start(batch_size or len(x0), init_mean, None, self.half_range)
            return self.solve(transition, x0, U.clone(), problem.gamma, problem.terminal_value)

    def solve(
        self,
        transition: Transition,
        x0: Tensor,
        U: Tensor,
        gamma: float = 1.0,
        terminal_value: Callable[[Tensor], Tensor] | None = None,
    ) -> PlanResult:
        """Run iLQR from ``x0 [B, o]`` and the initial plan ``U [B, H, a]`` (within the bounds)."""
        c = self.config
        B, H, _ = U.shape
        alphas = torch.logspace(0, -3, c.line_search_steps, dtype=U.dtype, device=U.device)
        discount = gamma ** torch.arange(H + 1, dtype=U.dtype, device=U.device)  # t = 0..H
        mu = torch.full((B,), c.reg_init, dtype=U.dtype, device=U.device)
        delta = torch.ones_like(mu)
        k = torch.zeros_like(U)
        X, cost = self._rollout(transition, x0, U, discount, terminal_value)
        iterations, evaluations = 0, 1
        for _ in range(c.iterations):
            iterations += 1
            d = self._expand(transition, X, U, discount, terminal_value)
            k, K, dv1, dv2, mu, delta = self._backward(d, U, mu, delta)
            # forward pass for every alpha at once: [B * S] rollouts with feedback
            X_new, U_new, cost_new = self._line_search(transition, X, U, k, K, alphas, discount,
                                                       terminal_value)  # fmt: skip
            evaluations += len(alphas)
            predicted = -(alphas * dv1.unsqueeze(1) + alphas.square() * dv2.unsqueeze(1))
            improvement = cost.unsqueeze(1) - cost_new
            ok = (improvement > c.accept_ratio * predicted.clamp_min(0)) & (improvement > 0)
            accepted = ok.any(1) & (mu <= c.reg_max)
            first = ok.int().argmax(1)
            rows = torch.arange(B, device=U.device)
            gain = torch.where(accepted, improvement[rows, first], 0.0)
            X = torch.where(accepted[:, None, None], X_new[rows, first], X)
            U = torch.where(accepted[:, None, None], U_new[rows, first], U)
            relative = gain / cost.abs().clamp_min(1e-12)
            cost = torch.where(accepted, cost_new[rows, first], cost)
            # Tassa et al. 2012: shrink mu after a success, grow it after a failure
            shrink = torch.minimum(1 / torch.full_like(delta, c.reg_factor), delta / c.reg_factor)
            grow = torch.maximum(torch.full_like(delta, c.reg_factor), delta * c.reg_factor)
            delta = torch.where(accepted, shrink, grow)
            mu = torch.where(
                accepted,
                torch.where(mu * delta > c.reg_min, mu * delta, 0.0),
                torch.maximum(torch.full_like(mu, c.reg_min), mu * delta),
            )
            done = (accepted & (relative < c.tolerance)) | (mu > c.reg_max)
            if bool(done.all()):
                break
        return PlanResult(U.detach(), -cost.detach(), U.detach(), iterations, evaluations)

    # -- the pieces ---------------------------------------------------------------------------
    def _rollout(
        self,
        transition: Transition,
        x0: Tensor,
        U: Tensor,
        discount: Tensor,
        terminal_value: Callable[[Tensor], Tensor] | None,
    ) -> tuple[Tensor, Tensor]:
        """Open-loop rollout: states ``[B, H + 1, o]`` and total cost ``[B]``."""
        with torch.no_grad():
            states, cost, x = [x0], torch.zeros(len(x0), dtype=U.dtype, device=U.device), x0
            for t in range(U.shape[1]):
                x, r = transition(x, U[:, t])
                states.append(x)
                cost = cost - discount[t] * r
            if terminal_value is not None:
                cost = cost - discount[-1] * terminal_value(x).reshape(-1)
        return torch.stack(states, 1), cost

    def _line_search(
        self,
        transition: Transition,
        X: Tensor,
        U: Tensor,
        k: Tensor,
        K: Tensor,
        alphas: Tensor,
        discount: Tensor,
        terminal_value: Callable[[Tensor], Tensor] | None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Closed-loop rollouts for every ``alpha``: states ``[B, S, H + 1, o]``, actions
        ``[B, S, H, a]``, costs ``[B, S]``."""
        B, H, a = U.shape
        S, o = len(alphas), X.shape[-1]
        with torch.no_grad():
            x = X[:, :1].expand(B, S, o).reshape(B * S, o)
            states, actions = [x], []
            cost = torch.zeros(B * S, dtype=U.dtype, device=U.device)
            for t in range(H):
                dx = (x.reshape(B, S, o) - X[:, t : t + 1]).unsqueeze(-1)
                u = U[:, t : t + 1] + alphas[None, :, None] * k[:, t : t + 1]
                u = self.clip(u + (K[:, t : t + 1] @ dx).squeeze(-1)).reshape(B * S, a)
                x, r = transition(x, u)
                states.append(x)
                actions.append(u)
                cost = cost - discount[t] * r
            if terminal_value is not None:
                cost = cost - discount[-1] * terminal_value(x).reshape(-1)
        X_new = torch.stack(states, 1).reshape(B, S, H + 1, o)
        return X_new, torch.stack(actions, 1).reshape(B, S, H, a), cost.reshape(B, S)

    def _expand(
        self,
        transition: Transition,
        X: Tensor,
        U: Tensor,
        discount: Tensor,
        terminal_value: Callable[[Tensor], Tensor] | None,
    ) -> _Expansion:
        """Dynamics Jacobians and reward gradients/Hessians at all ``B * H`` points in one
        ``vmap(jacrev(...))`` call (module docstring, step 2)."""
        B, H, a = U.shape
        o = X.shape[-1]

        def step(x: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
            next_x, r = transition(x.unsqueeze(0), u.unsqueeze(0))
            return next_x.squeeze(0), r.reshape(())

        def first_order(x: Tensor, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            rx, ru = jacrev(lambda x, u: step(x, u)[1], argnums=(0, 1))(x, u)
            return step(x, u)[0], rx, ru

        def with_values(x: Tensor, u: Tensor) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
            out = first_order(x, u)
            return out, out[1:]

        xs, us = X[:, :H].reshape(B * H, o).detach(), U.reshape(B * H, a).detach()
        jac, (rx, ru) = vmap(jacrev(with_values, argnums=(0, 1), has_aux=True))(xs, us)
        (fx, fu), (rxx, rxu), (_, ruu) = jac
        w = -discount[:H].repeat(B)  # costs are discounted negated rewards
        w2, w3 = w[:, None, None], w[:, None]
        vx = torch.zeros(B, o, dtype=U.dtype, device=U.device)
        vxx = torch.zeros(B, o, o, dtype=U.dtype, device=U.device)
        if terminal_value is not None:
            xH = X[:, H].detach()

            def value(x: Tensor) -> Tensor:
                return terminal_value(x.unsqueeze(0)).reshape(())

            def gradient(x: Tensor) -> tuple[Tensor, Tensor]:
                g = jacrev(value)(x)
                return g, g

            hess, grad = vmap(jacrev(gradient, has_aux=True))(xH)
            vx, vxx = -discount[H] * grad, -discount[H] * hess
        lux = (w2 * rxu.transpose(-1, -2)).reshape(B, H, a, o)
        return _Expansion(
            fx=fx.reshape(B, H, o, o),
            fu=fu.reshape(B, H, o, a),
            lx=(w3 * rx).reshape(B, H, o),
            lu=(w3 * ru).reshape(B, H, a),
            lxx=(w2 * rxx).reshape(B, H, o, o),
            lux=lux,
            luu=(w2 * ruu).reshape(B, H, a, a),
            vx=vx,
            vxx=vxx,
        )

    def _backward(
        self, d: _Expansion, U: Tensor, mu: Tensor, delta: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """The backward pass, repeated with a larger ``mu`` for rows whose ``Q_uu`` is not
        positive definite: ``k [B, H, a]``, ``K [B, H, a, o]``, the predicted cost change
        ``alpha dv1 + alpha^2 dv2`` (``dv1, dv2 [B]``) and the updated ``mu``, ``delta``."""
        c = self.config
        while True:
            k, K, dv1, dv2, failed = self._backward_pass(d, U, mu)
            if not bool(failed.any()):
                return k, K, dv1, dv2, mu, delta
            grow = torch.maximum(torch.full_like(delta, c.reg_factor), delta * c.reg_factor)
            delta = torch.where(failed, grow, delta)
            mu = torch.where(failed, torch.maximum(torch.full_like(mu, c.reg_min), mu * delta), mu)
            if bool((mu[failed] > c.reg_max).all()):
                return k, K, dv1, dv2, mu, delta  # those rows keep their plan (no step)

    def _backward_pass(
        self, d: _Expansion, U: Tensor, mu: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        B, H, a = U.shape
        o = d.fx.shape[-1]
        eye_o = torch.eye(o, dtype=U.dtype, device=U.device)
        Vx, Vxx = d.vx, d.vxx
        ks, Ks = [], []
        dv1 = torch.zeros(B, dtype=U.dtype, device=U.device)
        dv2 = torch.zeros_like(dv1)
        failed = torch.zeros(B, dtype=torch.bool, device=U.device)
        reg = mu[:, None, None] * eye_o
        projected = self.config.constraints == "projected"
        for t in reversed(range(H)):
            fx, fu = d.fx[:, t], d.fu[:, t]
            fuT = fu.transpose(-1, -2)
            Qx = d.lx[:, t] + (fx.transpose(-1, -2) @ Vx.unsqueeze(-1)).squeeze(-1)
            Qu = d.lu[:, t] + (fuT @ Vx.unsqueeze(-1)).squeeze(-1)
            Qxx = d.lxx[:, t] + fx.transpose(-1, -2) @ Vxx @ fx
            Vreg = Vxx + reg
            Quu = d.luu[:, t] + fuT @ Vreg @ fu
            Qux = d.lux[:, t] + fuT @ Vreg @ fx
            Quu = (Quu + Quu.transpose(-1, -2)) / 2
            L, info = torch.linalg.cholesky_ex(Quu)
            bad = info != 0
            failed = failed | bad
            L = torch.where(bad[:, None, None], torch.eye(a, dtype=U.dtype, device=U.device), L)
            kt = -torch.cholesky_solve(Qu.unsqueeze(-1), L).squeeze(-1)
            Kt = -torch.cholesky_solve(Qux, L)
            if projected:
                low, high = self.action_low - U[:, t], self.action_high - U[:, t]
                Quu_safe = L @ L.transpose(-1, -2)
                kt, free = box_qp(Quu_safe, Qu, low, high, kt, self.config.qp_iterations)
                both = free.unsqueeze(-1) & free.unsqueeze(-2)
                eye_a = torch.eye(a, dtype=U.dtype, device=U.device)
                Hf = torch.where(both, Quu_safe, eye_a)
                Kt = -torch.linalg.solve(Hf, torch.where(free.unsqueeze(-1), Qux, 0.0))
            kt = torch.where(bad[:, None], 0.0, kt)
            Kt = torch.where(bad[:, None, None], 0.0, Kt)
            KtT = Kt.transpose(-1, -2)
            Quu_k = (Quu @ kt.unsqueeze(-1)).squeeze(-1)
            dv1 = dv1 + (kt * Qu).sum(-1)
            dv2 = dv2 + 0.5 * (kt * Quu_k).sum(-1)
            Vx = Qx + (KtT @ (Quu_k + Qu).unsqueeze(-1)).squeeze(-1)
            Vx = Vx + (Qux.transpose(-1, -2) @ kt.unsqueeze(-1)).squeeze(-1)
            Vxx = Qxx + KtT @ Quu @ Kt + KtT @ Qux + Qux.transpose(-1, -2) @ Kt
            Vxx = (Vxx + Vxx.transpose(-1, -2)) / 2
            ks.append(kt)
            Ks.append(Kt)
        return torch.stack(ks[::-1], 1), torch.stack(Ks[::-1], 1), dv1, dv2, failed
