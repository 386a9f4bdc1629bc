"""Dyna-Q real steps/s with the fused planning step vs the general one, in one process.

``DynaQ`` on a last-seen model runs planning step (f) as one compiled call,
:func:`modelbased.planning.tabular.dyna_q_planning` (``fused_planning``); every other variant
takes the general path: vectorized sampling (``search_control``, ``model.sample``) then the
compiled sequential updates :func:`~modelbased.planning.tabular.q_learning_updates`. Both draw
the same pairs from the agent's rng, so they give the same Q table; the fused path is kept only
if it is faster where users run it: ``planning_steps`` 5 (the default) and 50 (the
``modelbased/DynaMaze-v0`` preset).

Measured on ``modelbased/DynaMaze-v0`` (no evaluations, no logging), per ``n``:

* real env steps/s (wall and CPU) of ``agent.learn(--steps)`` from a fresh agent, both paths
  alternating (the one going first alternates too), ``--repeats`` times, seed = repeat;
* microseconds per ``agent.plan(n)`` call on an agent that has learned ``--steps`` steps (its
  model filled), same alternation, blocks of ``--calls`` calls.

Medians over repeats and fused/general ratios (also the median of the paired ratios). One JSON
record per invocation is appended to ``results/dyna_speed.json``.

    PYTHONPATH=. python benchmarks/dyna_speed.py [--steps 20000] [--repeats 7] [--ns 5,50]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import _common as common

import modelbased as mb

ENV = "modelbased/DynaMaze-v0"
PATHS = ("fused", "general")


def make_agent(n: int, seed: int, path: str) -> mb.DynaQ:
    agent = mb.DynaQ(ENV, seed=seed, planning_steps=n, eval_every=10**9, log_every=10**9)
    agent.fused_planning = path == "fused"
    return agent


def learn_rate(n: int, seed: int, path: str, steps: int) -> tuple[float, float]:
    """Real steps per wall second and per CPU second of ``learn(steps)`` from a fresh agent."""
    agent = make_agent(n, seed, path)
    w, c = time.perf_counter(), time.process_time()
    agent.learn(steps)
    return steps / (time.perf_counter() - w), steps / (time.process_time() - c)


def plan_call_us(agent: mb.DynaQ, n: int, calls: int) -> float:
    """Mean microseconds per ``agent.plan(n)`` over ``calls`` calls."""
    plan = agent.plan
    t0 = time.perf_counter()
    for _ in range(calls):
        plan(n)
    return (time.perf_counter() - t0) / calls * 1e6


def order(r: int) -> tuple[str, ...]:
    return PATHS if r % 2 == 0 else PATHS[::-1]


def measure(n: int, args: argparse.Namespace) -> dict[str, Any]:
    wall: dict[str, list[float]] = {p: [] for p in PATHS}
    cpu: dict[str, list[float]] = {p: [] for p in PATHS}
    for r in range(args.repeats):
        for path in order(r):
            w, c = learn_rate(n, r, path, args.steps)
            wall[path].append(w)
            cpu[path].append(c)
    filled = {p: make_agent(n, 0, p) for p in PATHS}
    for agent in filled.values():
        agent.learn(args.steps)
    plan_us: dict[str, list[float]] = {p: [] for p in PATHS}
    for r in range(args.repeats):
        for path in order(r):
            plan_us[path].append(plan_call_us(filled[path], n, args.calls))
    out: dict[str, Any] = {"n": n}
    for p in PATHS:
        out[p] = {
            "steps_per_s": statistics.median(wall[p]),
            "steps_per_cpu_s": statistics.median(cpu[p]),
            "plan_call_us": statistics.median(plan_us[p]),
            "all_steps_per_s": wall[p],
            "all_steps_per_cpu_s": cpu[p],
            "all_plan_call_us": plan_us[p],
        }
    f, g = out["fused"], out["general"]
    paired = [a / b for a, b in zip(wall["fused"], wall["general"], strict=True)]
    out |= {
        "ratio_fused_over_general": f["steps_per_s"] / g["steps_per_s"],
        "ratio_fused_over_general_cpu": f["steps_per_cpu_s"] / g["steps_per_cpu_s"],
        "median_paired_ratio": statistics.median(paired),
        "paired_ratios": paired,
        "plan_call_speedup": g["plan_call_us"] / f["plan_call_us"],
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000, help="real steps per timed run")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per path and n")
    parser.add_argument("--calls", type=int, default=20_000, help="plan(n) calls per block")
    parser.add_argument("--ns", default="5,50", help="planning_steps values, comma-separated")
    args = parser.parse_args()
    common.setup_torch_threads()
    record = common.start_record(args, seeds=range(args.repeats), modelbased=mb.__file__)
    for path in PATHS:  # warm-up: numba compilation or cache load, imports
        learn_rate(5, 0, path, 500)
    results = [measure(int(n), args) for n in args.ns.split(",")]
    rows = [
        [
            r["n"],
            r["fused"]["steps_per_s"],
            r["general"]["steps_per_s"],
            r["ratio_fused_over_general"],
            r["ratio_fused_over_general_cpu"],
            r["median_paired_ratio"],
            r["fused"]["plan_call_us"],
            r["general"]["plan_call_us"],
        ]
        for r in results
    ]
    header = [
        "n",
        "fused steps/s",
        "general steps/s",
        "fused/general",
        "per CPU s",
        "paired",
        "fused plan us",
        "general plan us",
    ]
    common.print_table(
        header, rows, f"DynaQ on {ENV}, {args.steps} real steps, median of {args.repeats}"
    )
    path = common.append_record("dyna_speed", record, {"results": results})
    print(f"appended a record to {path}")


if __name__ == "__main__":
    main()
