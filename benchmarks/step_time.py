"""Time per 1,000 env steps of every registered algorithm, as ``modelbased train ALGO`` runs it
(default env, its preset, evaluations included, one torch thread), for ``modelbased list``.

Each algorithm trains with seed 0 for ``min(default steps, cap)`` steps (the caps keep the slow
planners to a few minutes; their rate over the first steps is the figure, said as such), timed
in wall-clock and CPU seconds of this process. One record per algorithm (``--resume`` skips an
algorithm stored with the same steps). Then ``modelbased/step_times.json`` (package data, read
by ``modelbased list``) is rewritten from the latest record of each algorithm, with the record's
index, date, load and machine: the figures there are never typed by hand.

    python benchmarks/step_time.py [--algos sac pets ...] [--resume]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import _common as common

NAME = "step_time"
# steps measured where the default run would take more than a few minutes here
CAPS = {
    "pets": 400,
    "mpc": 400,
    "mbpo": 600,
    "muzero": 1000,
    "alphazero": 1000,
    "sac": 3000,
    # the latent models: their 1,000 random steps, then 500 learning ones
    "dreamer": 1500,
    "planet": 1500,
    "tdmpc": 1500,
}
PACKAGE_FILE = common.REPO / "modelbased" / "step_times.json"


def measure(algo: str) -> dict:
    import modelbased as mb

    cls = mb.ALGORITHMS[algo]
    steps = min(cls.default_steps, CAPS.get(algo, cls.default_steps))
    agent = cls(cls.default_env, seed=0, device="cpu")
    wall, cpu = time.perf_counter(), time.process_time()
    agent.learn(steps)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "algo": algo,
        "env": cls.default_env,
        "default_steps": cls.default_steps,
        "steps": agent.loop.env_steps,  # self-play may overshoot the budget
        "wall_s": wall,
        "cpu_s": cpu,
        "wall_s_per_1k": 1000 * wall / agent.loop.env_steps,
        "cpu_s_per_1k": 1000 * cpu / agent.loop.env_steps,
    }


def write_package_file() -> Path:
    """``modelbased/step_times.json`` from the latest record of each algorithm."""
    latest = {}
    for i, r in enumerate(common.load_records(NAME)):
        f = r["figures"]
        latest[f["algo"]] = {
            "env": f["env"],
            "steps": f["steps"],
            "cpu_s_per_1k": round(f["cpu_s_per_1k"], 3),
            "wall_s_per_1k": round(f["wall_s_per_1k"], 3),
            "loadavg": round(r["loadavg_before"][0], 1),
            "date": r["date"][:10],
            "record": f"benchmarks/results/{NAME}.json #{i}",
        }
    machine = f"{platform.machine()}, {os.cpu_count()} cores, torch threads 1"
    data = {"machine": machine, "algorithms": dict(sorted(latest.items()))}
    PACKAGE_FILE.write_text(json.dumps(data, indent=1) + "\n")
    return PACKAGE_FILE


def main() -> None:
    import modelbased as mb

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algos", nargs="+", default=sorted(mb.ALGORITHMS))
    p.add_argument("--resume", action="store_true")
    args = p.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    common.setup_torch_threads()
    unknown = set(args.algos) - set(mb.ALGORITHMS)
    if unknown:
        p.error(f"unknown algorithms {sorted(unknown)}")
    rows = []
    for algo in args.algos:
        cls = mb.ALGORITHMS[algo]
        steps = min(cls.default_steps, CAPS.get(algo, cls.default_steps))
        if args.resume and any(
            r["figures"]["algo"] == algo and r["args"]["cap"] == steps
            for r in common.load_records(NAME)
        ):
            print(f"{NAME}: {algo} already stored; skipped (--resume)", flush=True)
            continue
        record = common.start_record({"algo": algo, "cap": steps}, [0])
        figures = measure(algo)
        common.append_record(NAME, record, figures)
        rows.append([algo, figures["steps"], figures["cpu_s_per_1k"], figures["wall_s_per_1k"]])
        print(f"{NAME}: {algo} {figures['cpu_s_per_1k']:.2f} CPU s per 1k steps", flush=True)
    common.print_table(["algo", "steps", "CPU s / 1k", "wall s / 1k"], rows)
    print(f"wrote {write_package_file()}")


if __name__ == "__main__":
    main()
