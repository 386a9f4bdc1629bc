"""What a user feels: wall-clock time from start to the first planned episode with return
>= -200 on Pendulum-v1, our PETS preset against mbrl-lib 0.2.0's PETS with its defaults, both
with the known Pendulum reward, torch pinned to 1 thread, contenders run one after the other.

* Ours: ``mb.PETS("Pendulum-v1", seed=s)``, the tuned preset (iCEM: population 100, 10 elites,
  3 iterations, colored noise, kept elites; 10 TS-inf particles; H 15; refit every 200 steps).
* mbrl-lib: its default PETS config (``main.yaml`` = ``pets_cartpole`` overrides + CEM):
  population 350, elite ratio 0.1, 5 iterations, 20 TS1 (``random_model``) particles, H 15,
  7x4x200 GaussianMLP, 25 epochs per refit every ``freq_train_model`` = 50 steps, built and run
  as ``mbrl/algorithms/pets.py`` does (``benchmarks/_mbrl_peer.py``).

Both start with 200 uniform random steps. Every later episode is planned, and as in PETS (and
mbrl-lib's own ``pets.py`` logging) its return is the evaluation. The clock includes building
the agent, every model fit and every planned step. By default a run stops at the end of the
first planned episode returning >= -200 (the time to a first success, recorded with
``"stopped_at_threshold": true``: it cannot show whether the return holds); ``--run-on`` runs
the whole budget (``--max-steps``, ``--mbrl-max-steps``) and adds the steps and seconds from
which every later episode stays >= -200 (``benchmarks/_stats.py``). One record per contender
and seed is appended to results/pets_wallclock.json, so a stopped invocation keeps its finished
seeds and summaries read every record.

Run:  .bench/bin/python benchmarks/pets_wallclock.py [--seeds 0 1 2] [--mbrl-seeds 0 1 2]
      [--run-on]   (ours about 2-5 min per seed; mbrl-lib 25-50 min per seed)
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import _common as common
import _stats as stats
import torch
from _mbrl_peer import make_mbrl_pets, mbrl_available, run_mbrl_pets_until

import modelbased as mb

THRESHOLD = -200.0
NAME = "pets_wallclock"


def figures(rows: list[dict[str, Any]], stopped: bool) -> dict[str, Any]:
    """The threshold figures over the complete episodes, with the clock at each."""
    done = [r for r in rows if not math.isnan(r["return"])]
    out = stats.curve_figures(done, THRESHOLD, stopped_at_crossing=stopped)
    at = {r["steps"]: r for r in done}
    for key in ("first_crossing", "steps_to_threshold_and_stay"):
        hit = at.get(out[key])
        for clock in ("wall_s", "cpu_s"):
            out[f"{clock}_to_{key}"] = hit[clock] if hit else None
    return out | {"stopped_at_threshold": stopped, "episodes": rows}


def run_ours(seed: int, max_steps: int, stop: bool) -> dict[str, Any]:
    w0, c0 = time.perf_counter(), time.process_time()
    agent = mb.PETS("Pendulum-v1", seed=seed, eval_episodes=0)
    log = common.episode_recorder(THRESHOLD if stop else None, w0, c0)
    agent.learn(max_steps, callback=log)
    return figures(log.rows, stop)


def run_mbrl(seed: int, max_steps: int, freq_train_model: int, stop: bool) -> dict[str, Any]:
    w0, c0 = time.perf_counter(), time.process_time()
    pets = make_mbrl_pets(350, 35, 5, 20, seed=seed)
    pets.cfg.algorithm.freq_train_model = freq_train_model
    trials = run_mbrl_pets_until(pets, THRESHOLD if stop else math.inf, max_steps)
    # run_mbrl_pets_until stamps wall time only; CPU time is read once at the end
    cpu_end = time.process_time() - c0
    rows = [
        {
            "steps": t["steps"],
            "return": t["return"],
            "wall_s": t["clock"] - w0,
            "cpu_s": cpu_end if k == len(trials) - 1 else None,
        }
        for k, t in enumerate(trials)
    ]
    return figures(rows, stop)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    p.add_argument("--mbrl-seeds", type=int, nargs="*", default=[0])
    p.add_argument("--max-steps", type=int, default=2000)
    p.add_argument("--mbrl-max-steps", type=int, default=1000)
    p.add_argument("--mbrl-freq-train-model", type=int, default=50)
    p.add_argument("--run-on", action="store_true", help="run the whole budget, no stop")
    p.add_argument(
        "--resume", action="store_true", help="skip seeds already stored with these settings"
    )
    args = p.parse_args()
    torch.set_num_threads(1)
    stop = not args.run_on
    ok, why = mbrl_available()
    if not ok and args.mbrl_seeds:
        print(f"mbrl-lib skipped: {why}")
    runs = [("ours", s) for s in args.seeds] + [("mbrl", s) for s in args.mbrl_seeds if ok]
    rows = []
    keys = ["max_steps", "mbrl_max_steps", "mbrl_freq_train_model", "run_on"]
    for contender, seed in runs:
        if common.skip_stored(NAME, seed, args, keys, contender=contender):
            continue
        record = common.start_record(args, seeds=[seed], contender=contender)
        if contender == "ours":
            r = run_ours(seed, args.max_steps, stop)
        else:
            r = run_mbrl(seed, args.mbrl_max_steps, args.mbrl_freq_train_model, stop)
        common.append_record(NAME, record, {"contender": contender, "run": r})
        returns = [round(e["return"], 1) for e in r["episodes"]]
        print(
            f"{contender} seed {seed}: first at {r['first_crossing']} steps, "
            f"{r['wall_s_to_first_crossing']} s wall; returns {returns}",
            flush=True,
        )
        rows.append(
            [
                contender,
                seed,
                r["first_crossing"],
                r["wall_s_to_first_crossing"],
                r["cpu_s_to_first_crossing"],
                r["steps_to_threshold_and_stay"],
                r["wall_s_to_steps_to_threshold_and_stay"],
            ]
        )
    common.print_table(
        ["contender", "seed", "first steps", "wall s", "cpu s", "stay steps", "stay wall s"],
        rows,
        f"Pendulum-v1: start to the first planned episode >= {THRESHOLD:g} (this invocation; "
        "`benchmarks/report.py` summarizes every record)",
    )
    if rows:
        print(f"appended {len(rows)} record(s) to results/{NAME}.json")


if __name__ == "__main__":
    main()
