"""PILCO's pieces (GP posterior, moment matching, squashed policy, saturating cost) against
hand computations and Monte Carlo; the agents (PILCO, LQR on a learned linear model) on
InvertedPendulum-v5."""

import numpy as np
import pytest
import torch

import modelbased as mb
from modelbased.core.errors import ConfigError
from modelbased.models.gp import GaussianProcess, GPConfig
from modelbased.models.linear import fit_linear
from modelbased.planning.pilco import (
    PolicyConfig,
    SaturatingCost,
    SquashedPolicy,
    predicted_cost,
    propagate,
)

D = torch.float64


def fixed_gp(seed: int = 0, n: int = 30, d: int = 3, e: int = 2) -> GaussianProcess:
    """A GP with set hyperparameters on smooth data (no fitting)."""
    g = torch.Generator().manual_seed(seed)
    gp = GaussianProcess(d, e)
    gp.X = torch.randn(n, d, generator=g, dtype=D)
    gp.Y = torch.stack([torch.sin(gp.X[:, 0]) + 0.3 * gp.X[:, 1], gp.X[:, 1] * gp.X[:, 2]], 1)
    gp.log_ell = torch.log(torch.tensor([[0.8, 1.2, 2.0], [1.5, 0.7, 0.9]], dtype=D))
    gp.log_sf = torch.log(torch.tensor([1.1, 0.6], dtype=D))
    gp.log_sn = torch.log(torch.tensor([0.05, 0.1], dtype=D))
    gp._solve()
    return gp


def gaussian(seed: int, d: int, scale: float = 0.3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    m = 0.3 * torch.randn(1, d, generator=g, dtype=D)
    A = scale * torch.randn(d, d, generator=g, dtype=D)
    return m, (A @ A.T + 0.01 * torch.eye(d, dtype=D))[None]


def test_gp_posterior_matches_a_hand_computed_one():
    gp = fixed_gp()
    X, Y = gp.X.numpy(), gp.Y.numpy()
    x = np.array([[0.1, -0.4, 0.7], [1.0, 0.2, -0.3]])
    mean, var = gp.predict(torch.as_tensor(x))
    for a in range(2):
        ell, sf2 = np.exp(gp.log_ell[a].numpy()), np.exp(2 * gp.log_sf[a].item())
        sn2 = float(gp.noise_var[a])

        def k(p, q, ell=ell, sf2=sf2):
            d2 = (((p[:, None] - q[None]) / ell) ** 2).sum(-1)
            return sf2 * np.exp(-0.5 * d2)

        K = k(X, X) + sn2 * np.eye(len(X))
        ks = k(x, X)
        np.testing.assert_allclose(mean[:, a].numpy(), ks @ np.linalg.solve(K, Y[:, a]), rtol=1e-8)
        ref_var = sf2 - np.einsum("bn,bn->b", ks, np.linalg.solve(K, ks.T).T)
        np.testing.assert_allclose(var[:, a].numpy(), ref_var, rtol=1e-7, atol=1e-10)


def test_moment_matching_matches_monte_carlo():
    gp = fixed_gp()
    m, s = gaussian(1, 3)
    M, S, C = gp.moments(m, s)
    g = torch.Generator().manual_seed(2)
    n = 200_000
    x = m[0] + torch.randn(n, 3, generator=g, dtype=D) @ torch.linalg.cholesky(s[0]).T
    mean, var = gp.predict(x)
    f = mean + var.sqrt() * torch.randn(n, 2, generator=g, dtype=D)  # latent f, incl. GP var
    torch.testing.assert_close(M[0], f.mean(0), atol=0.01, rtol=0)
    torch.testing.assert_close(S[0], torch.cov(f.T), atol=0.01, rtol=0.02)
    cross = (x - x.mean(0)).T @ (f - f.mean(0)) / n
    torch.testing.assert_close(C[0], cross, atol=0.01, rtol=0)
    # a deterministic input gives the GP's own posterior
    M0, S0, _ = gp.moments(m, torch.zeros_like(s) + 1e-12 * torch.eye(3, dtype=D))
    mean0, var0 = gp.predict(m)
    torch.testing.assert_close(M0[0], mean0[0])
    torch.testing.assert_close(S0[0].diagonal(), var0[0], atol=1e-7, rtol=1e-5)


def mc_moments(x, y):
    return y.mean(0), torch.cov(y.T), (x - x.mean(0)).T @ (y - y.mean(0)) / len(x)


def test_rbf_policy_moments_match_monte_carlo():
    """The RBF network's output moments are exact (a GP mean without its own variance)."""
    g = torch.Generator().manual_seed(3)
    low, high = torch.tensor([-2.0, -1.0]), torch.tensor([2.0, 3.0])
    policy = SquashedPolicy(3, low, high, PolicyConfig(basis=10, init_weight_std=1.0), g)
    m, s = gaussian(4, 3, 0.4)
    x = m[0] + torch.randn(300_000, 3, generator=g, dtype=D) @ torch.linalg.cholesky(s[0]).T
    with torch.no_grad():
        d = (x[:, None] - policy.centres[None])[:, None] / policy.log_ell.exp()[None, :, None]
        pre = (torch.exp(-0.5 * (d * d).sum(-1)) * policy.weights).sum(-1)
        u = policy(x)
    assert bool(((u >= low.double() - 1e-9) & (u <= high.double() + 1e-9)).all())
    for ours, ref in zip(policy.pre_squash(m, s), mc_moments(x, pre), strict=True):
        torch.testing.assert_close(ours[0], ref, atol=0.01, rtol=0.02)


def test_squashing_moments_are_exact_for_a_gaussian_pre_squash_control():
    """With a linear pi, u~ is Gaussian and the sin-squashing moments are exact."""
    g = torch.Generator().manual_seed(3)
    low, high = torch.tensor([-2.0, -1.0]), torch.tensor([2.0, 3.0])
    policy = SquashedPolicy(3, low, high, PolicyConfig(kind="linear"), g)
    with torch.no_grad():
        policy.W.copy_(torch.randn(2, 3, generator=g, dtype=D))
        policy.b.copy_(torch.tensor([0.3, -0.2], dtype=D))
    m, s = gaussian(4, 3, 0.4)
    x = m[0] + torch.randn(300_000, 3, generator=g, dtype=D) @ torch.linalg.cholesky(s[0]).T
    with torch.no_grad():
        u = policy(x)
    for ours, ref in zip(policy.moments(m, s), mc_moments(x, u), strict=True):
        torch.testing.assert_close(ours[0], ref, atol=0.01, rtol=0.02)


def test_expected_saturating_cost_matches_monte_carlo():
    P = torch.tensor([[1.0, 0.0, 0.6], [0.0, 0.6, 0.0]], dtype=D)
    cost = SaturatingCost(P, torch.tensor([0.0, 0.6], dtype=D), 0.4)
    m, s = gaussian(5, 3, 0.3)
    x = m[0] + torch.randn(300_000, 3, generator=torch.Generator().manual_seed(6), dtype=D) @ (
        torch.linalg.cholesky(s[0]).T
    )
    torch.testing.assert_close(cost.expected(m, s)[0], cost(x).mean(), atol=3e-3, rtol=0)


def test_propagated_state_matches_monte_carlo_of_the_mean_model_at_small_noise():
    """One step through policy and GP: the predicted mean and covariance of x' match sampling
    x, u = pi(x), x' = x + f(x, u) (f drawn from the GP posterior)."""
    g = torch.Generator().manual_seed(7)
    gp = fixed_gp(n=40, d=3, e=2)  # state 2 + action 1
    policy = SquashedPolicy(2, torch.tensor([-1.0]), torch.tensor([1.0]), PolicyConfig(basis=5,
                            init_weight_std=1.0), g)  # fmt: skip
    m, s = gaussian(8, 2, 0.3)
    m1, s1 = propagate(gp, policy, m, s)
    x = m[0] + torch.randn(200_000, 2, generator=g, dtype=D) @ torch.linalg.cholesky(s[0]).T
    with torch.no_grad():
        xu = torch.cat([x, policy(x)], 1)
    mean, var = gp.predict(xu)
    nxt = x + mean + var.sqrt() * torch.randn(len(x), 2, generator=g, dtype=D)
    torch.testing.assert_close(m1[0], nxt.mean(0), atol=0.02, rtol=0)
    # moment matching of the policy (then of the GP) is exact only for Gaussian (x, u)
    torch.testing.assert_close(s1[0], torch.cov(nxt.T), atol=0.03, rtol=0.1)


def test_predicted_cost_has_gradients_for_every_policy_parameter():
    gp = fixed_gp(n=20, d=3, e=2)
    g = torch.Generator().manual_seed(9)
    policy = SquashedPolicy(2, torch.tensor([-1.0]), torch.tensor([1.0]), PolicyConfig(basis=4), g)
    cost = SaturatingCost(torch.eye(2, dtype=D), torch.zeros(2, dtype=D), 0.5)
    m, s = gaussian(10, 2)
    c = predicted_cost(gp, policy, cost, m.expand(2, 2), s.expand(2, 2, 2), horizon=5)
    assert c.shape == (2, 5) and bool(((c >= 0) & (c <= 1)).all())
    c.sum().backward()
    for p in policy.parameters():
        assert p.grad is not None and bool(p.grad.abs().sum() > 0)


def test_gp_fit_learns_hyperparameters_and_keeps_a_subset():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 2))
    Y = np.stack([np.sin(2 * X[:, 0]), 0.5 * X[:, 1]], 1) + 0.01 * rng.normal(size=(80, 2))
    gp = GaussianProcess(2, 2, GPConfig(max_points=50, fit_iterations=50))
    report = gp.fit(X, Y, rng)
    assert report["gp_points"] == 50 and len(gp.X) == 50
    # output 0 depends on x0 only, output 1 on x1 only: ARD gives the irrelevant input a long scale
    ell = gp.log_ell.exp()
    assert ell[0, 1] > 3 * ell[0, 0] and ell[1, 0] > 3 * ell[1, 1]
    mean, _ = gp.predict(torch.tensor([[0.3, -0.5]], dtype=D))
    np.testing.assert_allclose(mean[0].numpy(), [np.sin(0.6), -0.25], atol=0.05)


def test_fit_linear_recovers_a_linear_system():
    rng = np.random.default_rng(1)
    A = np.array([[1.0, 0.1], [-0.2, 0.95]])
    B = np.array([[0.0], [0.3]])
    c = np.array([0.05, -0.1])
    x, u = rng.normal(size=(200, 2)), rng.normal(size=(200, 1))
    y = x @ A.T + u @ B.T + c + 1e-4 * rng.normal(size=(200, 2))
    A_, B_, c_, mse = fit_linear(x, u, y)
    np.testing.assert_allclose(A_.numpy(), A, atol=1e-3)
    np.testing.assert_allclose(B_.numpy(), B, atol=1e-3)
    np.testing.assert_allclose(c_.numpy(), c, atol=1e-3)
    assert mse < 1e-7


def test_pilco_needs_a_known_cost_and_round_trips_a_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match="saturating cost"):
        mb.PILCO("MountainCarContinuous-v0")
    agent = mb.PILCO(
        "InvertedPendulum-v5", seed=0, random_steps=20, horizon=3, policy_iterations=2,
        model={"max_points": 20, "fit_iterations": 5}, eval_every=10_000, eval_episodes=1,
    )  # fmt: skip
    agent.learn(40)
    assert agent.trained and agent.gp.fitted
    agent.save(tmp_path / "p.pt")
    back = mb.PILCO.load(tmp_path / "p.pt")
    obs = agent.env.observation_space.sample()
    np.testing.assert_allclose(back.act(obs), agent.act(obs), rtol=1e-6)


@pytest.mark.slow
def test_pilco_balances_inverted_pendulum_within_600_steps():
    agent = mb.PILCO("InvertedPendulum-v5", seed=0)
    agent.learn(600)
    assert agent.evaluate(episodes=3)["return_mean"] == 1000.0  # random: about 10


@pytest.mark.slow
def test_lqr_on_a_learned_linear_model_balances_inverted_pendulum():
    agent = mb.LQRAgent("InvertedPendulum-v5", seed=0, eval_episodes=0)
    agent.learn(400)
    assert agent.evaluate(episodes=3)["return_mean"] == 1000.0
