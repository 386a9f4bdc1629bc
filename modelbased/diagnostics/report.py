"""``modelbased diagnose``: collect data, fit an ensemble, and report its one-step error,
calibration and compounding k-step error, with plots of predicted vs real rollouts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modelbased.core.device import resolve_device
from modelbased.core.env_utils import make_env, require_box
from modelbased.core.errors import ConfigError
from modelbased.core.seeding import make_rng
from modelbased.diagnostics.model_error import (
    Policy,
    calibration_verdict,
    collect,
    holdout_episodes,
    kstep_table,
    one_step_report,
    segments,
)
from modelbased.models.ensemble import EnsembleConfig, EnsembleModel
from modelbased.models.model_env import ModelEnv


def diagnose(
    env_id: str,
    steps: int = 10_000,
    policy: Policy | None = None,
    seed: int = 0,
    horizon: int = 30,
    num_segments: int = 200,
    config: EnsembleConfig | None = None,
    out_dir: str | Path | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """The full diagnosis of an ensemble fitted on ``steps`` transitions of ``policy``.

    Every fifth episode is held out (:func:`holdout_episodes`): one-step metrics use its
    transitions and the k-step curves its ``horizon``-step segments. Returns a JSON-able dict
    (``kstep_nmse`` is the TS-inf curve for k = 1..horizon; ``verdict`` is
    :func:`calibration_verdict` of the held-out 2-sigma coverage); with ``out_dir``, writes
    ``kstep.png`` and ``rollouts.png`` there. The ensemble is fitted on ``device``.
    """
    t0 = time.perf_counter()
    require_box("diagnose", make_env(env_id), observation=True, action=True)
    if steps < 10 * horizon:
        raise ConfigError(f"diagnose needs at least {10 * horizon} steps, got {steps}")
    rollouts = collect(env_id, steps, policy, seed)
    holdout = holdout_episodes(rollouts.episode)
    rows = np.arange(len(holdout))
    buffer = rollouts.buffer
    model = EnsembleModel(buffer.obs_shape[0], buffer.action_shape[0], config, seed=seed)
    model = model.to(resolve_device(device))
    fit = model.fit(buffer.get(rows[~holdout]), rng=make_rng(seed, "fit"))
    report: dict[str, Any] = {
        "env_id": env_id,
        "steps": steps,
        "seed": seed,
        "fit_epochs": fit.epochs,
        "elites": fit.elites,
    }
    report |= one_step_report(model, buffer.get(rows[holdout]))
    report["verdict"] = calibration_verdict(report["coverage_2sigma"])
    report["holdout_rows"] = int(holdout.sum())
    # short held-out episodes (a falling pole under random actions) cap the open-loop horizon
    horizon = min(horizon, int(np.bincount(rollouts.episode[holdout]).max()))
    report["horizon"] = horizon
    segment_rng = make_rng(seed, "segments")
    obs, actions = segments(
        rollouts, horizon, num_segments, segment_rng, rows[holdout], device=model.device
    )
    table = kstep_table(model, obs, actions, seed=seed)
    report["kstep_nmse"] = table["tsinf"]
    report["kstep_nmse_by_mode"] = table
    report["seconds"] = time.perf_counter() - t0
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        plot_kstep(table, out / "kstep.png", env_id)
        plot_rollouts(model, obs[:3], actions[:3], out / "rollouts.png", seed)
        report["plots"] = [str(out / "kstep.png"), str(out / "rollouts.png")]
    return report


def plot_kstep(table: dict[str, list[float]], path: Path, title: str) -> None:
    """Draw k-step NMSE against k, one curve per propagation mode, into ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for mode, curve in table.items():
        ax.plot(range(1, len(curve) + 1), curve, marker=".", label=mode)
    ax.set(
        yscale="log",
        xlabel="k (steps ahead, open loop)",
        ylabel="NMSE (normalized units)",
        title=f"{title}: compounding model error",
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_rollouts(
    model: Any, obs: torch.Tensor, actions: torch.Tensor, path: Path, seed: int, particles: int = 20
) -> None:
    """Real trajectories vs TS-inf particles (mean and ±2 std) for each state dimension."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    generator = torch.Generator(model.device).manual_seed(seed)
    env = ModelEnv(model, propagation="tsinf", generator=generator)
    obs, actions = obs.to(model.device), actions.to(model.device)
    pred = env.rollout_actions(obs[:, 0], actions, particles)["obs"].cpu()  # [H+1, S, P, o]
    obs = obs.cpu()
    dims, count = obs.shape[-1], obs.shape[0]
    fig, axes = plt.subplots(count, dims, figsize=(3.2 * dims, 2.4 * count), squeeze=False)
    t = np.arange(obs.shape[1])
    for s in range(count):
        for d in range(dims):
            ax = axes[s][d]
            mean, std = pred[:, s, :, d].mean(-1), pred[:, s, :, d].std(-1)
            ax.fill_between(t, mean - 2 * std, mean + 2 * std, alpha=0.25, label="model ±2σ")
            ax.plot(t, mean, label="model mean")
            ax.plot(t, obs[s, :, d], "k--", label="real")
            ax.set_title(f"segment {s}, obs[{d}]", fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
