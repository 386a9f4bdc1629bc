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
mbrl-lib's own ``pets.py`` logging) its return is the evaluation: the clock stops at the end of
the first planned episode returning >= -200. The clock includes building the agent, every model
fit and every planned step.

Run:  .bench/bin/python benchmarks/pets_wallclock.py [--seeds 0 1 2] [--mbrl-seeds 0 1 2] [--merge]
-> results/pets_wallclock.json
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import _common as common
import torch
from _mbrl_peer import make_mbrl_pets, mbrl_available, run_mbrl_pets_until

import modelbased as mb

THRESHOLD = -200.0
RESULTS_JSON = common.RESULTS / "pets_wallclock.json"


def hit(rows: list[dict[str, float]]) -> dict[str, Any]:
    first = next((r for r in rows if r["return"] >= THRESHOLD), None)
    keys = ("steps", "wall_s", "cpu_s")
    return {k: first[k] if first else None for k in keys} | {"episodes": rows}


def run_ours(seed: int, max_steps: int) -> dict[str, Any]:
    w0, c0 = time.perf_counter(), time.process_time()
    agent = mb.PETS("Pendulum-v1", seed=seed, eval_episodes=0)
    log = common.stop_at_return(THRESHOLD, w0, c0)
    agent.learn(max_steps, callback=log)
    return hit(log.rows)


def run_mbrl(seed: int, max_steps: int, freq_train_model: int) -> dict[str, Any]:
    w0, c0 = time.perf_counter(), time.process_time()
    pets = make_mbrl_pets(350, 35, 5, 20, seed=seed)
    pets.cfg.algorithm.freq_train_model = freq_train_model
    trials = run_mbrl_pets_until(pets, THRESHOLD, max_steps)
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
    return hit(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    p.add_argument("--mbrl-seeds", type=int, nargs="*", default=[0])
    p.add_argument("--max-steps", type=int, default=2000)
    p.add_argument("--mbrl-max-steps", type=int, default=1000)
    p.add_argument("--mbrl-freq-train-model", type=int, default=50)
    p.add_argument(
        "--merge",
        action="store_true",
        help="keep the seeds of the saved JSON that this run does not repeat",
    )
    args = p.parse_args()
    torch.set_num_threads(1)
    ours: dict[int, dict[str, Any]] = {}
    for s in args.seeds:
        ours[s] = run_ours(s, args.max_steps)
        finished(args, "ours", s, ours, {})
    ok, why = mbrl_available()
    mbrl: dict[int, dict[str, Any]] = {}
    if not ok:
        print(f"mbrl-lib skipped: {why}")
    for s in args.mbrl_seeds if ok else []:
        mbrl[s] = run_mbrl(s, args.mbrl_max_steps, args.mbrl_freq_train_model)
        finished(args, "mbrl", s, ours, mbrl)


def finished(args: argparse.Namespace, name: str, seed: int, ours: dict, mbrl: dict) -> None:
    """Announce a finished seed, then report and save everything so far (a stopped run keeps
    what it measured)."""
    r = (ours if name == "ours" else mbrl)[seed]
    print(
        f"{name} seed {seed}: {r['steps']} steps, {r['wall_s']} s wall, "
        f"returns {[round(e['return'], 1) for e in r['episodes']]}",
        flush=True,
    )
    report(args, ours, mbrl)


def report(args: argparse.Namespace, ours: dict[int, Any], mbrl: dict[int, Any]) -> None:
    """Print the table and save the JSON."""
    if args.merge:  # seeds run earlier that this run did not repeat
        old = common.load_results(RESULTS_JSON)
        ours = {int(k): v for k, v in old.get("ours", {}).items()} | ours
        mbrl = {int(k): v for k, v in old.get("mbrl", {}).items()} | mbrl
    rows = []
    for name, runs in (("ours (iCEM 100x10 particles)", ours), ("mbrl-lib (CEM 350x20)", mbrl)):
        for s, r in sorted(runs.items()):
            rows.append([name, s, r["steps"], r["wall_s"], r["cpu_s"]])
    med = {
        f"{k}_{t}": common.median_or_none([r[f"{t}_s"] for r in v.values()])
        for k, v in (("ours", ours), ("mbrl", mbrl))
        for t in ("wall", "cpu")
    }
    ratio = {
        t: med[f"mbrl_{t}"] / med[f"ours_{t}"] if med[f"ours_{t}"] and med[f"mbrl_{t}"] else None
        for t in ("wall", "cpu")
    }
    for t in ("wall", "cpu"):
        rows.append(
            [f"median {t} s", "", "", f"ours {med[f'ours_{t}']}", f"mbrl {med[f'mbrl_{t}']}"]
        )
    common.print_table(
        ["contender", "seed", "real steps", "wall s", "cpu s"],
        rows,
        f"Pendulum-v1: start to the first planned episode >= {THRESHOLD:g}",
    )
    print(f"mbrl / ours (medians over seeds): wall {ratio['wall']}, CPU {ratio['cpu']}")
    if mbrl and not any(r["steps"] for r in mbrl.values()):
        print(f"mbrl-lib did not reach {THRESHOLD:g} within {args.mbrl_max_steps} steps")
    print(
        common.save_json(
            "pets_wallclock",
            {"args": vars(args), "ours": ours, "mbrl": mbrl, "medians_s": med, "ratio": ratio},
        )
    )


if __name__ == "__main__":
    main()
