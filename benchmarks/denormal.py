"""Training with subnormal floats flushed to zero (``core.device.flush_denormal``, on in every
``Agent.learn``) against exact subnormal arithmetic, at each agent's default preset, in one process.

Per agent (``--agents``; default ``muzero sac``), one seed:

1. *End to end*: the preset trained for ``--steps`` env steps (no evaluations), once with the
   old behaviour (``learn`` without the flush, patched here) and once as shipped; CPU seconds
   per env step of each, and the count of subnormal values left in the network parameters and
   the optimizer's moments at the end of the exact run.
2. *Per update*, MuZero only (the agent with a public one-batch ``train_step``): from the exact
   run's final state, copies updated in alternating blocks of ``--block`` gradient steps,
   ``--repeats`` times, exact then flushed; medians of CPU ms per update.

One JSON record per invocation is appended to ``results/denormal.json``.

    PYTHONPATH=. python benchmarks/denormal.py [--agents muzero sac] [--steps 2500]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time
from typing import Any

import _common as common
import torch

import modelbased as mb
from modelbased.core import agent as agent_module
from modelbased.core.device import flush_denormal
from modelbased.models.optim import FusedAdam

PRESETS = {"muzero": ("MuZero", "CartPole-v1"), "sac": ("SAC", "Pendulum-v1")}


def subnormals(agent: Any) -> dict[str, int]:
    """Subnormal float32 values (0 < |x| < 1.18e-38) in the parameters and optimizer moments
    of ``agent``'s networks: every ``torch.nn.Module``, ``torch.optim.Optimizer`` and
    ``FusedAdam`` among its attributes and those of its own (modelbased) parts."""
    tiny = torch.finfo(torch.float32).tiny

    def count(tensors: Any) -> int:
        return sum(
            int(((t.abs() < tiny) & (t != 0)).sum())
            for t in tensors
            if torch.is_tensor(t) and t.is_floating_point()
        )

    found: dict[int, Any] = {}

    def walk(obj: Any, depth: int) -> None:
        for value in vars(obj).values():
            if isinstance(value, (torch.nn.Module, torch.optim.Optimizer, FusedAdam)):
                found[id(value)] = value
            elif depth and type(value).__module__.startswith("modelbased") and vars(value):
                walk(value, depth - 1)

    walk(agent, 2)
    params = moments = 0
    for value in found.values():
        if isinstance(value, torch.nn.Module):
            params += count(value.parameters())
        elif isinstance(value, torch.optim.Optimizer):
            moments += count(v for s in value.state.values() for v in s.values())
        elif value.kernel:
            moments += count([*value.exp_avg, *value.exp_avg_sq])
        else:
            moments += count(v for s in value._adam.state.values() for v in s.values())
    return {"params": params, "optimizer_moments": moments}


def train(name: str, seed: int, steps: int, flush: bool) -> tuple[Any, float]:
    """The preset of ``name`` trained ``steps`` env steps; learning CPU seconds per env step."""
    cls, env = PRESETS[name]
    agent = getattr(mb, cls)(env, seed=seed, eval_episodes=0)
    saved = agent_module.flush_denormal
    agent_module.flush_denormal = saved if flush else contextlib.nullcontext
    try:
        cpu = time.process_time()
        agent.learn(steps)
        return agent, (time.process_time() - cpu) / steps
    finally:
        agent_module.flush_denormal = saved


def per_update(agent: Any, block: int, repeats: int) -> dict[str, float]:
    """Median CPU ms per MuZero update of copies of ``agent``, exact and flushed, alternating."""
    sides = {"exact": copy.deepcopy(agent), "flushed": copy.deepcopy(agent)}
    times: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(repeats):
        for key, copy_ in sides.items():
            ctx = flush_denormal() if key == "flushed" else contextlib.nullcontext()
            with ctx:
                cpu = time.process_time()
                for _ in range(block):
                    copy_.train_step()
                times[key].append(1000 * (time.process_time() - cpu) / block)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {f"{k}_cpu_ms": v for k, v in med.items()} | {
        "ratio": med["exact"] / med["flushed"],
        "blocks": times,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--agents", nargs="+", default=["muzero", "sac"], choices=sorted(PRESETS))
    p.add_argument("--steps", type=int, default=2500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--block", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    record = common.start_record(args, seeds=[args.seed])
    figures: dict[str, Any] = {}
    rows = []
    for name in args.agents:
        exact, exact_cpu = train(name, args.seed, args.steps, flush=False)
        flushed, flushed_cpu = train(name, args.seed, args.steps, flush=True)
        fig: dict[str, Any] = {
            "env": PRESETS[name][1],
            "exact_cpu_s_per_step": exact_cpu,
            "flushed_cpu_s_per_step": flushed_cpu,
            "ratio": exact_cpu / flushed_cpu,
            "subnormals_exact": subnormals(exact),
            "subnormals_flushed": subnormals(flushed),
        }
        if name == "muzero":
            fig["per_update"] = per_update(exact, args.block, args.repeats)
        figures[name] = fig
        rows.append(
            [
                f"{name} {fig['env']}",
                1000 * exact_cpu,
                1000 * flushed_cpu,
                fig["ratio"],
                fig["subnormals_exact"]["params"] + fig["subnormals_exact"]["optimizer_moments"],
            ]
        )
    common.print_table(
        ["agent", "exact CPU ms/step", "flushed CPU ms/step", "ratio", "subnormals (exact)"],
        rows,
        f"{args.steps} env steps, seed {args.seed}, 1 torch thread",
    )
    if "muzero" in figures:
        u = figures["muzero"]["per_update"]
        print(
            f"MuZero per update: exact {u['exact_cpu_ms']:.1f} ms, flushed "
            f"{u['flushed_cpu_ms']:.1f} ms ({u['ratio']:.2f}x)"
        )
    path = common.append_record("denormal", record, figures)
    print(f"record appended to {path}")


if __name__ == "__main__":
    main()
