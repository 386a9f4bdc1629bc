"""Calibration of the probabilistic dynamics ensemble with variance recalibration off and on, and
its epistemic disagreement out of distribution.

Per task and seed: ``--steps`` transitions of the uniformly random policy
(``modelbased.diagnostics.model_error.collect``), every fifth episode held out
(``holdout_episodes``, the rule of ``modelbased diagnose``), and an ``EnsembleModel`` with
``EnsembleConfig()`` defaults as PETS uses them (7 members, 5 elites, 4 x 200 SiLU, PETS's
weight decay, bootstrap, MBPO's early stopping on ``fit``'s own 20% split, which also picks the
elites and the recalibration scale) fitted on the other episodes. Measures, on the held-out
episodes:

1. recalibration off vs on (Malik et al. 2019): ``one_step_report`` of the same fitted weights
   twice, with ``log_var_scale`` zero (what ``calibrate=False`` leaves; the flag is read only
   after training, so the weights are those a ``calibrate=False`` fit gives) and with the scale
   ``fit`` chose (``calibrate=True``, the default). Figures over the next observation's
   dimensions of the elites' moment-matched Gaussian: coverage of the 1- and 2-sigma intervals
   (nominal 68.3% and 95.4%), ECE (mean gap between observed and nominal frequency at 19
   quantile levels), NLL (nats per dimension, original units), MSE (original units) and NMSE;
2. epistemic disagreement: ``EnsembleModel.uncertainty(...)["epistemic"]`` (variance of the
   elites' predicted mean next observations), mean over observation dimensions, median over
   rows; its ratio out of / in distribution per seed. In distribution: the held-out rows.
   Out of distribution, two sets made from the held-out rows (rng ``derive_seed(seed, "ood")``):
   * ``action``: every action dimension replaced by a random sign times U(2, 4) times its bound
     (actions 2-4x beyond the action space, which the random data never leaves);
   * ``state``: every observation dimension shifted by a random sign times U(1, 2) times the
     range of the training observations in that dimension, so every coordinate lies at or
     beyond the edge of the box the training states span.

Over seeds: median, IQM and bootstrap 95% intervals (``_stats.summarize``). Torch on one thread.
Each invocation of this part (``--part recal``, the default) appends one record to
``results/model_calibration.json``.

Part ``tasks``: the calibration verdict of ``modelbased diagnose`` on the five tasks of issue
21 (``TASKS``: Pendulum-v1, MountainCarContinuous-v0, modelbased/CartPoleSwingUp-v0,
InvertedPendulum-v5, Hopper-v5, each at its own step count in 3k-10k), through the CLI's code
path (``modelbased.diagnostics.report.diagnose`` with default ``EnsembleConfig()``, random
policy, every fifth episode held out): held-out 2-sigma and 1-sigma coverage, ECE, NLL, MSE,
the k-step NMSE curve and the verdict (``calibrated`` for 2-sigma coverage in 0.90-0.99). One
record per task and seed; ``--resume`` skips stored ones.

Run:  python benchmarks/model_calibration.py      (Pendulum-v1, 3 seeds: ~90 s CPU per seed)
      python benchmarks/model_calibration.py --tasks Pendulum-v1 MountainCarContinuous-v0
      python benchmarks/model_calibration.py --part tasks --seeds 0 --resume
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import _stats
import numpy as np
import torch
from _common import append_record, print_table, setup_torch_threads, skip_stored, start_record

from modelbased.core.device import resolve_device
from modelbased.core.env_utils import make_env, require_box
from modelbased.core.seeding import make_rng
from modelbased.diagnostics.model_error import collect, holdout_episodes, one_step_report
from modelbased.diagnostics.report import diagnose
from modelbased.models import EnsembleConfig, EnsembleModel

REPORT_KEYS = ("coverage_1sigma", "coverage_2sigma", "ece", "nll", "mse", "one_step_nmse")
OOD_KINDS = ("action", "state")
# part tasks: the five tasks and the random-policy transitions diagnose collects on each
TASKS = {
    "Pendulum-v1": 5_000,
    "MountainCarContinuous-v0": 10_000,
    "modelbased/CartPoleSwingUp-v0": 5_000,
    "InvertedPendulum-v5": 5_000,
    "Hopper-v5": 10_000,
}


def ood_inputs(
    obs: np.ndarray,
    action: np.ndarray,
    train_obs: np.ndarray,
    action_bound: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The out-of-distribution ``(obs, action)`` sets of the module docstring, made from the
    held-out rows ``obs [B, o]``, ``action [B, a]``."""
    sign_a = rng.choice([-1.0, 1.0], size=action.shape)
    far_action = sign_a * rng.uniform(2.0, 4.0, size=action.shape) * action_bound
    span = train_obs.max(0) - train_obs.min(0)
    sign_s = rng.choice([-1.0, 1.0], size=obs.shape)
    far_obs = obs + sign_s * rng.uniform(1.0, 2.0, size=obs.shape) * span
    return {
        "action": (obs, far_action.astype(np.float32)),
        "state": (far_obs.astype(np.float32), action),
    }


def median_epistemic(model: EnsembleModel, obs: np.ndarray, action: np.ndarray) -> float:
    """Median over rows of the elites' epistemic variance, mean over observation dims."""
    with torch.inference_mode():
        epistemic = model.uncertainty(torch.as_tensor(obs), torch.as_tensor(action))["epistemic"]
    return float(epistemic[:, : model.obs_dim].mean(1).median())


def run_seed(task: str, steps: int, seed: int, device: torch.device) -> dict[str, Any]:
    """Collect, fit and measure one seed (see the module docstring)."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    rollouts = collect(task, steps, None, seed)
    holdout = holdout_episodes(rollouts.episode)
    rows = np.arange(len(holdout))
    buffer = rollouts.buffer
    train, held = buffer.get(rows[~holdout]), buffer.get(rows[holdout])
    model = EnsembleModel(buffer.obs_shape[0], buffer.action_shape[0], EnsembleConfig(), seed=seed)
    model = model.to(device)
    fit = model.fit(train, rng=make_rng(seed, "fit"))
    scale = model.log_var_scale.clone()
    on = one_step_report(model, held)
    model.log_var_scale.zero_()  # as calibrate=False leaves it
    off = one_step_report(model, held)
    model.log_var_scale.copy_(scale)

    bound = np.asarray(make_env(task).action_space.high, dtype=np.float64)
    sets = ood_inputs(held.obs, held.action, train.obs, bound, make_rng(seed, "ood"))
    inside = median_epistemic(model, held.obs, held.action)
    outside = {kind: median_epistemic(model, *sets[kind]) for kind in OOD_KINDS}
    return {
        "seed": seed,
        "train_rows": len(train),
        "holdout_rows": len(held),
        "holdout_episodes": int(len(np.unique(rollouts.episode[holdout]))),
        "fit_epochs": fit.epochs,
        "elites": fit.elites,
        "log_var_scale": scale.tolist(),
        "off": off,
        "on": on,
        "epistemic_median": {"in": inside, **outside},
        "epistemic_ratio": {kind: outside[kind] / inside for kind in OOD_KINDS},
        "cpu_s": time.process_time() - cpu0,
        "wall_s": time.perf_counter() - wall0,
    }


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median, IQM and bootstrap intervals over seeds of every figure."""
    out: dict[str, Any] = {
        side: {k: _stats.summarize([r[side][k] for r in runs]) for k in REPORT_KEYS}
        for side in ("off", "on")
    }
    out["epistemic_ratio"] = {
        kind: _stats.summarize([r["epistemic_ratio"][kind] for r in runs]) for kind in OOD_KINDS
    }
    return out


def print_task(task: str, runs: list[dict[str, Any]], summ: dict[str, Any]) -> None:
    def row(label: Any, get: Any) -> list[Any]:
        return [
            label,
            get("off", "coverage_2sigma"),
            get("on", "coverage_2sigma"),
            get("off", "ece"),
            get("on", "ece"),
            get("off", "nll"),
            get("on", "nll"),
            get("on", "mse"),
            get("ratio", "action"),
            get("ratio", "state"),
        ]

    def of_run(r: dict[str, Any]) -> Any:
        return lambda side, k: r["epistemic_ratio"][k] if side == "ratio" else r[side][k]

    def of_summary(stat: str) -> Any:
        return lambda side, k: (summ["epistemic_ratio"][k] if side == "ratio" else summ[side][k])[
            stat
        ]

    print_table(
        [
            "seed",
            "2sd cov off",
            "2sd cov on",
            "ECE off",
            "ECE on",
            "NLL off",
            "NLL on",
            "MSE",
            "OOD action x",
            "OOD state x",
        ],
        [row(r["seed"], of_run(r)) for r in runs]
        + [row("median", of_summary("median")), row("IQM", of_summary("iqm"))],
        f"{task}: held-out calibration, recalibration off / on; epistemic variance OOD / in",
    )


def part_tasks(args: argparse.Namespace) -> None:
    """``diagnose`` on each of ``TASKS`` (or ``--tasks``), one record per task and seed."""
    tasks = args.tasks or list(TASKS)
    for task in tasks:
        steps = args.steps or TASKS.get(task, 5_000)
        for seed in args.seeds:
            if skip_stored("model_calibration", seed, args, [], part="tasks", task=task):
                continue
            record = start_record(args, seeds=[seed], part="tasks", task=task)
            cpu0 = time.process_time()
            report = diagnose(task, steps, None, seed, device=args.device)
            keep = ("kstep_nmse_by_mode", "plots")
            figures = {k: v for k, v in report.items() if k not in keep}
            figures["cpu_s"] = time.process_time() - cpu0
            print(
                f"{task} seed {seed}, {steps} steps: 2-sigma coverage "
                f"{report['coverage_2sigma']:.3f}, 1-sigma {report['coverage_1sigma']:.3f}, "
                f"ECE {report['ece']:.3f}: {report['verdict']} ({figures['cpu_s']:.0f} s CPU)",
                flush=True,
            )
            append_record("model_calibration", record, figures)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--part", choices=["recal", "tasks"], default="recal")
    p.add_argument("--tasks", nargs="+", help="flat Box tasks (recal: Pendulum-v1; tasks: TASKS)")
    p.add_argument(
        "--steps", type=int, default=0, help="transitions per seed (recal: 10000; tasks: TASKS)"
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--device", default="cpu", help="cpu, cuda[:N] or auto")
    p.add_argument("--resume", action="store_true", help="part tasks: skip stored task/seeds")
    args = p.parse_args()
    for task in args.tasks or []:
        require_box("model_calibration", make_env(task), observation=True, action=True)
    setup_torch_threads()
    if args.part == "tasks":
        part_tasks(args)
        return
    args.tasks = args.tasks or ["Pendulum-v1"]
    args.steps = args.steps or 10_000
    device = resolve_device(args.device)
    record = start_record(args, seeds=args.seeds)
    tasks: dict[str, Any] = {}
    for task in args.tasks:
        runs = []
        for seed in args.seeds:
            runs.append(run_seed(task, args.steps, seed, device))
            r = runs[-1]
            print(
                f"{task} seed {seed}: {r['fit_epochs']} epochs, {r['cpu_s']:.0f} s CPU, "
                f"{r['holdout_rows']} held-out rows",
                flush=True,
            )
        tasks[task] = {"steps": args.steps, "runs": runs, "summary": summary(runs)}
        print_task(task, runs, tasks[task]["summary"])
    path = append_record("model_calibration", record, {"tasks": tasks})
    print(f"\nappended a record to {path}")


if __name__ == "__main__":
    main()
