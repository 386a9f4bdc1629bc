"""TD-MPC2 (``mb.TDMPC``, its preset per task): real steps to a target return, reach-and-stay,
and the CPU time of each real step split into planning and model updates -- torch pinned to 1
thread. The PETS, MBPO and SAC figures for the same task come from their stored records
(``benchmarks/_report_tdmpc.py`` puts them beside these).

Parts (``--part``; default ``pendulum inverted``):

* ``pendulum``: Pendulum-v1, 3,000 steps, threshold -200.
* ``inverted``: InvertedPendulum-v5, 5,000 steps, threshold 1000.
* ``swingup``: modelbased/CartPoleSwingUp-v0, 10,000 steps, threshold 180.
* ``hopper``: Hopper-v5, 25,000 steps, no threshold (the last-5-eval mean is the figure).
* ``cartpole``: CartPole-v1 (discrete actions, categorical MPPI), 10,000 steps, threshold 475.
* ``speed``: planning milliseconds per action and update milliseconds per gradient step (CPU
  clock, median of ``--repeats`` blocks) at the Pendulum preset's size and at TD-MPC2's default
  5M size and planner (512 samples, 6 iterations), beside our classic MPPI (PETS's planner
  settings: one iteration of 500 samples, no prior, no elites) on the same latent model.

No run stops at a threshold: each runs its whole budget (``--steps`` overrides it), evaluating
on the preset's schedule; reach-and-stay, first crossing, final and last-5 mean come from the
stored curve (``benchmarks/_stats.py``). One record per part and seed is appended to
results/tdmpc.json; ``--resume`` skips the stored ones.

Run:  /work/main/.venv/bin/python benchmarks/tdmpc.py --part pendulum --seeds 0 1 2 --resume
"""

from __future__ import annotations

import argparse
from typing import Any

import _common as common
import numpy as np
import torch

import modelbased as mb

NAME = "tdmpc"
PARTS = {  # env, threshold, budget
    "pendulum": ("Pendulum-v1", -200.0, 3000),
    "inverted": ("InvertedPendulum-v5", 1000.0, 5000),
    "swingup": ("modelbased/CartPoleSwingUp-v0", 180.0, 10_000),
    "hopper": ("Hopper-v5", None, 25_000),
    "cartpole": ("CartPole-v1", 475.0, 10_000),
}
PHASES = ("plan", "update")


def phase_split(rows: list[dict[str, float]], learning_steps: int) -> dict[str, float]:
    """CPU seconds per learning step (after the seed steps) of planning training actions and of
    model updates, from the agent's phase timers (evaluations plan outside the ``plan``
    phase)."""
    total = {p: sum(r.get(f"time/{p}_cpu_s", 0.0) for r in rows) for p in PHASES}
    n = max(learning_steps, 1)
    return {
        "update_cpu_s_per_step": total["update"] / n,
        "plan_cpu_s_per_step": total["plan"] / n,
        "update_cpu_s_total": total["update"],
        "plan_cpu_s_total": total["plan"],
        "learning_steps": learning_steps,
    }


def part_run(name: str, args: argparse.Namespace) -> None:
    env, threshold, budget = PARTS[name]
    budget = args.steps or budget
    for seed in args.seeds:
        if common.skip_stored(NAME, seed, args, ["steps"], part=name):
            continue
        record = common.start_record(args, seeds=[seed], part=name)
        agent = mb.TDMPC(env, seed=seed, device="cpu")
        tracker = common.eval_tracker(threshold)
        agent.learn(budget, callback=tracker)
        result = tracker.curve.result()
        cfg = agent.config
        learning = budget - cfg.seed_steps
        split = phase_split(tracker.rows, learning)
        # CPU per real step: the learning time (evaluations excluded) over the steps after the
        # random seed steps (the pretraining burst at the seed step included), as MBPO's
        learn_cpu = result["total_learn_cpu_s"] or 0.0
        result["cpu_s_per_real_step"] = learn_cpu / max(learning, 1)
        print(
            f"TD-MPC {env} seed {seed}: stay {result['steps_to_threshold_and_stay']}, "
            f"first {result['first_crossing']}, last-5 {result['last5_mean']}, "
            f"CPU/real step {result['cpu_s_per_real_step']:.3f} s",
            flush=True,
        )
        figures = {
            "env": env,
            "threshold": threshold,
            "budget": budget,
            "tdmpc": result,
            "phases": split,
            "config": cfg.to_dict(),
        }
        common.append_record(NAME, record, figures)


def plan_and_update_ms(overrides: dict[str, Any], repeats: int) -> dict[str, float]:
    """CPU milliseconds per planned action and per gradient step of a TD-MPC agent on
    Pendulum-v1 built with ``overrides`` (replay filled with 600 random steps)."""
    agent = mb.TDMPC("Pendulum-v1", seed=0, device="cpu", seed_steps=600, **overrides)
    rng = np.random.default_rng(0)
    env = agent.env
    obs, _ = env.reset(seed=0)
    for _ in range(600):
        action = agent._random(rng)
        nxt, reward, term, trunc, _ = env.step(action)
        agent.buffer.add(obs, action, reward, nxt, term, trunc)
        obs = nxt if not (term or trunc) else env.reset()[0]
    agent.train_model(5)
    plan = common.timed(lambda: [agent.policy(obs, True, rng) for _ in range(20)], repeats)[1]
    update = common.timed(lambda: agent.train_model(10), repeats)[1]
    return {"plan_ms": plan / 20 * 1000, "update_ms": update / 10 * 1000}


def part_speed(args: argparse.Namespace) -> None:
    if common.skip_stored(NAME, 0, args, ["repeats"], part="speed"):
        return
    record = common.start_record(args, seeds=[0], part="speed")
    five_m = {"net.latent_dim": 512, "net.enc_dim": 256, "net.mlp_dim": 512}
    configs = {
        "preset (Pendulum-v1)": {},
        "preset, planner: classic MPPI (500 samples, 1 iteration, no prior)": {
            "planner": {
                "population": 500,
                "iterations": 1,
                "elites": 0,
                "adapt_std": False,
                "sigma": 0.5,
                "select": "mean",
            },
            "num_pi_trajs": 0,
        },  # fmt: skip
        "TD-MPC2 5M, its planner and Mish": five_m
        | {
            "net.activation": "mish",
            "planner": {"population": 488, "iterations": 6, "elites": 64},
            "num_pi_trajs": 24,
        },
    }
    rows, speeds = [], {}
    for label, overrides in configs.items():
        speeds[label] = plan_and_update_ms(overrides, args.repeats)
        rows.append([label, speeds[label]["plan_ms"], speeds[label]["update_ms"]])
        print(rows[-1], flush=True)
    common.print_table(["model / planner", "plan ms/action", "update ms/step"], rows,
                       "TD-MPC CPU time, 1 thread")  # fmt: skip
    common.append_record(NAME, record, {"speed": speeds})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", nargs="+", default=["pendulum", "inverted"],
                        choices=[*PARTS, "speed"])  # fmt: skip
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=None, help="override every part's budget")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--resume", action="store_true", help="skip stored part/seed records")
    args = parser.parse_args()
    common.setup_torch_threads()
    torch.manual_seed(0)
    for part in args.part:
        part_speed(args) if part == "speed" else part_run(part, args)


if __name__ == "__main__":
    main()
