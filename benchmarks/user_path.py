"""The user's path: ``modelbased train ALGO --env ID --steps N --seed S`` run as a subprocess
exactly as a user types it (shipped preset, nothing set), its evaluations read back from the
run dir's ``eval.csv``, and the issue-21 "reach and stay" check applied to them.

Parts (``--part``):

* ``pets``: ``modelbased train pets --env Pendulum-v1 --steps 2000 --seed S``; the preset
  evaluates 10 planned episodes every 500 steps (3 every 200 before 58f0dbb). The check: the
  evaluations reach -200 by 1,000 real steps and every later one stays at or above it
  (``_stats.steps_to_threshold_and_stay`` <= 1000), per seed and for the median curve over
  seeds (the median over seeds of the return at each evaluation step).

* ``mbpo``: ``modelbased train mbpo --env Pendulum-v1 --steps 3000 --seed S`` (the preset
  evaluates 10 episodes every 100 steps; 5 before 58f0dbb); the same check by 1,500 steps.

No run stops at the threshold. One record per part and seed is appended to
``results/user_path.json`` (the eval curve, the threshold figures of ``_stats.curve_figures``,
the model's holdout MSE after each refit from ``train.csv``, wall and CPU seconds of the
subprocess, the command). ``--resume`` skips stored seeds; a run dir left by a stopped
invocation (``runs/user-path/<part>-seed<S>``) is continued with ``train --resume``.

Run:  python benchmarks/user_path.py --part pets --seeds 0 1 2 --resume   (~20 min CPU a seed)
      python benchmarks/user_path.py --part mbpo --seeds 0 1 2 --resume   (~40 min CPU a seed)
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _common as common
import _stats
import numpy as np

NAME = "user_path"
# algo, env, steps, threshold, reach-by step
PARTS = {
    "pets": ("pets", "Pendulum-v1", 2000, -200.0, 1000),
    "mbpo": ("mbpo", "Pendulum-v1", 3000, -200.0, 1500),
}
RUNS = common.REPO / "runs" / "user-path"


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a run dir's CSV file (``[]`` if it does not exist)."""
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def run_cli(part: str, seed: int) -> dict[str, Any]:
    """Train through the CLI (continuing a stopped run dir) and read the run dir back."""
    algo, env, steps, threshold, by = PARTS[part]
    run_dir = RUNS / f"{part}-seed{seed}"
    base = [sys.executable, "-m", "modelbased", "train", algo]
    if (run_dir / "checkpoint.pt").exists():
        command = [*base, "--resume", str(run_dir)]
    else:
        command = [*base, "--env", env, "--steps", str(steps), "--seed", str(seed)]
        command += ["--out", str(run_dir)]
    print("$", " ".join(command[1:]), flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    done = subprocess.run(command, env=os.environ | {"OMP_NUM_THREADS": "1"}, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{part} seed {seed}: the CLI exited with {done.returncode}")
    curve = [
        {"steps": int(float(r["env_steps"])), "return": float(r["return_mean"])}
        for r in read_csv(run_dir / "eval.csv")
    ]
    refits = [
        {"steps": int(float(r["env_steps"])), "model_holdout_mse": float(r["model_holdout_mse"])}
        for r in read_csv(run_dir / "train.csv")
        if r.get("model_holdout_mse")
    ]
    figures = _stats.curve_figures(curve, threshold)
    stay = figures["steps_to_threshold_and_stay"]
    return {
        "command": " ".join(["modelbased", *command[3:]]),
        "algo": algo,
        "env": env,
        "total_steps": steps,
        "threshold": threshold,
        "reach_by": by,
        "curve": curve,
        "refits": refits,
        **figures,
        "meets": stay is not None and stay <= by,
        "wall_s": time.perf_counter() - wall,
        "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    }


def median_curve(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The median over runs of the return at each evaluation step all runs share."""
    steps = sorted(set.intersection(*({p["steps"] for p in r["curve"]} for r in runs)))
    at = [{p["steps"]: p["return"] for p in r["curve"]} for r in runs]
    return [{"steps": s, "return": float(np.median([a[s] for a in at]))} for s in steps]


def summary(part: str) -> None:
    """Per seed and for the median curve over the stored seeds: reach and stay."""
    runs = [r["figures"] for r in common.load_records(NAME) if r.get("part") == part]
    if not runs:
        return
    by_seed = {r["seed"]: r for r in runs}  # a seed run again counts with its latest run
    runs = [by_seed[s] for s in sorted(by_seed)]
    _, _, _, threshold, by = PARTS[part]
    med = median_curve(runs)
    stay = _stats.steps_to_threshold_and_stay(med, threshold)
    rows = [
        [r["seed"], r["first_crossing"], r["steps_to_threshold_and_stay"], r["final_return"]]
        for r in runs
    ]
    rows.append(["median curve", _stats.first_crossing(med, threshold), stay, med[-1]["return"]])
    common.print_table(
        ["seed", "first >= threshold", "stays from", "final"],
        rows,
        f"{part}: reach {threshold} by {by} steps and stay ({len(runs)} seeds): "
        f"{'met' if stay is not None and stay <= by else 'NOT met'} by the median curve",
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--part", choices=list(PARTS), required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--resume", action="store_true", help="skip seeds already stored")
    args = p.parse_args()
    for seed in args.seeds:
        if common.skip_stored(NAME, seed, args, [], part=args.part):
            continue
        record = common.start_record(args, seeds=[seed], part=args.part)
        figures = {"seed": seed, **run_cli(args.part, seed)}
        print(
            f"{args.part} seed {seed}: first >= {figures['threshold']} at "
            f"{figures['first_crossing']}, stays from {figures['steps_to_threshold_and_stay']}, "
            f"final {figures['final_return']:.1f}",
            flush=True,
        )
        common.append_record(NAME, record, figures)
    summary(args.part)


if __name__ == "__main__":
    main()
