"""``modelbased sweep`` on this machine: wall time of a sweep over seeds against the same runs
one after another, and the same sweep on a two-node Ray cluster on loopback.

Parts (one record each; ``--resume`` skips a part stored with the same arguments):

- ``sequential``: ``modelbased train ALGO --env ENV --steps N --seed S`` for each seed, one
  after another (one torch thread each, as the CLI defaults).
- ``local``: ``modelbased sweep ALGO --env ENV --seeds ... --steps N --jobs J``: a local Ray
  with J CPUs, one trial per seed.
- ``cluster``: the same sweep with ``--address`` of a Ray cluster of two nodes of one CPU each
  that this script starts on loopback with Ray's own multi-node utility
  (``ray.cluster_utils.Cluster``); the cluster's start-up is timed apart from the sweep. Each
  trial records the Ray node it ran on.

Every part stores per seed the evaluation returns (``eval.csv``), the run's own training wall
time, and the part's wall time from the command's start to its exit (Ray's start-up included).
Runs are deterministic per seed, so the three parts' curves should be equal seed for seed; the
summary says whether they are. The machine is shared: ``loadavg_before``/``loadavg_after`` are
in every record, and wall-clock ratios are only as good as the load allowed.

    python benchmarks/sweep.py --algo sac --env Pendulum-v1 --seeds 0 1 2 3 --steps 2000 --jobs 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _common as common

NAME = "sweep"
PARTS = ("sequential", "local", "cluster")
KEYS = ("algo", "env", "steps", "seeds", "jobs")
CLI = [sys.executable, "-m", "modelbased"]
OBJECT_STORE = 100 * 2**20


def run_curves(run_dir: Path) -> dict[str, Any]:
    from modelbased.runs import read_eval

    ev = read_eval(run_dir)
    return {
        "eval_steps": [int(s) for s in ev["env_steps"]],
        "returns": [float(r) for r in ev["return_mean"]],
        "final_return": float(ev["return_mean"][-1]),
        "run_wall_s": float(ev["wall_time_s"][-1]),
    }


def sequential(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    per_seed = {}
    start = time.perf_counter()
    for seed in args.seeds:
        out = root / f"s{seed}"
        cmd = [*CLI, "train", args.algo, "--env", args.env, "--steps", str(args.steps)]
        subprocess.run([*cmd, "--seed", str(seed), "--out", str(out), "--quiet"], check=True)
        per_seed[seed] = run_curves(out)
    return {"wall_s": time.perf_counter() - start, "per_seed": per_seed}


def sweep(args: argparse.Namespace, root: Path, address: str | None = None) -> dict[str, Any]:
    import json

    seeds = ",".join(str(s) for s in args.seeds)
    cmd = [*CLI, "sweep", args.algo, "--env", args.env, "--seeds", seeds]
    cmd += ["--steps", str(args.steps), "--jobs", str(args.jobs), "--out", str(root)]
    cmd += ["--address", address] if address else []
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - start
    per_seed = {}
    for seed in args.seeds:
        per_seed[seed] = run_curves(root / "runs" / f"default-s{seed}")
        trial = json.loads((root / "trials" / f"default-s{seed}.json").read_text())
        per_seed[seed]["node_id"] = trial.get("node_id")
    nodes = sorted({p["node_id"] for p in per_seed.values() if p["node_id"]})
    return {"wall_s": wall, "per_seed": per_seed, "nodes_used": len(nodes)}


def cluster(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    from ray.cluster_utils import Cluster

    start = time.perf_counter()
    node = {"num_cpus": 1, "object_store_memory": OBJECT_STORE}
    c = Cluster(
        initialize_head=True, connect=False, head_node_args=node | {"include_dashboard": False}
    )
    try:
        c.add_node(**node)
        c.wait_for_nodes()
        started = time.perf_counter() - start
        out = sweep(args, root, c.address)
    finally:
        c.shutdown()
    return out | {"cluster_start_s": started, "cluster_nodes": 2, "address": c.address}


def compare(records: list[dict[str, Any]]) -> None:
    """The latest stored record of each part with these arguments, side by side."""
    latest = {}
    for r in records:
        latest[r["part"]] = r
    if "sequential" not in latest:
        return
    base = latest["sequential"]["figures"]
    rows = []
    for part in PARTS:
        if part not in latest:
            continue
        f = latest[part]["figures"]
        same = all(
            f["per_seed"][s]["returns"] == base["per_seed"][s]["returns"] for s in base["per_seed"]
        )
        rows.append(
            [part, f["wall_s"], base["wall_s"] / f["wall_s"], same, latest[part]["loadavg_before"]]
        )
    common.print_table(
        ["part", "wall s", "sequential / part", "same per-seed evals", "load before"], rows
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algo", default="sac")
    p.add_argument("--env", default="Pendulum-v1")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--part", choices=(*PARTS, "all"), default="all")
    p.add_argument("--root", default="runs/bench-sweep", help="where the runs go (git-ignored)")
    p.add_argument("--resume", action="store_true", help="skip parts stored with these args")
    args = p.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # every Ray node on loopback
    common.setup_torch_threads()
    for part in PARTS if args.part == "all" else (args.part,):
        if args.resume and any(
            r.get("part") == part and all(r["args"].get(k) == getattr(args, k) for k in KEYS)
            for r in common.load_records(NAME)
        ):
            print(f"{NAME}: part {part} already stored; skipped (--resume)", flush=True)
            continue
        root = Path(args.root) / part
        shutil.rmtree(root, ignore_errors=True)
        record = common.start_record(args, args.seeds, part=part)
        print(f"{NAME}: {part} ...", flush=True)
        figures = {"sequential": sequential, "local": sweep, "cluster": cluster}[part](args, root)
        path = common.append_record(NAME, record, figures)
        print(f"{NAME}: {part} {figures['wall_s']:.1f} s -> {path}", flush=True)
    compare(
        [
            r
            for r in common.load_records(NAME)
            if all(r["args"].get(k) == getattr(args, k) for k in KEYS)
        ]
    )


if __name__ == "__main__":
    main()
