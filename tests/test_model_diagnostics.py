"""Model-error diagnostics on Pendulum-v1: accuracy, calibration, compounding error, and
epistemic uncertainty out of distribution."""

import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from modelbased.data import ReplayBuffer
from modelbased.diagnostics.model_error import QUANTILES, holdout_episodes, one_step_report
from modelbased.diagnostics.report import diagnose
from modelbased.models import EnsembleConfig, EnsembleModel
from modelbased.models.ensemble import Prediction

SMALL = EnsembleConfig(
    ensemble_size=5,
    elites=3,
    hidden=64,
    layers=3,
    weight_decay=(5e-5,),
    max_epochs=150,
    patience=10,
)


def test_diagnose_pendulum_small_ensemble(tmp_path):
    report = diagnose("Pendulum-v1", steps=5000, seed=0, config=SMALL, out_dir=tmp_path)
    assert report["one_step_nmse"] < 0.01
    assert 0.90 <= report["coverage_2sigma"] <= 0.99
    assert report["verdict"] == "calibrated" and report["holdout_rows"] == 1000
    assert report["coverage_1sigma"] < report["coverage_2sigma"]
    assert report["ece"] < 0.15
    curve = report["kstep_nmse"]
    assert len(curve) == 30 and curve[29] > 100 * curve[0]  # error compounds
    assert set(report["kstep_nmse_by_mode"]) == {"expectation", "ts1", "tsinf", "mean-member"}
    assert (tmp_path / "kstep.png").is_file() and (tmp_path / "rollouts.png").is_file()
    json.dumps(report)


def test_calibration_verdict_bands():
    from modelbased.diagnostics.model_error import calibration_verdict

    assert [calibration_verdict(c) for c in (0.59, 0.899, 0.90, 0.954, 0.99, 0.991)] == [
        "overconfident",
        "overconfident",
        "calibrated",
        "calibrated",
        "calibrated",
        "underconfident",
    ]


class FixedModel:
    """Members predicting fixed per-row means and variances (the elites are members 0 and 1)."""

    def __init__(self, means: torch.Tensor, variances: torch.Tensor) -> None:
        self.means, self.variances = means, variances  # [E, B, o]
        self.elites = torch.tensor([0, 1])

    def predict(self, obs: torch.Tensor, action: torch.Tensor) -> Prediction:
        zeros = torch.zeros(self.means.shape[:2])
        return Prediction(self.means, self.variances, zeros, zeros, None)


def test_one_step_report_by_hand():
    rng = np.random.default_rng(0)
    E, B, o = 3, 400, 2
    means = torch.as_tensor(rng.normal(size=(E, B, o)))
    variances = torch.as_tensor(rng.uniform(0.5, 2.0, size=(E, B, o)))
    next_obs = rng.normal(size=(B, o))
    buffer = ReplayBuffer(B, (o,), (1,))
    buffer.add_batch(
        obs=np.zeros((B, o)),
        action=np.zeros((B, 1)),
        reward=np.zeros(B),
        next_obs=next_obs,
        terminated=np.zeros(B, dtype=bool),
        truncated=np.zeros(B, dtype=bool),
    )
    report = one_step_report(FixedModel(means, variances), buffer.all())
    target = torch.as_tensor(buffer.all().next_obs, dtype=torch.float64)
    elite_means, elite_vars = means[:2], variances[:2]
    mean = elite_means.mean(0)
    var = elite_vars.mean(0) + elite_means.var(0, unbiased=False)
    normal = torch.distributions.Normal(mean, var.sqrt())
    z = ((target - mean) / var.sqrt()).abs()
    cdf = normal.cdf(target)
    observed = np.array([(cdf <= q).double().mean() for q in QUANTILES])
    assert report["mse"] == pytest.approx(float((target - mean).square().mean()))
    assert report["nll"] == pytest.approx(float(-normal.log_prob(target).mean()))
    assert report["coverage_1sigma"] == pytest.approx(float((z <= 1).double().mean()))
    assert report["coverage_2sigma"] == pytest.approx(float((z <= 2).double().mean()))
    assert report["ece"] == pytest.approx(float(np.abs(observed - QUANTILES).mean()))


def test_holdout_episodes_every_fifth_or_the_last_fifth():
    episode = np.repeat(np.arange(10), 3)
    assert np.flatnonzero(holdout_episodes(episode)).tolist() == [12, 13, 14, 27, 28, 29]
    single = holdout_episodes(np.zeros(10, dtype=np.int64))
    assert single.tolist() == [False] * 8 + [True] * 2


def pendulum_transitions(n: int, rng: np.random.Generator, inside: bool) -> ReplayBuffer:
    """Transitions from states drawn with |theta| < pi/2 (inside) or > pi/2 (outside)."""
    env = gym.make("Pendulum-v1").unwrapped
    env.reset(seed=int(rng.integers(1 << 30)))
    buffer = ReplayBuffer(n, (3,), (1,))
    for _ in range(n):
        half = rng.uniform(0, np.pi / 2)
        theta = (half if inside else np.pi - half) * rng.choice([-1, 1])
        env.state = np.array([theta, rng.uniform(-8, 8)])
        obs = env._get_obs()
        action = rng.uniform(-2, 2, size=1).astype(np.float32)
        next_obs, reward, *_ = env.step(action)
        buffer.add(obs, action, reward, next_obs, False, False)
    return buffer


def test_epistemic_uncertainty_rises_out_of_distribution():
    rng = np.random.default_rng(0)
    model = EnsembleModel(3, 1, SMALL, seed=0)
    model.fit(pendulum_transitions(4000, rng, inside=True), rng=rng)
    held_in = pendulum_transitions(500, rng, inside=True).all().to_torch()
    outside = pendulum_transitions(500, rng, inside=False).all().to_torch()
    with torch.inference_mode():
        d_in = model.uncertainty(held_in["obs"], held_in["action"])["epistemic"][:, :3].mean()
        d_out = model.uncertainty(outside["obs"], outside["action"])["epistemic"][:, :3].mean()
    assert d_out >= 3 * d_in, (float(d_out), float(d_in))


def cli(*args):
    command = [sys.executable, "-m", "modelbased", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_diagnose_cli_json(tmp_path):
    settings = "ensemble_size=3 elites=2 hidden=32 layers=2 weight_decay=[5e-5] max_epochs=30"
    sets = [arg for setting in settings.split() for arg in ("--set", setting)]
    args = ["diagnose", "--env", "Pendulum-v1", "--steps", "2000", "--horizon", "10"]
    proc = cli(*args, *sets, "--out", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    for key in ("one_step_nmse", "mse", "nll", "coverage_1sigma", "coverage_2sigma", "ece"):
        assert isinstance(report[key], float)
    assert len(report["kstep_nmse"]) == 10
    assert report["verdict"] in ("calibrated", "overconfident", "underconfident")


def test_diagnose_prints_the_verdict_line(monkeypatch, tmp_path, capsys):
    from modelbased import cli as cli_module
    from modelbased.diagnostics import report as report_module

    fake = {
        "fit_epochs": 3,
        **dict.fromkeys(("one_step_nmse", "mse", "nll", "coverage_1sigma", "ece"), 0.1),
        "coverage_2sigma": 0.59,
        "verdict": "overconfident",
        "holdout_rows": 600,
        "kstep_nmse": [0.1] * 5,
        "kstep_nmse_by_mode": {"tsinf": [0.1] * 5},
        "plots": [],
    }
    monkeypatch.setattr(report_module, "diagnose", lambda *a, **k: fake)
    assert cli_module.main(["diagnose", "--env", "Pendulum-v1", "--out", str(tmp_path)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "verdict" in x)
    assert line.split()[:2] == ["verdict", "overconfident"] and "0.590" in line


@pytest.mark.parametrize(
    "args,message",
    [
        (["--env", "FrozenLake-v1"], "needs a flat Box observation space"),
        (["--env", "Pendulum-v1", "--set", "hiden=3"], "hiden='3' is not a config key"),
        (["--env", "Pendulum-v1", "--set", "elites=9"], "elites"),
        (["--env", "Pendulum-v1", "--steps", "50"], "at least 300 steps"),
        (["--env", "NoSuch-v0"], "unknown environment"),
    ],
)
def test_diagnose_bad_input_exits_2(args, message, tmp_path):
    proc = cli("diagnose", *args, "--out", str(tmp_path / "d"))
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_diagnose_pendulum_default_ensemble_meets_targets(tmp_path):
    report = diagnose("Pendulum-v1", steps=10_000, seed=0, out_dir=tmp_path)
    assert report["one_step_nmse"] < 0.01
    assert 0.90 <= report["coverage_2sigma"] <= 0.99
