"""Trajectory optimizers (random shooting, CEM/iCEM, MPPI) on quadratic scores with known optima."""

import math

import numpy as np
import pytest
import torch

from modelbased.core.errors import ConfigError, UnsupportedSpaceError
from modelbased.planning.cem import CEM, CEMConfig, ICEMConfig
from modelbased.planning.mppi import MPPI, MPPIConfig, smoothing_filter
from modelbased.planning.trajectory import (
    RandomShooting,
    RandomShootingConfig,
    colored_noise,
    sequence_noise,
    shift_plan,
    truncated_normal,
)

B, H, A = 4, 10, 2
LOW, HIGH = -torch.ones(A), torch.ones(A)


def targets(seed: int = 0, smooth: bool = False) -> torch.Tensor:
    """``[B, 1, H, a]`` one optimum per start state, inside the bounds; constant in time if
    ``smooth`` (colored noise is a prior for smooth sequences), else white."""
    g = torch.Generator().manual_seed(seed)
    shape = (B, 1, 1, A) if smooth else (B, 1, H, A)
    return (torch.rand(shape, generator=g) * 1.6 - 0.8).expand(B, 1, H, A)


def quadratic(target: torch.Tensor):
    return lambda x: -(x - target).square().sum(dim=(-1, -2))


class Spy:
    """A score that records every call's candidates and returns."""

    def __init__(self, score):
        self.score, self.candidates, self.returns = score, [], []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        r = self.score(x)
        self.candidates.append(x.clone())
        self.returns.append(r.clone())
        return r


def make(cls, config=None, seed=0, low=LOW, high=HIGH, horizon=H):
    return cls(low, high, horizon, config, generator=torch.Generator().manual_seed(seed))


CONVERGING = [
    pytest.param(CEM, CEMConfig(iterations=15), False, 0.02, id="cem"),
    pytest.param(CEM, CEMConfig(iterations=15, sampling="truncated"), False, 0.03, id="cem-trunc"),
    pytest.param(CEM, ICEMConfig(iterations=12), True, 0.1, id="icem"),
    pytest.param(
        MPPI, MPPIConfig(iterations=30, sigma=0.1, temperature=0.05), False, 0.05, id="mppi"
    ),
    pytest.param(
        MPPI,
        MPPIConfig(iterations=30, sigma=0.1, temperature=0.05, smoothing=0.5),
        False,
        0.05,
        id="mppi-smooth",
    ),
]


@pytest.mark.parametrize("cls, config, smooth, tol", CONVERGING)
def test_finds_each_start_states_quadratic_optimum(cls, config, smooth, tol):
    target = targets(smooth=smooth)
    spy = Spy(quadratic(target))
    result = make(cls, config).optimize(spy, batch_size=B)
    error = (result.actions - target[:, 0]).abs()
    assert error.max() < tol, error.max()
    assert result.actions.shape == result.mean.shape == (B, H, A)
    assert result.value.shape == (B,)
    # one score call of [B, K, H, a] per iteration, counted in evaluations
    assert len(spy.candidates) == result.iterations == config.iterations
    assert all(c.shape[0] == B and c.shape[2:] == (H, A) for c in spy.candidates)
    assert result.evaluations == sum(c.shape[1] for c in spy.candidates)
    if cls is CEM:  # the value is the elites' mean return, close to the plan's at convergence
        plan_return = quadratic(target)(result.actions[:, None])[:, 0]
        assert torch.allclose(result.value, plan_return, atol=0.05)
    else:  # MPPI: the softmax-weighted return of the last samples, above their plain mean
        last = spy.returns[-1]
        assert (result.value >= last.mean(1)).all() and (result.value <= last.amax(1)).all()


def test_random_shooting_is_loose_and_clearly_worse_than_cem():
    target = targets()
    score = quadratic(target)
    shooting = make(RandomShooting).optimize(score, batch_size=B)
    cem = make(CEM, CEMConfig(iterations=10)).optimize(score, batch_size=B)
    assert torch.allclose(shooting.value, score(shooting.actions[:, None])[:, 0])
    # far better than a typical uniform sequence, whose expected return is -sum(1/3 + t^2)
    typical = -(1 / 3 + target[:, 0].square()).sum(dim=(-1, -2))
    assert (shooting.value > typical + 3).all()
    assert (shooting.value < cem.value - 1).all()
    assert shooting.evaluations == 1000


def test_random_shooting_keeps_the_warm_start_as_a_candidate():
    target = targets()
    exact = target[:, 0].clone()
    result = make(RandomShooting, RandomShootingConfig(population=10)).optimize(
        quadratic(target), init_mean=exact
    )
    assert result.evaluations == 11
    assert torch.equal(result.actions, exact) and (result.value == 0).all()


@pytest.mark.parametrize(
    "cls, config, tol",
    [
        (RandomShooting, None, None),
        (CEM, CEMConfig(iterations=20), 0.1),
        (CEM, CEMConfig(iterations=20, sampling="truncated"), 0.25),  # no mass on the bounds
        (CEM, ICEMConfig(iterations=20, noise_beta=3.0), 0.03),  # the best seen is clipped
        (MPPI, MPPIConfig(iterations=20), 0.25),
    ],
)
def test_bounds_respected_when_the_optimum_is_outside(cls, config, tol):
    low, high = torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 0.5])
    target = torch.tensor([2.0, -1.0]).expand(B, 1, H, A)
    spy = Spy(quadratic(target))
    result = make(cls, config, low=low, high=high).optimize(spy, batch_size=B)
    seen = torch.cat([c.reshape(-1, A) for c in spy.candidates] + [result.actions.reshape(-1, A)])
    assert (seen >= low).all() and (seen <= high).all()
    if tol is not None:
        corner = torch.tensor([1.0, 0.0])
        assert (result.actions - corner).abs().max() < tol


@pytest.mark.parametrize(
    "cls, config",
    [
        (CEM, CEMConfig(iterations=2, add_mean=True)),
        (CEM, CEMConfig(iterations=2, add_mean=True, sampling="truncated")),
        (MPPI, MPPIConfig(iterations=2)),
        (RandomShooting, None),
    ],
)
def test_a_warm_start_outside_the_bounds_is_clipped(cls, config):
    spy = Spy(quadratic(targets()))
    result = make(cls, config).optimize(spy, init_mean=torch.full((B, H, A), 5.0))
    for x in [*spy.candidates, result.actions, result.mean]:
        assert torch.isfinite(x).all() and (x.abs() <= 1).all()


@pytest.mark.parametrize(
    "cls, config",
    [
        (RandomShooting, None),
        (CEM, CEMConfig()),
        (CEM, CEMConfig(sampling="truncated")),
        (CEM, ICEMConfig()),
        (CEM, ICEMConfig(noise_beta=3.0, sampling="truncated", population_decay=1.5)),
        (MPPI, MPPIConfig(iterations=3)),
        (MPPI, MPPIConfig(iterations=3, smoothing=0.6)),
    ],
)
def test_batch_equals_separate_calls_in_sequence(cls, config):
    """Row b of a batched call draws the random numbers that the b-th of B single-state calls
    made in turn with the same generator draws, so the plans agree exactly (also across a
    second call, which for iCEM carries shifted elites)."""
    target = targets()
    g = torch.Generator().manual_seed(1)
    batched = cls(LOW, HIGH, H, config, generator=g)
    together = [batched.optimize(quadratic(target), batch_size=B) for _ in range(2)]
    g.manual_seed(1)
    singles = [cls(LOW, HIGH, H, config, generator=g) for _ in range(B)]
    for call in range(2):
        apart = [opt.optimize(quadratic(target[b : b + 1])) for b, opt in enumerate(singles)]
        assert torch.equal(torch.cat([r.actions for r in apart]), together[call].actions)
        assert torch.equal(torch.cat([r.value for r in apart]), together[call].value)
        assert torch.equal(torch.cat([r.mean for r in apart]), together[call].mean)
    # and the same seed reproduces the batched call
    again = cls(LOW, HIGH, H, config, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again.optimize(quadratic(target), batch_size=B).actions, together[0].actions)


def low_high_power(noise: torch.Tensor) -> tuple[float, float]:
    """Mean |FFT|^2 over time (last axis) at the lowest and highest nonzero frequencies."""
    power = torch.fft.rfft(noise, dim=-1).abs().square().reshape(-1, noise.shape[-1] // 2 + 1)
    power = power.mean(0)
    return power[1:3].mean().item(), power[-2:].mean().item()


def test_colored_noise_has_the_intended_spectrum():
    horizon = 16
    z = torch.randn(20000, 2 * (horizon // 2 + 1), generator=torch.Generator().manual_seed(0))
    white, red = colored_noise(z, 0.0, horizon), colored_noise(z, 2.0, horizon)
    for noise in (white, red):  # unit variance at every step, zero mean
        assert torch.allclose(noise.var(0), torch.ones(horizon), atol=0.05)
        assert noise.mean().abs() < 0.02
    low, high = low_high_power(white)
    assert 0.8 < low / high < 1.25
    low, high = low_high_power(red)
    assert low / high > 20  # 1/f^2: frequencies 1-2 vs 7-8 of 16
    # CEM with noise_beta=2 samples such sequences (first iteration: mean 0, std 0.5)
    spy = Spy(lambda x: x.sum(dim=(-1, -2)))
    config = CEMConfig(population=2000, elites=10, iterations=1, noise_beta=2.0)
    make(CEM, config, low=-100 * torch.ones(1), high=100 * torch.ones(1), horizon=16).optimize(spy)
    low, high = low_high_power(spy.candidates[0][0, :, :, 0])
    assert low / high > 20


def test_sequence_noise_is_white_noise_for_beta_zero():
    z = torch.randn(2, 3, H * A)
    assert torch.equal(sequence_noise(z, H, A, 0.0), z.reshape(2, 3, H, A))


def test_mppi_smoothing_filter_keeps_unit_variance_and_correlates_steps():
    rho = 0.8
    L = smoothing_filter(rho, 12)
    assert torch.allclose(L.square().sum(1), torch.ones(12, dtype=L.dtype))  # unit variance
    noise = (L.float() @ torch.randn(20000, 12, 1)).squeeze(-1)
    corr = torch.corrcoef(noise.T)
    assert abs(corr[4, 5] - rho) < 0.03 and abs(corr[4, 6] - rho**2) < 0.03
    # MPPI perturbs its mean with such noise, of std sigma * half-range
    for smoothing in (0.0, rho):
        spy = Spy(lambda x: x.sum(dim=(-1, -2)))
        config = MPPIConfig(population=4000, smoothing=smoothing, sigma=0.01)
        make(MPPI, config, low=-torch.ones(1), high=torch.ones(1), horizon=12).optimize(spy)
        perturbation = spy.candidates[0][0, :, :, 0]  # [K, H] around the zero mean
        assert torch.allclose(perturbation.std(0), torch.full((12,), 0.01), rtol=0.05)
        assert abs(torch.corrcoef(perturbation.T)[4, 5] - smoothing) < 0.05


def test_truncated_normal_stays_in_bounds_and_matches_the_truncated_law():
    z = torch.randn(200000, generator=torch.Generator().manual_seed(0))
    mean, std, low, high = (
        torch.tensor(0.8),
        torch.tensor(0.5),
        torch.tensor(-1.0),
        torch.tensor(1.0),
    )
    x = truncated_normal(mean, std, low, high, z)
    assert x.min() >= -1 and x.max() <= 1
    alpha, beta = (low - mean) / std, (high - mean) / std
    pdf = lambda t: torch.exp(-t.square() / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    mass = torch.special.ndtr(beta) - torch.special.ndtr(alpha)
    expected = mean + std * (pdf(alpha) - pdf(beta)) / mass
    assert abs(x.mean() - expected) < 0.005
    # extreme quantiles stay finite and near the mean when the bounds are far away
    far = truncated_normal(
        torch.tensor(0.0), torch.tensor(1e-3), low, high, torch.tensor([-9.0, 9.0])
    )
    assert torch.allclose(far, torch.tensor([-9e-3, 9e-3]), rtol=1e-3)


def test_min_std_floor_holds():
    target = targets()
    half_range = 2.0
    low, high = -half_range * torch.ones(A), half_range * torch.ones(A)
    spreads = {}
    for min_std in (1e-3, 0.1):
        spy = Spy(quadratic(target))
        config = CEMConfig(iterations=12, min_std=min_std)
        make(CEM, config, low=low, high=high).optimize(spy, batch_size=B)
        spreads[min_std] = spy.candidates[-1].std(dim=1)  # [B, H, a] last iteration's samples
    floor = 0.1 * half_range
    assert (spreads[0.1] > 0.85 * floor).all() and (spreads[0.1] < 1.15 * floor).all()
    assert (spreads[1e-3] < 0.5 * floor).all()  # without the floor the search collapses further


def test_momentum_alpha():
    target = targets()
    init = torch.full((B, H, A), 0.3)
    frozen = make(CEM, CEMConfig(momentum=1.0)).optimize(quadratic(target), init_mean=init)
    assert torch.equal(frozen.mean, init)
    # one iteration from the same samples: mean(alpha) = alpha * init + (1 - alpha) * elite mean
    one = dict(iterations=1)
    free = make(CEM, CEMConfig(momentum=0.0, **one)).optimize(quadratic(target), init_mean=init)
    half = make(CEM, CEMConfig(momentum=0.5, **one)).optimize(quadratic(target), init_mean=init)
    assert torch.allclose(half.mean, 0.5 * init + 0.5 * free.mean, atol=1e-6)
    assert not torch.allclose(free.mean, init, atol=0.05)


@pytest.mark.parametrize("config", [CEMConfig(execute_best=True), ICEMConfig()])
def test_execute_best_returns_the_best_sequence_seen(config):
    target = targets()
    rugged = quadratic(target)
    spy = Spy(lambda x: rugged(x) + torch.sin(25 * x).sum(dim=(-1, -2)))
    result = make(CEM, config).optimize(spy, batch_size=B)
    seen = torch.cat(spy.candidates, dim=1)
    returns = torch.cat(spy.returns, dim=1)
    best = returns.argmax(dim=1)
    assert torch.equal(result.actions, seen[torch.arange(B), best])
    assert torch.equal(result.value, returns.max(dim=1).values)
    assert not torch.allclose(result.actions, result.mean)  # the mean is not the plan


@pytest.mark.parametrize(
    "cls, config",
    [
        (CEM, CEMConfig(iterations=1)),
        (CEM, CEMConfig(iterations=1, sampling="truncated")),
        (MPPI, MPPIConfig(iterations=1)),
    ],
)
def test_warm_start_is_used(cls, config):
    target = targets()
    init = shift_plan(-target[:, 0])  # far from the optimum
    near = make(cls, config).optimize(quadratic(target), init_mean=init, init_std=1e-3)
    assert (near.actions - init).abs().max() < 5e-3
    moved = make(cls, config).optimize(quadratic(target), init_mean=init)
    assert (moved.actions - init).abs().max() > 0.1


def test_icem_population_decay_keeps_and_shifts_elites():
    config = ICEMConfig(population=100, elites=10, iterations=4)
    spy = Spy(quadratic(targets()))
    optimizer = make(CEM, config)
    first = optimizer.optimize(spy, batch_size=B)
    # N_i = max(100 * 1.25^-i, 20) fresh samples, + 3 kept elites after the first iteration,
    # + the mean in the last one
    assert [c.shape[1] for c in spy.candidates] == [100, 83, 67, 55]
    assert first.evaluations == 305
    for i in (1, 2):  # the kept elites are the previous iteration's best 3
        top = spy.returns[i - 1].topk(3, dim=1).indices
        previous = spy.candidates[i - 1].gather(1, top[:, :, None, None].expand(-1, -1, H, A))
        fresh = config.populations()[i]
        assert torch.equal(spy.candidates[i][:, fresh : fresh + 3], previous)
    top = spy.returns[-1].topk(3, dim=1).indices
    final_elites = spy.candidates[-1].gather(1, top[:, :, None, None].expand(-1, -1, H, A))
    optimizer.optimize(spy, init_mean=shift_plan(first.mean))
    carried = spy.candidates[4][:, 100:103]  # the next call's first iteration
    assert torch.equal(carried[:, :, :-1], final_elites[:, :, 1:])
    assert (carried[:, :, -1] != final_elites[:, :, -1]).any()  # a new last step
    optimizer.reset()
    optimizer.optimize(spy, batch_size=B)
    assert spy.candidates[8].shape[1] == 100


def test_add_mean_scores_the_mean_in_the_last_iteration():
    spy = Spy(quadratic(targets()))
    init = torch.full((B, H, A), 0.25)
    config = CEMConfig(iterations=1, add_mean=True, population=50, elites=5)
    make(CEM, config).optimize(spy, init_mean=init)
    assert spy.candidates[0].shape[1] == 51
    assert torch.equal(spy.candidates[0][:, -1], init)


def test_nan_returns_are_never_chosen():
    spy = Spy(lambda x: torch.where(x[..., 0, 0] > 0, torch.nan, x[..., 0, 0]))
    result = make(RandomShooting, RandomShootingConfig(population=200)).optimize(spy, batch_size=B)
    assert (result.actions[:, 0, 0] <= 0).all() and torch.isfinite(result.value).all()


def test_shift_plan():
    plan = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    shifted = shift_plan(plan)
    assert shifted.shape == plan.shape
    assert torch.equal(shifted[:, :3], plan[:, 1:]) and torch.equal(shifted[:, 3], plan[:, 3])
    assert torch.equal(
        shift_plan(plan, torch.tensor([7.0, 8.0, 9.0]))[:, -1], torch.tensor([[7.0, 8, 9]] * 2)
    )
    assert torch.equal(shift_plan(plan, 0.0)[:, -1], torch.zeros(2, 3))
    per_row = torch.tensor([[1.0, 1, 1], [2, 2, 2]])
    assert torch.equal(shift_plan(plan, per_row)[:, -1], per_row)
    optimizer = make(CEM)
    assert torch.equal(shift_plan(plan[:, :, :2], optimizer.middle)[:, -1], torch.zeros(2, 2))


@pytest.mark.parametrize(
    "factory, key",
    [
        (lambda: CEMConfig(population=0), "population"),
        (lambda: CEMConfig(population=True), "population"),
        (lambda: CEMConfig(population="many"), "population"),
        (lambda: CEMConfig(elites=0), "elites"),
        (lambda: CEMConfig(elites=400), "elites"),
        (lambda: CEMConfig(iterations=2.5), "iterations"),
        (lambda: CEMConfig(momentum=1.5), "momentum"),
        (lambda: CEMConfig(momentum=float("nan")), "momentum"),
        (lambda: CEMConfig(min_std=0.0), "min_std"),
        (lambda: CEMConfig(sampling="uniform"), "sampling"),
        (lambda: CEMConfig(noise_beta=-1.0), "noise_beta"),
        (lambda: CEMConfig(population_decay=0.8), "population_decay"),
        (lambda: CEMConfig(keep_elites=1.5), "keep_elites"),
        (lambda: CEMConfig(keep_elites=0.01), "keep_elites"),
        (lambda: CEMConfig(shift_elites=True), "shift_elites"),
        (lambda: CEMConfig(execute_best="sometimes"), "execute_best"),
        (lambda: MPPIConfig(temperature=0.0), "temperature"),
        (lambda: MPPIConfig(sigma=-1.0), "sigma"),
        (lambda: MPPIConfig(smoothing=1.0), "smoothing"),
        (lambda: MPPIConfig(iterations=0), "iterations"),
        (lambda: RandomShootingConfig(population=0), "population"),
        (lambda: CEM(LOW, HIGH, 0), "horizon"),
        (lambda: CEM(LOW, HIGH, H, MPPIConfig()), "config"),
    ],
)
def test_bad_config_values_raise_config_error_naming_the_key(factory, key):
    with pytest.raises(ConfigError, match=key):
        factory()


def test_configs_accept_ints_for_floats_and_numpy_bounds():
    assert CEMConfig(momentum=0, noise_beta=np.float64(2)).noise_beta == 2.0
    optimizer = CEM(np.array([-2.0]), np.array([2.0]), 5, CEMConfig(iterations=2))
    result = optimizer.optimize(lambda x: -x.square().sum(dim=(-1, -2)))
    assert result.actions.dtype == torch.float32 and result.actions.shape == (1, 5, 1)


def test_bad_bounds_and_bad_scores_are_reported():
    with pytest.raises(UnsupportedSpaceError, match="finite"):
        CEM(torch.tensor([-math.inf]), torch.tensor([1.0]), H)
    with pytest.raises(UnsupportedSpaceError, match="low < high"):
        MPPI(torch.tensor([1.0]), torch.tensor([1.0]), H)
    with pytest.raises(ValueError, match=r"returns \[B, K\]"):
        make(CEM).optimize(lambda x: x.sum(-1))
    with pytest.raises(ValueError, match="batch_size"):
        make(CEM).optimize(quadratic(targets()), batch_size=3, init_mean=torch.zeros(B, H, A))
