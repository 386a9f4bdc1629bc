"""LQR, iLQR and the hybrid model: Riccati against scipy, iLQR on an LQ problem, autograd
Jacobians against finite differences, box constraints, a known-dynamics swing-up, and the
hybrid model with a zero residual."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import modelbased as mb
from modelbased.core.errors import ConfigError
from modelbased.envs.known_dynamics import analytic_dynamics
from modelbased.envs.reward_fns import pendulum_reward
from modelbased.models import ModelEnv
from modelbased.models.ensemble import EnsembleConfig
from modelbased.models.hybrid import AnalyticConfig, HybridConfig, HybridModel, make_world_model
from modelbased.planning.ilqr import ILQR, ILQRConfig, Simulator, box_qp
from modelbased.planning.lqr import linearize, lqr_finite, lqr_infinite
from modelbased.planning.mpc import MPC, imagined_return

linalg = pytest.importorskip("scipy.linalg")
D = torch.float64


def random_system(seed: int, n: int = 4, m: int = 2):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=g, dtype=D) * 0.6
    B = torch.randn(n, m, generator=g, dtype=D)
    L = torch.randn(n, n, generator=g, dtype=D)
    Q = L @ L.T + 0.1 * torch.eye(n, dtype=D)
    R = torch.eye(m, dtype=D) * 0.5
    return A, B, Q, R


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_infinite_horizon_lqr_matches_scipy_dare(seed):
    A, B, Q, R = random_system(seed)
    K, P = lqr_infinite(A, B, Q, R)
    P_ref = linalg.solve_discrete_are(A.numpy(), B.numpy(), Q.numpy(), R.numpy())
    K_ref = np.linalg.solve(
        R.numpy() + B.numpy().T @ P_ref @ B.numpy(), B.numpy().T @ P_ref @ A.numpy()
    )
    np.testing.assert_allclose(P.numpy(), P_ref, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(K.numpy(), K_ref, rtol=1e-8, atol=1e-8)


def test_batched_lqr_and_the_finite_horizon_limit():
    systems = [random_system(s) for s in range(3)]
    A, B, Q, R = (torch.stack(x) for x in zip(*systems, strict=True))
    K_inf, P_inf = lqr_infinite(A, B, Q, R)
    K, P = lqr_finite(A, B, Q, R, horizon=300)
    assert K.shape == (300, 3, 2, 4) and P.shape == (301, 3, 4, 4)
    Kt, _ = lqr_finite(A.expand(300, 3, 4, 4), B.expand(300, 3, 4, 2), Q, R, 300, time_varying=True)
    torch.testing.assert_close(Kt, K)
    torch.testing.assert_close(K[0], K_inf, rtol=1e-6, atol=1e-8)
    for b, (Ab, Bb, Qb, Rb) in enumerate(systems):
        P_ref = linalg.solve_discrete_are(Ab.numpy(), Bb.numpy(), Qb.numpy(), Rb.numpy())
        np.testing.assert_allclose(P_inf[b].numpy(), P_ref, rtol=1e-8, atol=1e-8)


class LinearQuadratic:
    """``x' = A x + B u``, reward ``-(x'Qx + u'Ru)`` of the state before the step."""

    def __init__(self, A, B, Q, R):
        self.A, self.B, self.Q, self.R = A, B, Q, R

    def transition(self, x, u):
        reward = -((x @ self.Q) * x).sum(-1) - ((u @ self.R) * u).sum(-1)
        return x @ self.A.T + u @ self.B.T, reward


def test_ilqr_on_a_linear_quadratic_problem_is_lqr_in_one_iteration():
    A, B, Q, R = random_system(3)
    H, x0 = 12, torch.tensor([[1.0, -2.0, 0.5, 3.0], [0.0, 1.0, -1.0, 0.0]], dtype=D)
    problem = LinearQuadratic(A, B, Q, R)
    big = torch.full((2,), 1e6, dtype=D)
    optimizer = ILQR(-big, big, H, ILQRConfig(iterations=1))
    result = optimizer.solve(problem.transition, x0, torch.zeros(2, H, 2, dtype=D))
    assert result.iterations == 1
    K, P = lqr_finite(A, B, Q, R, H)
    x, expected = x0, []
    for t in range(H):
        u = -(x @ K[t].T)
        expected.append(u)
        x, _ = problem.transition(x, u)
    torch.testing.assert_close(result.actions, torch.stack(expected, 1), rtol=1e-6, atol=1e-8)
    # the optimal cost is x0' P_0 x0
    torch.testing.assert_close(-result.value, ((x0 @ P[0]) * x0).sum(-1), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("task", ["Pendulum-v1", "modelbased/CartPoleSwingUp-v0"])
def test_autograd_jacobians_match_finite_differences(task):
    physics = analytic_dynamics(task)
    env = gym.make(task)
    rng = np.random.default_rng(0)
    obs = np.stack([env.observation_space.sample() for _ in range(5)])
    if task == "Pendulum-v1":
        obs[:, :2] /= np.linalg.norm(obs[:, :2], axis=1, keepdims=True)
    else:
        obs[:, 1:3] /= np.linalg.norm(obs[:, 1:3], axis=1, keepdims=True)
        obs[:, 0] = rng.uniform(-1, 1, 5)
        obs[:, 3:] = rng.uniform(-3, 3, (5, 2))
    x = torch.as_tensor(obs, dtype=D)
    u = torch.as_tensor(rng.uniform(-0.9, 0.9, (5, 1)) * env.action_space.high, dtype=D)
    A, B = linearize(physics.step, x, u)
    eps = 1e-6
    for j in range(x.shape[1]):
        e = torch.zeros_like(x)
        e[:, j] = eps
        fd = (physics.step(x + e, u) - physics.step(x - e, u)) / (2 * eps)
        torch.testing.assert_close(A[:, :, j], fd, rtol=1e-5, atol=1e-6)
    e = torch.full_like(u, eps)
    fd = (physics.step(x, u + e) - physics.step(x, u - e)) / (2 * eps)
    torch.testing.assert_close(B[:, :, 0], fd, rtol=1e-5, atol=1e-6)


def test_box_qp_satisfies_the_kkt_conditions():
    g = torch.Generator().manual_seed(0)
    L = torch.randn(64, 3, 3, generator=g, dtype=D)
    H = L @ L.transpose(-1, -2) + 0.1 * torch.eye(3, dtype=D)
    q = torch.randn(64, 3, generator=g, dtype=D) * 3
    lower, upper = -torch.ones(64, 3, dtype=D), torch.ones(64, 3, dtype=D)
    x, free = box_qp(H, q, lower, upper, torch.zeros(64, 3, dtype=D), iterations=50)
    assert bool(((x >= lower - 1e-12) & (x <= upper + 1e-12)).all())
    grad = q + (H @ x.unsqueeze(-1)).squeeze(-1)
    at_low, at_high = x <= lower + 1e-9, x >= upper - 1e-9
    inside = ~at_low & ~at_high
    assert bool((grad[inside].abs() < 1e-6).all())
    assert bool((grad[at_low] > -1e-6).all()) and bool((grad[at_high] < 1e-6).all())
    assert bool(free[inside].all())


def pendulum_mpc(constraints: str, horizon: int = 30) -> tuple[MPC, ModelEnv]:
    model_env = ModelEnv(analytic_dynamics("Pendulum-v1"), pendulum_reward, "expectation")
    config = ILQRConfig(constraints=constraints)
    return MPC(ILQR(-2.0, 2.0, horizon, config)), model_env


@pytest.mark.parametrize("constraints", ["projected", "clamp"])
def test_ilqr_plans_respect_the_action_bounds(constraints):
    mpc, model_env = pendulum_mpc(constraints)
    obs = torch.tensor([[-1.0, 0.05, 0.0], [-0.9, -0.43, 1.0], [0.3, 0.95, -2.0]])
    result = mpc.plan(imagined_return(model_env, obs, 1), batch_size=3)
    assert result.actions.shape == (3, 30, 1)
    assert bool((result.actions.abs() <= 2.0).all())
    assert bool((result.actions.abs() > 1.99).any())  # the swing-up needs full torque
    assert bool(torch.isfinite(result.value).all())


@pytest.mark.parametrize("constraints", ["projected", "clamp"])
def test_the_one_action_fast_path_equals_the_general_backward_pass(constraints, monkeypatch):
    """With one action dimension the backward step is closed-form (a division and a clamp):
    the plans equal those of the Cholesky and box-QP path."""
    obs = torch.tensor([[-1.0, 0.05, 0.0], [-0.9, -0.43, 1.0], [0.3, 0.95, -2.0]])
    plans = []
    for fast in (True, False):
        monkeypatch.setattr(ILQR, "scalar_fast_path", fast)
        mpc, model_env = pendulum_mpc(constraints)
        plans.append(mpc.plan(imagined_return(model_env, obs, 1), batch_size=3))
    torch.testing.assert_close(plans[0].actions, plans[1].actions, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(plans[0].value, plans[1].value, atol=1e-4, rtol=1e-5)
    assert plans[0].iterations == plans[1].iterations


def test_ilqr_needs_a_differentiable_score():
    optimizer = ILQR(-2.0, 2.0, 5)
    with pytest.raises(ConfigError, match="differentiable score"):
        optimizer.optimize(lambda seqs: seqs.sum((-1, -2)))


def test_ilqr_mpc_swings_the_pendulum_up_with_known_dynamics():
    mpc, model_env = pendulum_mpc("projected")
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=0)
    env.unwrapped.state = np.array([np.pi, 0.0])  # hanging straight down, at rest
    obs = np.array([-1.0, 0.0, 0.0], dtype=np.float32)
    total = 0.0
    for _ in range(200):
        action = mpc.act(imagined_return(model_env, torch.as_tensor(obs)[None], 1))[0]
        obs, reward, *_ = env.step(action.numpy())
        total += reward
    assert obs[0] > 0.99 and abs(obs[2]) < 0.5  # upright and still at the end
    assert total > -400


def zero_residual(model: HybridModel) -> None:
    last = model.residual.net.layers[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()


@pytest.mark.parametrize("task", ["Pendulum-v1", "modelbased/CartPoleSwingUp-v0"])
def test_the_hybrid_with_a_zero_residual_is_the_analytic_model(task):
    config = HybridConfig(ensemble_size=3, elites=2, hidden=16, layers=2, mass_scale=1.3)
    env = gym.make(task)
    o, a = env.observation_space.shape[0], env.action_space.shape[0]
    model = make_world_model(
        config, task, o, a, seed=0, learn_reward=False, learn_termination=False
    )
    assert isinstance(model, HybridModel)
    zero_residual(model)
    physics = analytic_dynamics(task, mass_scale=1.3)
    obs = torch.as_tensor(np.stack([env.observation_space.sample() for _ in range(6)]))
    obs = obs.clamp(-5, 5)
    action = torch.as_tensor(np.stack([env.action_space.sample() for _ in range(6)]))
    expected = physics.step(obs, action)
    pred = model.predict(obs, action)
    assert pred.next_obs_mean.shape == (3, 6, o)
    torch.testing.assert_close(pred.next_obs_mean, expected.expand(3, 6, o))
    next_obs, _, _ = model.sample(obs.expand(3, 6, o), action.expand(3, 6, a), deterministic=True)
    torch.testing.assert_close(next_obs, expected.expand(3, 6, o))


def test_model_sections_by_kind_and_old_configs():
    cfg = mb.PETSConfig.resolve("Pendulum-v1", {"model.kind": "hybrid", "model.mass_scale": 1.3})
    assert isinstance(cfg.model, HybridConfig) and cfg.model.hidden == 200
    cfg = mb.PETSConfig.resolve("Pendulum-v1", {"model": {"kind": "analytic"}})
    assert isinstance(cfg.model, AnalyticConfig)
    old = mb.PETSConfig.from_dict({"model": {"hidden": 64}})  # no kind: the ensemble
    assert type(old.model) is EnsembleConfig and old.model.hidden == 64
    cfg = mb.MPCConfig.resolve("Pendulum-v1", {"planner.kind": "ilqr"})
    assert isinstance(cfg.planner, ILQRConfig)
    with pytest.raises(ConfigError, match="analytic physics"):
        mb.PETS("MountainCarContinuous-v0", model={"kind": "hybrid"})


def test_the_hybrid_learns_the_residual_of_wrong_physics():
    """Pendulum with mass and length 30% off: after a fit the hybrid's one-step error on new data
    is far below the physics' alone (the residual is learned), and checkpoints round-trip."""
    env = gym.make("Pendulum-v1")
    rng = np.random.default_rng(0)
    rows = {k: [] for k in ("obs", "action", "reward", "next_obs")}
    obs, _ = env.reset(seed=0)
    for t in range(1200):
        action = rng.uniform(-2, 2, 1).astype(np.float32)
        next_obs, reward, _, truncated, _ = env.step(action)
        for key, value in zip(rows, (obs, action, reward, next_obs), strict=True):
            rows[key].append(value)
        obs = env.reset(seed=t)[0] if truncated else next_obs
    data = {k: np.asarray(v, dtype=np.float32) for k, v in rows.items()}
    train = {k: v[:1000] for k, v in data.items()}
    test = {k: torch.as_tensor(v[1000:]) for k, v in data.items()}
    config = HybridConfig(
        ensemble_size=3, elites=2, hidden=64, layers=2, max_epochs=40, mass_scale=1.3,
        length_scale=1.3, learn_reward=False,
    )  # fmt: skip
    hybrid = HybridModel(analytic_dynamics("Pendulum-v1", 1.3, 1.3), 3, 1, config, seed=0)
    hybrid.fit(train, rng=np.random.default_rng(0))
    physics_error = (hybrid.physics.step(test["obs"], test["action"]) - test["next_obs"]).square()
    with torch.no_grad():
        predicted = hybrid.predict(test["obs"], test["action"]).next_obs_mean[hybrid.elites].mean(0)
    hybrid_error = (predicted - test["next_obs"]).square()
    assert hybrid_error.mean() < 0.2 * physics_error.mean()
    copy = HybridModel(analytic_dynamics("Pendulum-v1", 1.3, 1.3), 3, 1, config, seed=1)
    copy.load_checkpoint(hybrid.to_checkpoint())
    with torch.no_grad():
        again = copy.predict(test["obs"], test["action"]).next_obs_mean[copy.elites].mean(0)
    torch.testing.assert_close(again, predicted)


@pytest.mark.parametrize("task", ["Pendulum-v1", "modelbased/CartPoleSwingUp-v0"])
def test_analytic_dynamics_reproduce_the_env(task):
    env = gym.make(task)
    physics = analytic_dynamics(task)
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(200):
        action = (rng.uniform(-1, 1, 1) * env.action_space.high).astype(np.float32)
        predicted = physics.step(torch.as_tensor(obs, dtype=D)[None], torch.as_tensor(action)[None])
        obs, *_ = env.step(action)
        worst = max(worst, float(np.abs(predicted[0].numpy() - obs).max()))
    assert worst < 1e-5


TINY = {"ensemble_size": 2, "elites": 1, "hidden": 16, "layers": 2, "max_epochs": 3}


@pytest.mark.parametrize("algo", ["pets", "mbpo"])
def test_agents_train_save_and_load_with_a_hybrid_model(algo, tmp_path):
    settings = {
        "pets": {"horizon": 5, "num_particles": 2, "random_steps": 30, "train_every": 30,
                 "planner": {"kind": "ilqr", "iterations": 2}},
        "mbpo": {"learning_starts": 30, "batch_size": 16, "sac": {"hidden": [16, 16]},
                 "rollouts_per_step": 4, "model_train_every": 30, "gradient_steps": 1},
    }[algo]  # fmt: skip
    model = TINY | {"kind": "hybrid", "mass_scale": 1.3, "length_scale": 1.3}
    agent = mb.agent_class(algo)("Pendulum-v1", seed=0, eval_episodes=0, model=model, **settings)
    agent.learn(40)
    assert isinstance(agent.model, HybridModel)
    agent.save(tmp_path / "agent.pt")
    loaded = mb.load(str(tmp_path / "agent.pt"))
    obs = torch.tensor([[-1.0, 0.1, 0.5]])
    action = torch.tensor([[1.0]])
    with torch.no_grad():
        a, b = (m.predict(obs, action).next_obs_mean for m in (agent.model, loaded.model))
    torch.testing.assert_close(a, b)
    assert loaded.act(np.array([-1.0, 0.1, 0.5], dtype=np.float32)).shape == (1,)


class DoubleWell:
    """``x' = x + u``, reward ``-(x'^2 - 1)^2``: the zero plan from ``x = 0`` sits on the top
    of the cost, where its gradient is zero and its Hessian negative, so iLQR cannot leave it."""

    def transition(self, x, u):
        nxt = x + u
        return nxt, -((nxt.square() - 1).square()).sum(-1)


def test_the_multi_start_leaves_a_zero_gradient_plan():
    x0, U = torch.zeros(2, 1, dtype=D), torch.zeros(2, 6, 1, dtype=D)
    costs = {}
    for multi in (False, True):
        optimizer = ILQR(-0.5, 0.5, 6, ILQRConfig(multi_start=multi))
        result = optimizer.solve(DoubleWell().transition, x0, U.clone())
        costs[multi] = -result.value
    assert bool((costs[False] > 5.0).all())  # stuck at x = 0: cost 1 per step
    assert bool((costs[True] < 1.0).all())  # from a constant plan at a bound into a well


def test_the_multi_start_keeps_the_lowest_cost_start():
    optimizer = ILQR(-2.0, 2.0, 8, ILQRConfig())
    mpc, model_env = pendulum_mpc("projected", horizon=8)
    obs = torch.tensor([[-1.0, 0.05, 0.0], [0.6, 0.8, -3.0], [0.99, 0.14, 0.5]])
    warm = torch.linspace(-1, 1, 8).reshape(1, 8, 1).expand(3, 8, 1)
    candidates = optimizer.initial_plans(warm)
    assert candidates.shape == (3, 6, 8, 1)
    torch.testing.assert_close(candidates[:, 0], warm)
    assert bool((candidates[:, 1:].abs() <= 2.0).all())
    sim = Simulator(imagined_return(model_env, obs, 1).transition, None)
    discount = torch.ones(9)
    X, U, cost = optimizer._best_start(sim, obs, candidates, discount, None)
    each = torch.stack([optimizer._rollout(sim, obs, candidates[:, c], discount, None)[1]
                        for c in range(6)], 1)  # fmt: skip
    best = each.argmin(1)
    torch.testing.assert_close(U, candidates[torch.arange(3), best])
    torch.testing.assert_close(cost, each.min(1).values)
    torch.testing.assert_close(X, optimizer._rollout(sim, obs, U, discount, None)[0])


@pytest.mark.parametrize("task", ["Pendulum-v1", "modelbased/CartPoleSwingUp-v0"])
def test_rewards_batched_after_the_rollout_give_the_same_plans(task):
    """With a known reward the rollouts step the dynamics alone and score all steps at once:
    the plans equal those of the per-step transition."""
    reward_fn, _ = mb.envs.known_functions(task)
    model_env = ModelEnv(analytic_dynamics(task), reward_fn, "expectation")
    env = gym.make(task)
    obs = torch.as_tensor(np.stack([env.reset(seed=s)[0] for s in range(3)]))
    score = imagined_return(model_env, obs, 1)
    low, high = (torch.as_tensor(b) for b in (env.action_space.low, env.action_space.high))
    plans = []
    for split in ((score.dynamics, score.reward_fn), None):
        optimizer = ILQR(low, high, 12, ILQRConfig(iterations=3))
        U = torch.zeros(3, 12, 1)
        with torch.enable_grad():
            plans.append(optimizer.solve(score.transition, obs, U, 1.0, None, split))
    torch.testing.assert_close(plans[0].actions, plans[1].actions)
    torch.testing.assert_close(plans[0].value, plans[1].value)
