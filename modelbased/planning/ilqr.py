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
model (termination is ignored). On small models the cost is Python dispatch per time step, not
arithmetic, so the sequential parts do as little per step as they can:

* ``multi_start``: the warm start and a few fixed plans (:meth:`ILQR.initial_plans`) are rolled
  out as one batch and iLQR starts from the lowest-cost one (a zero plan on a cost maximum has a
  zero gradient; a bang plan leaves it);
* with a known reward (``score.reward_fn``) the rollouts step the dynamics alone and score all
  ``H`` steps afterwards in one call (:class:`Simulator`);
* with one action dimension the backward pass is closed-form (``ILQR.scalar_fast_path``);
* a plan ends before its line search when the full step's predicted improvement is below
  ``tolerance`` (a settled MPC's shifted warm start usually is).
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
Dynamics = Callable[[Tensor, Tensor], Tensor]
"""``(obs [N, o], action [N, a]) -> next_obs [N, o]``."""
Reward = Callable[[Tensor, Tensor, Tensor], Tensor]
"""``(obs [N, o], action [N, a], next_obs [N, o]) -> reward [N]``."""


class Simulator:
    """Steps a :data:`Transition` along time. Given it split into ``dynamics`` and a known
    ``reward`` (``transition = reward after dynamics``), the sequential loop steps the dynamics
    alone and the rewards of all ``H`` steps are computed afterwards in one batched call."""

    def __init__(self, transition: Transition, split: tuple[Dynamics, Reward] | None) -> None:
        self.transition, self.split = transition, split

    def step(self, x: Tensor, u: Tensor) -> tuple[Tensor, Tensor | None]:
        """``x [N, o]``, ``u [N, a]`` -> next state ``[N, o]`` and reward ``[N]`` (``None``
        when split: see :meth:`rewards`)."""
        if self.split is not None:
            return self.split[0](x, u), None
        return self.transition(x, u)

    def cost(
        self,
        X: Tensor,
        U: Tensor,
        rewards: list[Tensor | None],
        discount: Tensor,
        terminal_value: Callable[[Tensor], Tensor] | None,
    ) -> Tensor:
        """The cost ``sum_t -gamma^t r_t - gamma^H V(x_H)`` ``[N]`` of states ``X [N, H + 1, o]``
        and actions ``U [N, H, a]`` with the step rewards :meth:`step` returned."""
        N, H, a = U.shape
        if self.split is not None:
            o = X.shape[-1]
            r = self.split[1](X[:, :-1].reshape(N * H, o), U.reshape(N * H, a),
                              X[:, 1:].reshape(N * H, o)).reshape(N, H)  # fmt: skip
        else:
            r = torch.stack(rewards, 1)  # type: ignore[arg-type]
        cost = -(r * discount[:H]).sum(1)
        if terminal_value is not None:
            cost = cost - discount[H] * terminal_value(X[:, H]).reshape(-1)
        return cost


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
    # stop when every row's relative cost improvement (achieved, or predicted for the full
    # step) is below this
    tolerance: float = 1e-4
    constraints: Literal["projected", "clamp"] = "projected"  # how box bounds are kept
    line_search_steps: int = 8  # step sizes alpha = 10^linspace(0, -3, n), tried at once
    accept_ratio: float = 0.1  # accept alpha when actual >= ratio * predicted improvement
    reg_init: float = 0.0  # initial mu added to V_xx
    reg_min: float = 1e-6  # mu below this becomes 0
    reg_max: float = 1e10  # a row whose mu exceeds this stops improving
    reg_factor: float = 2.0  # Tassa's Delta_0: mu grows or shrinks by powers of it
    qp_iterations: int = 10  # projected-Newton iterations of the box QP at most
    # start from the lowest-cost of the warm start and a few fixed plans (constants at the
    # bounds and the middle, bang-bang switching halfway), rolled out in one batch
    multi_start: bool = True

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
    """Derivatives along a trajectory in the joint variable ``z = (x, u)`` (costs, i.e.
    discounted negated rewards)."""

    fz: Tensor  # [B, H, o, o + a] dynamics Jacobian (f_x, f_u)
    lz: Tensor  # [B, H, o + a] cost gradient
    lzz: Tensor  # [B, H, o + a, o + a] cost Hessian
    vx: Tensor  # [B, o] terminal cost gradient
    vxx: Tensor  # [B, o, o] terminal cost Hessian


class ILQR(TrajectoryOptimizer):
    """iLQR as a :class:`TrajectoryOptimizer`; ``score`` must be a :class:`DifferentiableScore`
    (:func:`~modelbased.planning.mpc.imagined_return` gives one); see the module docstring."""

    config_class = ILQRConfig
    config: ILQRConfig
    scalar_fast_path = True  # one action dimension: closed-form backward step (tested equal)

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
        reward_fn, dynamics = getattr(score, "reward_fn", None), getattr(score, "dynamics", None)
        split = (dynamics, reward_fn) if reward_fn is not None and dynamics is not None else None
        with torch.inference_mode(False), torch.enable_grad():
            x0 = problem.obs.clone()
            U, _ = self._start(batch_size or len(x0), init_mean, None, self.half_range)
            return self.solve(transition, x0, U.clone(), problem.gamma, problem.terminal_value,
                              split)  # fmt: skip

    def solve(
        self,
        transition: Transition,
        x0: Tensor,
        U: Tensor,
        gamma: float = 1.0,
        terminal_value: Callable[[Tensor], Tensor] | None = None,
        split: tuple[Dynamics, Reward] | None = None,
    ) -> PlanResult:
        """Run iLQR from ``x0 [B, o]`` and the initial plan ``U [B, H, a]`` (within the bounds);
        with ``multi_start`` from the lowest-cost of ``U`` and :meth:`initial_plans`. ``split``:
        ``transition`` as ``dynamics`` then a known ``reward``, to batch the rewards over time
        in the rollouts (the same plans, faster)."""
        c = self.config
        sim = Simulator(transition, split)
        starts = self.initial_plans(U) if c.multi_start else U.unsqueeze(1)  # [B, C, H, a]
        B, C, H, _ = starts.shape
        alphas = torch.logspace(0, -3, c.line_search_steps, dtype=U.dtype, device=U.device)
        discount = gamma ** torch.arange(H + 1, dtype=U.dtype, device=U.device)  # t = 0..H
        mu = torch.full((B,), c.reg_init, dtype=U.dtype, device=U.device)
        delta = torch.ones_like(mu)
        X, U, cost = self._best_start(sim, x0, starts, discount, terminal_value)
        iterations, evaluations = 0, C
        for _ in range(c.iterations):
            iterations += 1
            d = self._expand(transition, X, U, discount, terminal_value)
            k, K, dv1, dv2, mu, delta = self._backward(d, U, mu, delta)
            # converged when even the full step promises a negligible relative improvement (the
            # warm start of a settled MPC is already optimal): no line search to run
            if bool((-(dv1 + dv2) <= c.tolerance * cost.abs()).all()):
                break
            # forward pass for every alpha at once: [B * S] rollouts with feedback
            X_new, U_new, cost_new = self._line_search(sim, X, U, k, K, alphas, discount,
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
    def initial_plans(self, U: Tensor) -> Tensor:
        """The candidate starts ``[B, C, H, a]``: ``U [B, H, a]`` itself (the shifted warm
        start), then constant plans at the lower bound, the middle and the upper bound, and the
        two bang-bang plans switching between the bounds halfway. A plan of zero torque at an
        unstable equilibrium has a zero control gradient (iLQR cannot leave it); a
        multi-start over a few such fixed plans is the usual remedy (e.g. Tassa et al. 2012
        re-initialise from several plans; Howell et al. 2022, "Predictive Sampling", keep the
        nominal plan beside a few candidates)."""
        B, H, a = U.shape
        low, mid, high = self.action_low, self.middle, self.action_high
        first = torch.arange(H, device=U.device)[:, None] < H // 2  # [H, 1]
        fixed = torch.stack([
            low.expand(H, a), mid.expand(H, a), high.expand(H, a),
            torch.where(first, low, high), torch.where(first, high, low),
        ])  # fmt: skip
        return torch.cat([U.unsqueeze(1), fixed.to(U.dtype).expand(B, -1, H, a)], 1)

    def _best_start(
        self,
        sim: Simulator,
        x0: Tensor,
        candidates: Tensor,
        discount: Tensor,
        terminal_value: Callable[[Tensor], Tensor] | None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Roll out the ``candidates [B, C, H, a]`` (e.g. :meth:`initial_plans`) in one batch of
        ``B * C`` and keep the lowest-cost one per start state (the first on ties, so the warm
        start wins them): states ``[B, H + 1, o]``, plan ``[B, H, a]``, cost ``[B]``."""
        B, C, H, a = candidates.shape
        flat = candidates.reshape(B * C, H, a)
        X, cost = self._rollout(sim, x0.repeat_interleave(C, 0), flat, discount, terminal_value)
        cost = torch.nan_to_num(cost.reshape(B, C), nan=torch.inf)
        best = cost.argmin(1)
        rows = torch.arange(B, device=x0.device)
        X = X.reshape(B, C, H + 1, -1)[rows, best]
        return X, candidates[rows, best], cost[rows, best]

    def _rollout(
        self,
        sim: Simulator,
        x0: Tensor,
        U: Tensor,
        discount: Tensor,
        terminal_value: Callable[[Tensor], Tensor] | None,
    ) -> tuple[Tensor, Tensor]:
        """Open-loop rollout: states ``[B, H + 1, o]`` and total cost ``[B]``."""
        with torch.no_grad():
            states, rewards, x = [x0], [], x0
            for t in range(U.shape[1]):
                x, r = sim.step(x, U[:, t])
                states.append(x)
                rewards.append(r)
            X = torch.stack(states, 1)
            return X, sim.cost(X, U, rewards, discount, terminal_value)

    def _line_search(
        self,
        sim: Simulator,
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
            # u_t = U_t + alpha k_t + K_t (x_t - X_t): the open-loop part for all t at once
            ff = (U.unsqueeze(1) + alphas[None, :, None, None] * k.unsqueeze(1)).unsqueeze(-1)
            x = X[:, :1].expand(B, S, o).reshape(B * S, o)
            states, actions, rewards = [x], [], []
            for t in range(H):
                dx = (x.reshape(B, S, o) - X[:, t : t + 1]).unsqueeze(-1)  # [B, S, o, 1]
                u = self.clip(torch.matmul(K[:, t : t + 1], dx).add_(ff[:, :, t]).squeeze(-1))
                u = u.reshape(B * S, a)
                x, r = sim.step(x, u)
                states.append(x)
                actions.append(u)
                rewards.append(r)
            X_new, U_new = torch.stack(states, 1), torch.stack(actions, 1)
            cost = sim.cost(X_new, U_new, rewards, discount, terminal_value)
        return X_new.reshape(B, S, H + 1, o), U_new.reshape(B, S, H, a), cost.reshape(B, S)

    def _expand(
        self,
        transition: Transition,
        X: Tensor,
        U: Tensor,
        discount: Tensor,
        terminal_value: Callable[[Tensor], Tensor] | None,
    ) -> _Expansion:
        """Dynamics Jacobians and reward gradients/Hessians in ``z = (x, u)`` at all ``B * H``
        points in one ``vmap(jacrev(...))`` call (module docstring, step 2)."""
        B, H, a = U.shape
        o = X.shape[-1]

        def reward(z: Tensor) -> tuple[Tensor, Tensor]:  # the reward, and the next state
            next_x, r = transition(z[None, :o], z[None, o:])
            return r.reshape(()), next_x.squeeze(0)

        def first_order(z: Tensor) -> tuple[tuple[Tensor, Tensor], Tensor]:
            rz, next_x = jacrev(reward, has_aux=True)(z)
            return (next_x, rz), rz

        zs = torch.cat([X[:, :H], U], -1).reshape(B * H, o + a).detach()
        (fz, rzz), rz = vmap(jacrev(first_order, has_aux=True))(zs)
        w = -discount[:H].repeat(B)  # costs are discounted negated rewards
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
        return _Expansion(
            fz=fz.reshape(B, H, o, o + a),
            lz=(w[:, None] * rz).reshape(B, H, o + a),
            lzz=(w[:, None, None] * rzz).reshape(B, H, o + a, o + a),
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
        """One backward pass with ``V_xx + mu I`` inside ``Q`` (Tassa et al. 2012, eq. 10),
        in the joint form ``Q_zz = l_zz + f_z' (V_xx + mu I) f_z``, ``q_z = l_z + f_z' V_x``;
        the value update ``V_xx = M' Q_zz M``, ``V_x = M' (q_z + Q_zz m)`` with ``M = [I; K]``,
        ``m = [0; k]``. Rows with a ``Q_uu`` that is not positive definite are ``failed`` (their
        ``k``, ``K`` zero)."""
        if U.shape[-1] == 1 and self.scalar_fast_path:
            return self._backward_pass_scalar(d, U, mu)
        B, H, a = U.shape
        o = d.fz.shape[-2]
        eye_o = torch.eye(o, dtype=U.dtype, device=U.device)
        reg = mu[:, None, None] * eye_o
        top = eye_o.expand(B, o, o)
        Vx, Vxx = d.vx.unsqueeze(-1), d.vxx
        ks, Ks, Quus, Qus = [], [], [], []
        failed = torch.zeros(B, dtype=torch.bool, device=U.device)
        projected = self.config.constraints == "projected"
        for t in reversed(range(H)):
            fz = d.fz[:, t]
            fzT = fz.transpose(-1, -2)
            Qzz = torch.baddbmm(d.lzz[:, t], fzT, (Vxx + reg) @ fz)
            qz = torch.baddbmm(d.lz[:, t].unsqueeze(-1), fzT, Vx)  # [B, o + a, 1]
            Quu, Qux, Qu = Qzz[:, o:, o:], Qzz[:, o:, :o], qz[:, o:]
            L, info = torch.linalg.cholesky_ex(Quu)
            failed = failed | (info != 0)
            sol = -torch.cholesky_solve(torch.cat([Qu, Qux], -1), L)
            kt, Kt = sol[..., :1], sol[..., 1:]
            if projected:
                low = (self.action_low - U[:, t]).unsqueeze(-1)
                high = (self.action_high - U[:, t]).unsqueeze(-1)
                if bool(((kt < low) | (kt > high)).any()):
                    kt, Kt = self._limited(Quu, Qux, Qu, low, high, kt)
            M = torch.cat([top, Kt], -2)  # [B, o + a, o]
            Vxx = M.transpose(-1, -2) @ Qzz @ M
            Vxx = (Vxx + Vxx.transpose(-1, -2)) / 2
            Vx = M.transpose(-1, -2) @ (qz + Qzz[:, :, o:] @ kt)
            ks.append(kt)
            Ks.append(Kt)
            Quus.append(Quu)
            Qus.append(Qu)
        k = torch.stack(ks[::-1], 1).squeeze(-1)  # [B, H, a]
        K = torch.stack(Ks[::-1], 1)  # [B, H, a, o]
        k = torch.where(failed[:, None, None], 0.0, torch.nan_to_num(k))
        K = torch.where(failed[:, None, None, None], 0.0, torch.nan_to_num(K))
        Quu_all, Qu_all = torch.stack(Quus[::-1], 1), torch.stack(Qus[::-1], 1).squeeze(-1)
        dv1 = (k * Qu_all).sum((-1, -2))
        dv2 = 0.5 * (k * (Quu_all @ k.unsqueeze(-1)).squeeze(-1)).sum((-1, -2))
        return k, K, dv1, dv2, failed

    def _backward_pass_scalar(
        self, d: _Expansion, U: Tensor, mu: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """:meth:`_backward_pass` for one action dimension (``ILQR.scalar_fast_path``): ``Q_uu``
        is a number, so ``k_t = -Q_u / Q_uu`` and ``K_t = -Q_ux / Q_uu`` are one division and
        the box QP is a clamp of ``k_t`` (no feedback at a bound); slicing, bounds and the
        definiteness check are done for all ``t`` outside the loop. Same results (tested)."""
        B, H, _ = U.shape
        o = d.fz.shape[-2]
        eye_o = torch.eye(o, dtype=U.dtype, device=U.device)
        reg, top = mu[:, None, None] * eye_o, eye_o.expand(B, o, o)
        fz, fzT = d.fz.unbind(1), d.fz.transpose(-1, -2).unbind(1)  # H x [B, o, o + 1] / T
        lzz, lz = d.lzz.unbind(1), d.lz.unsqueeze(-1).unbind(1)
        projected = self.config.constraints == "projected"
        low = (self.action_low - U).unsqueeze(-1).unbind(1)  # H x [B, 1, 1]
        high = (self.action_high - U).unsqueeze(-1).unbind(1)
        Vx, Vxx = d.vx.unsqueeze(-1), d.vxx
        ks, Ks, us = [], [], []
        for t in reversed(range(H)):
            Qzz = torch.baddbmm(lzz[t], fzT[t], (Vxx + reg) @ fz[t])  # [B, o + 1, o + 1]
            qz = torch.baddbmm(lz[t], fzT[t], Vx)  # [B, o + 1, 1]
            u_row = torch.cat([qz, Qzz], -1)[:, o:]  # [B, 1, o + 2]: Q_u, Q_ux, Q_uu
            sol = u_row[..., : o + 1] / -u_row[..., o + 1 :]  # [B, 1, o + 1]: k_t, K_t
            kt, Kt = sol[..., :1], sol[..., 1:]
            if projected:
                clamped = torch.clamp(kt, low[t], high[t])
                Kt = torch.where(clamped != kt, 0.0, Kt)  # held at a bound: no feedback
                kt = clamped
            M = torch.cat([top, Kt], -2)  # [B, o + 1, o]
            MT = M.transpose(-1, -2)
            Vxx = MT @ Qzz @ M
            Vx = MT @ torch.baddbmm(qz, Qzz[:, :, o:], kt)
            ks.append(kt)
            Ks.append(Kt)
            us.append(u_row)
        rows = torch.stack(us[::-1], 1)  # [B, H, 1, o + 2]
        Qu, Quu = rows[..., 0], rows[..., -1]  # [B, H, 1]
        failed = ~(Quu > 0).all(1).squeeze(-1)
        k = torch.stack(ks[::-1], 1).squeeze(-1)  # [B, H, 1]
        K = torch.stack(Ks[::-1], 1)  # [B, H, 1, o]
        k = torch.where(failed[:, None, None], 0.0, torch.nan_to_num(k))
        K = torch.where(failed[:, None, None, None], 0.0, torch.nan_to_num(K))
        dv1 = (k * Qu).sum((-1, -2))
        dv2 = 0.5 * (k.square() * Quu).sum((-1, -2))
        return k, K, dv1, dv2, failed

    def _limited(
        self, Quu: Tensor, Qux: Tensor, Qu: Tensor, low: Tensor, high: Tensor, k: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The control-limited step (Tassa, Mansard & Todorov 2014): ``k`` from the box QP,
        ``K`` on the free dimensions only. Shapes ``[B, a, 1]``, ``[B, a, o]``."""
        a = Quu.shape[-1]
        H = Quu if bool(torch.isfinite(Quu).all()) else torch.nan_to_num(Quu)
        H = H + 1e-12 * torch.eye(a, dtype=H.dtype, device=H.device)
        kt, free = box_qp(H, Qu.squeeze(-1), low.squeeze(-1), high.squeeze(-1),
                          torch.nan_to_num(k.squeeze(-1)), self.config.qp_iterations)  # fmt: skip
        both = free.unsqueeze(-1) & free.unsqueeze(-2)
        Hf = torch.where(both, H, torch.eye(a, dtype=H.dtype, device=H.device))
        Kt = -torch.linalg.solve(Hf, torch.where(free.unsqueeze(-1), Qux, 0.0))
        return kt.unsqueeze(-1), Kt
