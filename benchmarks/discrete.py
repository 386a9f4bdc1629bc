"""Discrete actions on CartPole-v1: PETS (categorical CEM), MBPO (on SAC-discrete) and
SAC-discrete (Christodoulou 2019), each with its CartPole-v1 preset: real env steps and CPU
seconds to an eval return of 475 that stays (``benchmarks/_stats.py``), beside SB3's DQN and PPO
(rl-zoo settings) as stored by ``benchmarks/muzero.py --part baselines`` in
results/muzero.json (the formatter reads them from there; nothing is copied).

Parts (``--part``, default all three), each with its budget (issue 19's targets):

* ``pets``: 3k env steps (target: 475 within 3k), evaluated every 500 steps on 5 episodes
  (each a plan per step: 500-step episodes cost 500 plans);
* ``mbpo``: 10k env steps (target: within 10k), evaluated every 500 steps on 10 episodes;
* ``sac``: 30k env steps (target: within 30k), evaluated every 1000 steps on 10 episodes.

Evaluations are deterministic (argmax / the plan's first action) and their time is left out of
the learning CPU and wall seconds. One record per part and seed is appended to
results/discrete.json; ``--resume`` skips the (part, seed) pairs already stored with the same
budget.

Run:  /work/main/.venv/bin/python benchmarks/discrete.py --part pets --seeds 0 1 2 --resume
quick: --part pets --seeds 0 --steps 600 --eval-every 300 --eval-episodes 1
"""

from __future__ import annotations

import argparse
from typing import Any

import _common as common
import torch

import modelbased as mb

NAME = "discrete"
ENV, THRESHOLD = "CartPole-v1", 475.0
# part -> (agent class, env steps, eval every, eval episodes, phases of the agent's timer)
PARTS: dict[str, tuple[Any, int, int, int, tuple[str, ...]]] = {
    "pets": (mb.PETS, 3_000, 500, 5, ("plan", "model")),
    "mbpo": (mb.MBPO, 10_000, 500, 10, ("model", "rollout", "sac")),
    "sac": (mb.SAC, 30_000, 1_000, 10, ("sac",)),
}


def phase_split(rows: list[dict[str, float]], phases: tuple[str, ...], steps: int) -> dict:
    """CPU seconds per env step of each phase, and the plan's CPU seconds per call."""
    out = {}
    for phase in phases:
        total = sum(r.get(f"time/{phase}_cpu_s", 0.0) for r in rows)
        out[f"{phase}_cpu_s_per_step"] = total / max(steps, 1)
        if phase == "plan":
            calls = sum(r.get("time/plan_calls", 0.0) for r in rows)
            out["plan_cpu_s_per_call"] = total / calls if calls else None
    return out


def run(part: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """One seed of one part: the preset, the part's budget and evaluation cadence."""
    agent_class, steps, eval_every, episodes, phases = PARTS[part]
    steps = args.steps or steps
    eval_every, episodes = args.eval_every or eval_every, args.eval_episodes or episodes
    agent = agent_class(
        ENV, seed=seed, eval_every=eval_every, eval_episodes=episodes, log_every=eval_every
    )
    tracker = common.eval_tracker(THRESHOLD)
    agent.learn(steps, callback=tracker)
    return tracker.curve.result() | {
        "phases": phase_split(tracker.rows, phases, agent.loop.env_steps),
        "eval_every": eval_every,
        "eval_episodes": episodes,
        "config": agent.config.to_dict(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--part", nargs="+", default=list(PARTS), choices=list(PARTS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=None, help="env steps (default: the part's)")
    p.add_argument("--eval-every", type=int, default=None, help="default: the part's")
    p.add_argument("--eval-episodes", type=int, default=None, help="default: the part's")
    p.add_argument("--resume", action="store_true", help="skip (part, seed) already stored")
    args = p.parse_args()
    torch.set_num_threads(1)
    for part in args.part:
        for seed in args.seeds:
            keys = ("steps", "eval_every", "eval_episodes")
            if common.skip_stored(NAME, seed, args, keys, part=part):
                continue
            record = common.start_record(args, seeds=[seed], part=part)
            result = run(part, seed, args)
            print(
                f"{part} seed {seed}: stays >= {THRESHOLD} from "
                f"{result['steps_to_threshold_and_stay']} (first {result['first_crossing']}), "
                f"final {result['final_return']}, learning CPU s {result['total_learn_cpu_s']:.0f}"
                f", phases {result['phases']}",
                flush=True,
            )
            figures = {"env": ENV, "threshold": THRESHOLD, "algo": part, part: result}
            common.append_record(NAME, record, figures)
    print(f"records in {common.RESULTS / NAME}.json")


if __name__ == "__main__":
    main()
