"""SAC updates/s with FusedAdam's private kernel path vs its public fallback, in one process.

``modelbased.models.optim.FusedAdam`` calls ``torch._fused_adam_`` directly where a feature test
says it works, else wraps ``torch.optim.Adam(fused=True)``. The private path is kept only if it
wins here: :class:`~modelbased.models.actor_critic.SACUpdate` (256x256 actor and twin critics,
Hopper's sizes by default: obs 11, action 3) updating on a fixed random batch of 256, torch
pinned to 1 thread. The two sides alternate in blocks of ``--block`` updates, ``--repeats``
times (the side going first alternates too); the figures are medians over blocks. Then each
optimizer's ``step`` alone, timed the same way (microseconds per call, blocks of 200 calls), shows
what the private path saves per call. One JSON record per invocation is appended to
``results/fused_adam.json``.

    PYTHONPATH=. python benchmarks/fused_adam.py [--repeats 15] [--block 200]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import _common as common
import torch

import modelbased
from modelbased.models.actor_critic import SACUpdate
from modelbased.models.optim import FusedAdam


def sac_update(obs_dim: int, action_dim: int, kernel: bool) -> SACUpdate:
    """A seeded :class:`SACUpdate` whose three optimizers take the given FusedAdam path."""
    sac = SACUpdate(obs_dim, action_dim, seed=0)
    lr = sac.config.learning_rate
    sac.actor_optimizer = FusedAdam(sac.actor.parameters(), lr, kernel=kernel)
    sac.critic_optimizer = FusedAdam(sac.critic.parameters(), lr, kernel=kernel)
    sac.alpha_optimizer = FusedAdam([sac.log_alpha], lr, kernel=kernel)
    return sac


def step_times(sac: SACUpdate, steps: int) -> dict[str, float]:
    """Microseconds per ``step`` of each of ``sac``'s optimizers alone (mean over ``steps``
    calls), on fixed gradients (the alpha optimizer's passed in, as ``SACUpdate.update`` does)."""
    out = {}
    for name in ("actor_optimizer", "critic_optimizer", "alpha_optimizer"):
        opt = getattr(sac, name)
        grads = [torch.full_like(p, 1e-3) for p in opt.params]
        if name == "alpha_optimizer":
            call = functools.partial(opt.step, grads)
        else:
            for p, g in zip(opt.params, grads, strict=True):
                p.grad = g
            call = opt.step
        t0 = time.perf_counter()
        for _ in range(steps):
            call()
        out[name] = (time.perf_counter() - t0) / steps * 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed blocks per side")
    parser.add_argument("--block", type=int, default=200, help="updates per timed block")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--obs-dim", type=int, default=11)
    parser.add_argument("--action-dim", type=int, default=3)
    args = parser.parse_args()
    common.setup_torch_threads()
    record = common.start_record(args, seeds=[0], modelbased=modelbased.__file__)

    g = torch.Generator().manual_seed(0)
    batch = (
        torch.randn(args.batch, args.obs_dim, generator=g),
        torch.rand(args.batch, args.action_dim, generator=g) * 2 - 1,
        torch.randn(args.batch, generator=g),
        torch.randn(args.batch, args.obs_dim, generator=g),
        torch.rand(args.batch, generator=g) < 0.05,
    )
    sides = {
        "kernel": sac_update(args.obs_dim, args.action_dim, kernel=True),
        "fallback": sac_update(args.obs_dim, args.action_dim, kernel=False),
    }
    wall: dict[str, list[float]] = {k: [] for k in sides}
    cpu: dict[str, list[float]] = {k: [] for k in sides}

    def run(sac: SACUpdate, n: int) -> None:
        for _ in range(n):
            sac.update(*batch)

    for sac in sides.values():
        run(sac, 20)  # warm-up
    for r in range(args.repeats):
        for name in sides if r % 2 == 0 else reversed(sides):
            w, c = time.perf_counter(), time.process_time()
            run(sides[name], args.block)
            wall[name].append(args.block / (time.perf_counter() - w))
            cpu[name].append(args.block / (time.process_time() - c))
    med = {
        k: {
            "updates_per_s": statistics.median(wall[k]),
            "updates_per_cpu_s": statistics.median(cpu[k]),
            "all_updates_per_s": wall[k],
            "all_updates_per_cpu_s": cpu[k],
        }
        for k in sides
    }
    ratio = med["kernel"]["updates_per_s"] / med["fallback"]["updates_per_s"]
    ratio_cpu = med["kernel"]["updates_per_cpu_s"] / med["fallback"]["updates_per_cpu_s"]
    step_us: dict[str, list[dict[str, float]]] = {k: [] for k in sides}
    for r in range(args.repeats):  # after the update timings: these leave gradients set
        for name in sides if r % 2 == 0 else reversed(sides):
            step_us[name].append(step_times(sides[name], 200))
    steps = {
        k: {opt: statistics.median(t[opt] for t in v) for opt in v[0]} for k, v in step_us.items()
    }
    paired = [a / b for a, b in zip(wall["kernel"], wall["fallback"], strict=True)]
    figures = {
        "results": med,
        "ratio_kernel_over_fallback": ratio,
        "ratio_kernel_over_fallback_cpu": ratio_cpu,
        "step_us": steps,
        "paired_ratios": paired,
        "median_paired_ratio": statistics.median(paired),
    }
    rows = [[k, v["updates_per_s"], v["updates_per_cpu_s"]] for k, v in med.items()]
    common.print_table(
        ["FusedAdam path", "updates/s", "updates/CPU s"],
        rows,
        f"SACUpdate.update, batch {args.batch}, 256x256, 1 thread, median of "
        f"{args.repeats} blocks of {args.block}",
    )
    print(
        f"kernel/fallback: {ratio:.3f} wall, {ratio_cpu:.3f} CPU, "
        f"{figures['median_paired_ratio']:.3f} median of paired blocks"
    )
    print(
        "optimizer step alone (median us): "
        + ", ".join(f"{k}: " + "/".join(f"{v:.0f}" for v in steps[k].values()) for k in steps)
        + " (actor/critic/alpha)"
    )
    print(f"appended a record to {common.append_record('fused_adam', record, figures)}")


if __name__ == "__main__":
    main()
