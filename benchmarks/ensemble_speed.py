"""Speed of the batched dynamics ensemble (PETS/MBPO models) against a loop of separate models,
the machine's batched-matmul rate, and mbrl-lib 0.2.0 — all in one process.

Measures, at torch ``--threads`` (1 by default, the same for every contender):

1. forward of a 7-member 4x200 SiLU ensemble (Gaussian heads: mean and log-variance for
   3 obs + 1 reward) at 1, 8, 64 and 5000 rows per member: ours (one ``baddbmm`` per layer),
   a Python loop over 7 ``nn.Sequential`` models, and mbrl-lib's ``GaussianMLP``;
2. the FLOP rate of one large ``torch.bmm`` doing the same total work as the 7 x 5000 forward,
   and ours as a fraction of it (target >= 80%);
3. one training epoch on 10k random Pendulum-v1 transitions, batch 256 per member, 20% holdout
   evaluated each epoch: ours (``EnsembleModel.fit``) vs mbrl-lib (``ModelTrainer``); target
   ours >= 1.5x faster.

Medians over repeats, wall and CPU (process) time. Each invocation appends one record (with its
thread count) to ``results/ensemble_speed.json``. mbrl-lib runs only in the benchmark venv:
    .bench/bin/python benchmarks/ensemble_speed.py       (about 2 minutes)
Without mbrl-lib the peer columns say why it is missing.
"""

from __future__ import annotations

import argparse
import statistics
import time

import _mbrl_peer as peer
import gymnasium as gym
import numpy as np
import torch
from _common import append_record, print_table, start_record, timed
from torch import nn

from modelbased.models import EnsembleConfig, EnsembleModel

E, HIDDEN, LAYERS, OBS, ACT = 7, 200, 4, 3, 1
IN, OUT = OBS + ACT, 2 * (OBS + 1)


def forward_flops(rows: int) -> float:
    sizes = [IN] + [HIDDEN] * LAYERS + [OUT]
    return 2.0 * E * rows * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def loop_models() -> list[nn.Sequential]:
    def one() -> nn.Sequential:
        dims = [IN] + [HIDDEN] * LAYERS
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(a, b), nn.SiLU()]
        return nn.Sequential(*layers, nn.Linear(HIDDEN, OUT))

    return [one() for _ in range(E)]


def bench_forward(rows_list: list[int], repeats: int) -> list[dict]:
    ours = EnsembleModel(OBS, ACT, EnsembleConfig(), seed=0)
    loop = loop_models()
    ok, why = peer.mbrl_available()
    mbrl_model = peer.make_mbrl_ensemble(OBS, ACT, E, HIDDEN, LAYERS) if ok else None
    out = []
    for rows in rows_list:
        reps = repeats if rows < 1000 else max(3, repeats // 20)
        x = torch.randn(E, rows, IN)
        with torch.inference_mode():
            w_ours, c_ours = timed(lambda x=x: ours.net(x), reps)
            w_loop, c_loop = timed(lambda x=x: [m(x[i]) for i, m in enumerate(loop)], reps)
        row = {
            "rows_per_member": rows,
            "ours_ms": 1e3 * w_ours,
            "ours_cpu_ms": 1e3 * c_ours,
            "loop_ms": 1e3 * w_loop,
            "loop_cpu_ms": 1e3 * c_loop,
            "ours_gflops": forward_flops(rows) / w_ours / 1e9,
            "speedup_vs_loop_wall": w_loop / w_ours,
            "speedup_vs_loop_cpu": c_loop / c_ours,
        }
        if mbrl_model is not None:
            w = statistics.median(peer.time_mbrl_forward(mbrl_model, rows, reps))
            c = statistics.median(
                peer.time_mbrl_forward(mbrl_model, rows, reps, clock=time.process_time)
            )
            row |= {"mbrl_ms": 1e3 * w, "mbrl_cpu_ms": 1e3 * c, "speedup_vs_mbrl_cpu": c / c_ours}
        else:
            row["mbrl"] = f"not installed: {why}"
        out.append(row)
    return out


def bench_matmul_reference(rows: int, repeats: int) -> dict:
    """One bmm ``[E, rows, K] x [E, K, K]`` with K chosen so its FLOPs equal the forward's."""
    k = round((forward_flops(rows) / (2.0 * E * rows)) ** 0.5)
    a, b = torch.randn(E, rows, k), torch.randn(E, k, k)
    wall, cpu = timed(lambda: torch.bmm(a, b), repeats)
    flops = 2.0 * E * rows * k * k
    return {
        "K": k,
        "ms": 1e3 * wall,
        "gflops_wall": flops / wall / 1e9,
        "gflops_cpu": flops / cpu / 1e9,
    }


def pendulum_data(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    env = gym.make("Pendulum-v1")
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    rows: dict[str, list] = {k: [] for k in ("obs", "action", "reward", "next_obs")}
    for _ in range(n):
        action = env.action_space.sample()
        next_obs, reward, term, trunc, _ = env.step(action)
        for key, value in zip(rows, (obs, action, reward, next_obs), strict=True):
            rows[key].append(value)
        obs = env.reset()[0] if term or trunc else next_obs
    return {k: np.asarray(v, dtype=np.float32) for k, v in rows.items()}


def time_our_epochs(data: dict[str, np.ndarray], epochs: int, clock=time.perf_counter) -> list:
    cfg = EnsembleConfig(
        batch_size=256, holdout_fraction=0.2, patience=10**6, max_epochs=epochs + 1
    )
    model = EnsembleModel(OBS, ACT, cfg, seed=0)
    batch = dict(data, terminated=np.zeros(len(data["obs"]), dtype=bool))
    stamps: list[float] = []
    model.fit(batch, rng=np.random.default_rng(0), callback=lambda *a: stamps.append(clock()))
    return [b - a for a, b in zip(stamps[:-1], stamps[1:], strict=True)]


def bench_epoch(n: int, epochs: int) -> dict:
    data = pendulum_data(n)
    out = {"transitions": n}
    ours_wall = time_our_epochs(data, epochs)
    ours_cpu = time_our_epochs(data, epochs, clock=time.process_time)
    out |= {"ours_s": statistics.median(ours_wall), "ours_cpu_s": statistics.median(ours_cpu)}
    ok, why = peer.mbrl_available()
    if not ok:
        return out | {"mbrl": f"not installed: {why}"}
    args = (data["obs"], data["action"], data["reward"], data["next_obs"])
    mbrl_wall = peer.time_mbrl_train_epoch(*args, batch_size=256, epochs=epochs)
    mbrl_cpu = peer.time_mbrl_train_epoch(
        *args, batch_size=256, epochs=epochs, clock=time.process_time
    )
    out |= {"mbrl_s": statistics.median(mbrl_wall), "mbrl_cpu_s": statistics.median(mbrl_cpu)}
    out["speedup_wall"] = out["mbrl_s"] / out["ours_s"]
    out["speedup_cpu"] = out["mbrl_cpu_s"] / out["ours_cpu_s"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=100)
    p.add_argument("--epochs", type=int, default=5, help="timed training epochs per contender")
    p.add_argument("--transitions", type=int, default=10_000)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    record = start_record(args, seeds=[0])

    fwd = bench_forward([1, 8, 64, 5000], args.repeats)
    print_table(
        [
            "rows/member",
            "ours ms",
            "loop ms",
            "mbrl ms",
            "ours GFLOP/s",
            "vs loop (wall)",
            "vs loop (cpu)",
            "vs mbrl (cpu)",
        ],
        [
            [
                r["rows_per_member"],
                r["ours_ms"],
                r["loop_ms"],
                r.get("mbrl_ms"),
                r["ours_gflops"],
                r["speedup_vs_loop_wall"],
                r["speedup_vs_loop_cpu"],
                r.get("speedup_vs_mbrl_cpu"),
            ]
            for r in fwd
        ],
        f"Forward, {E}-member {LAYERS}x{HIDDEN} ensemble, {args.threads} thread(s), medians",
    )
    ref = bench_matmul_reference(5000, max(5, args.repeats // 10))
    big = fwd[-1]
    frac = big["ours_gflops"] / ref["gflops_wall"]
    print_table(
        [
            "one bmm [7,5000,K]x[7,K,K]",
            "K",
            "ms",
            "GFLOP/s",
            "ours at 7x5000 GFLOP/s",
            "ours / bmm",
        ],
        [
            [
                "same FLOPs as the forward",
                ref["K"],
                ref["ms"],
                ref["gflops_wall"],
                big["ours_gflops"],
                frac,
            ]
        ],
        "Compute-bound regime against the machine's batched-matmul rate (target >= 0.8)",
    )
    epoch = bench_epoch(args.transitions, args.epochs)
    print_table(
        [
            "transitions",
            "ours s/epoch",
            "mbrl s/epoch",
            "speedup (wall)",
            "ours cpu s",
            "mbrl cpu s",
            "speedup (cpu)",
        ],
        [
            [
                epoch["transitions"],
                epoch["ours_s"],
                epoch.get("mbrl_s"),
                epoch.get("speedup_wall"),
                epoch["ours_cpu_s"],
                epoch.get("mbrl_cpu_s"),
                epoch.get("speedup_cpu"),
            ]
        ],
        "One training epoch, batch 256/member, 20% holdout evaluated (target >= 1.5x)",
    )
    if "mbrl" in epoch:
        print(f"mbrl-lib: {epoch['mbrl']}")
    path = append_record(
        "ensemble_speed",
        record,
        {
            "forward": fwd,
            "matmul_reference": ref,
            "forward_fraction_of_bmm": frac,
            "epoch": epoch,
        },
    )
    print(f"\nappended a record to {path}")


if __name__ == "__main__":
    main()
