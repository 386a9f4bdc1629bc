import numpy as np
import pytest

from modelbased.diagnostics import transition_tv, value_error_bound
from modelbased.models import TabularMDP


def random_mdp(rng, S=6, A=3) -> TabularMDP:
    P = rng.dirichlet(np.ones(S) * 0.5, size=(S, A))
    R = rng.uniform(-1, 1, size=(S, A))
    D = (rng.random((S, A, S)) < 0.1).astype(float)
    return TabularMDP(P, R, D)


def perturb(rng, mdp: TabularMDP, scale: float) -> TabularMDP:
    P = mdp.P + scale * rng.random(mdp.P.shape)
    P /= P.sum(-1, keepdims=True)
    R = mdp.R + scale * rng.normal(size=mdp.R.shape)
    D = np.clip(mdp.D + scale * rng.normal(size=mdp.D.shape), 0, 1)
    return TabularMDP(P, R, D)


def test_bound_holds_over_many_random_perturbations():
    rng = np.random.default_rng(0)
    gaps = []
    for trial in range(300):
        true = random_mdp(rng)
        scale = [0.01, 0.05, 0.2, 1.0][trial % 4]
        gamma = [0.5, 0.9, 0.95][trial % 3]
        report = value_error_bound(true, perturb(rng, true, scale), gamma)
        assert report.holds, report.summary()
        assert report.gap > 0
        gaps.append(report.gap / report.bound)
    assert max(gaps) < 1.0


def test_identical_models_have_zero_gap_and_bound():
    true = random_mdp(np.random.default_rng(1))
    report = value_error_bound(true, true, 0.9)
    assert report.eps == 0 and report.eps_R == 0 and report.gap == pytest.approx(0, abs=1e-9)


def test_reward_only_error_bound_is_tight():
    # A single absorbing state: V = R / (1 - gamma) exactly, so the gap meets eps_R / (1 - gamma).
    P = np.ones((1, 1, 1))
    true = TabularMDP(P, np.array([[1.0]]), np.zeros((1, 1, 1)))
    model = TabularMDP(P, np.array([[1.2]]), np.zeros((1, 1, 1)))
    report = value_error_bound(true, model, 0.9)
    assert report.eps == 0
    assert report.gap == pytest.approx(2.0, rel=1e-6)
    assert report.bound == pytest.approx(2.0, rel=1e-6)


def test_tv_counts_termination_as_an_outcome():
    P = np.zeros((1, 1, 2))
    P[0, 0, 1] = 1.0
    a = TabularMDP(P, np.zeros((1, 1)), np.zeros((1, 1, 2)))
    b = TabularMDP(P, np.zeros((1, 1)), np.ones((1, 1, 2)))
    assert transition_tv(a, b)[0, 0] == pytest.approx(1.0)


def test_gamma_one_is_rejected():
    true = random_mdp(np.random.default_rng(2))
    with pytest.raises(ValueError, match="gamma"):
        value_error_bound(true, true, 1.0)
