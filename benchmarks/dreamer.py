"""Dreamer (V1-V3) and PlaNet on CPU: eval returns against env steps and CPU seconds, the
versions side by side, and the seconds per update -- torch pinned to 1 thread.

Parts (``--part``; default ``pendulum``), each run evaluated every ``--eval-every`` env steps on
10 deterministic episodes, thresholds counted by reach-and-stay (``benchmarks/_stats.py``):

* ``pendulum``: Dreamer (V3 preset) on Pendulum-v1 from states, 20k env steps, target -200.
* ``cartpole``: Dreamer (V3 preset) on CartPole-v1 from states, 50k env steps, target 475.
* ``pixel-pendulum``: Dreamer and PlaNet on modelbased/PixelPendulum-v0 (64x64 RGB), 50k env
  steps, target -400; an open-loop prediction grid per run in ``results/``.
* ``planet-swingup``: PlaNet on modelbased/CartPoleSwingUp-v0 from states, 4k env steps (20
  episodes), target 150.
* ``versions``: Dreamer ``version=1``, ``2``, ``3`` on Pendulum-v1 with the same preset sizes:
  the return at 20k env steps.
* ``speed``: seconds (wall and CPU) per update at size ``xs`` (deter 256, hidden 256, 32x32
  latents, batch 16 x 64, H 15, all B*T imagination starts): world model, imagination +
  actor-critic, medians of ``--repeats``.

Each run also stores its learning CPU seconds, the agent's phase times and the last train row
(reconstruction, KL, reward error). One record per part, algorithm and seed is appended to
results/dreamer.json; ``--resume`` skips the ones stored with the same arguments.

Run:  python benchmarks/dreamer.py --part pendulum --seeds 0
quick: --seeds 0 --steps 3000 --eval-every 1000
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import _common as common
import numpy as np
import torch

import modelbased as mb

NAME = "dreamer"
EVAL_EPISODES = 10
# part -> (env id, default env steps, threshold, [(label, algo, overrides)])
PARTS: dict[str, tuple[str, int, float, list[tuple[str, str, dict[str, Any]]]]] = {
    "pendulum": ("Pendulum-v1", 20_000, -200.0, [("dreamer-v3", "dreamer", {})]),
    "cartpole": ("CartPole-v1", 50_000, 475.0, [("dreamer-v3", "dreamer", {})]),
    "pixel-pendulum": (
        "modelbased/PixelPendulum-v0",
        50_000,
        -400.0,
        [("dreamer-v3", "dreamer", {}), ("planet", "planet", {})],
    ),
    "planet-swingup": (
        "modelbased/CartPoleSwingUp-v0",
        4_000,
        150.0,
        [("planet", "planet", {})],
    ),
    "versions": (
        "Pendulum-v1",
        20_000,
        -200.0,
        [(f"dreamer-v{v}", "dreamer", {"version": v}) for v in (1, 2, 3)],
    ),
}
ARG_KEYS = ("steps", "eval_every")


def run(
    algo: str,
    env: str,
    steps: int,
    threshold: float,
    seed: int,
    args: argparse.Namespace,
    **overrides: Any,
) -> dict[str, Any]:
    """One training run: the eval curve's figures, phase times, the last train row."""
    agent = mb.agent_class(algo)(
        env,
        seed=seed,
        device="cpu",
        eval_every=args.eval_every,
        eval_episodes=EVAL_EPISODES,
        **overrides,
    )
    tracker = common.eval_tracker(threshold)
    agent.learn(steps, callback=tracker)
    rows = tracker.rows
    phases = {}
    for key in ("train", "eval"):
        for kind in ("s", "cpu_s"):
            phases[f"{key}_{kind}"] = sum(r.get(f"time/{key}_{kind}", 0.0) for r in rows)
    out = tracker.curve.result() | {
        "phases": phases,
        "updates": getattr(agent, "updates", None),
        "last_train_row": rows[-1] if rows else None,
        "train_rows": rows,
        "overrides": overrides,
        "config": agent.config.to_dict(),
    }
    if hasattr(agent, "open_loop_grid") and getattr(agent.model, "image", False):
        path = common.RESULTS / f"{NAME}-{algo}-{env.split('/')[-1]}-seed{seed}-openloop.png"
        agent.open_loop_grid(path)
        out["open_loop_png"] = str(path.relative_to(common.REPO))
    return out


def part_learning(args: argparse.Namespace, part: str) -> None:
    env, default_steps, threshold, contenders = PARTS[part]
    steps = args.steps or default_steps
    args.steps = steps
    for seed in args.seeds:
        for label, algo, overrides in contenders:
            if common.skip_stored(NAME, seed, args, ARG_KEYS, part=part, label=label):
                continue
            record = common.start_record(args, seeds=[seed], part=part, label=label)
            print(f"{part} {label} seed {seed}: {env}, {steps} env steps", flush=True)
            result = run(algo, env, steps, threshold, seed, args, **overrides)
            print(
                f"  -> stays >= {threshold} from {result['steps_to_threshold_and_stay']}, first "
                f"{result['first_crossing']}, final {result['final_return']}, learning CPU s "
                f"{result['total_learn_cpu_s']:.0f}",
                flush=True,
            )
            figures = {"env": env, "threshold": threshold, "algo": algo, label: result}
            common.append_record(NAME, record, figures)
    args.steps = None


def compiled_imagination(agent: Any) -> None:
    """Switch the agent's imagination step to its ``torch.compile``d form (what
    ``behavior.compile=true`` builds): what ``speed`` compares with the eager loop."""
    agent.behavior.step = torch.compile(agent.behavior.imagine_step, dynamic=False)


def part_speed(args: argparse.Namespace) -> None:
    """Seconds per update at size xs, world model and behaviour timed apart, and the behaviour
    update again with the imagination step compiled by ``torch.compile``."""
    from modelbased.models.rssm_world_model import to_tensors

    record = common.start_record(args, seeds=[0], part="speed")
    agent = mb.Dreamer(
        "Pendulum-v1",
        {"size": "xs", "learning_starts": 100, "eval_episodes": 0},
        seed=0,
        device="cpu",
    )
    # the xs sizes, not Pendulum's preset: deter 256, hidden 256, 32x32 latents, all starts
    agent = mb.Dreamer(
        "Pendulum-v1",
        agent.config.replace(
            **{"model.deter": 256, "model.hidden": 256, "model.stoch": 32, "model.classes": 32},
            **{"behavior.imagine_starts": 0},
        ),
        seed=0,
        device="cpu",
    )
    agent.learn(110)  # a replay to draw from, a few updates behind the model
    cfg = agent.config
    phases = ("world_model", "behavior", "behavior_compiled")
    times: dict[str, list[float]] = {k: [] for k in phases}
    cpu: dict[str, list[float]] = {k: [] for k in phases}

    def clock(name: str, fn: Any) -> Any:
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        times[name].append(time.perf_counter() - w)
        cpu[name].append(time.process_time() - c)
        return out

    def world_model() -> Any:
        batch = to_tensors(agent.replay.sample(cfg.batch_size, cfg.seq_len, agent.rng), agent.model)
        noise = agent.model.rssm.noise((cfg.seq_len, cfg.batch_size), agent.gen, agent.device)
        loss, post, _ = agent.model.loss(batch, noise)
        agent.model_opt.zero_grad()
        loss.backward()
        agent.model_opt.step()
        return post, batch

    for _ in range(args.repeats):
        post, batch = clock("world_model", world_model)
        clock("behavior", lambda p=post, b=batch: agent.learn_behavior(p, b))
    compiled_imagination(agent)
    w0, c0 = time.perf_counter(), time.process_time()
    agent.learn_behavior(post, batch)  # compiles
    compile_wall, compile_cpu = time.perf_counter() - w0, time.process_time() - c0
    for _ in range(args.repeats):
        clock("behavior_compiled", lambda: agent.learn_behavior(post, batch))
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    figures = {
        "size": "xs",
        "deter": agent.model.rssm.config.deter,
        "hidden": cfg.model.dims(cfg.size)[1],
        "stoch": f"{cfg.model.stoch}x{cfg.model.classes}",
        "batch": [cfg.batch_size, cfg.seq_len],
        "horizon": cfg.behavior.horizon,
        "imagine_starts": cfg.batch_size * cfg.seq_len,
        "wall_s": med,
        "cpu_s": med_cpu,
        "update_wall_s": med["world_model"] + med["behavior"],
        "update_cpu_s": med_cpu["world_model"] + med_cpu["behavior"],
        "compiled_over_eager_cpu": med_cpu["behavior_compiled"] / med_cpu["behavior"],
        "compile_first_call": {"wall_s": compile_wall, "cpu_s": compile_cpu},
        "all_wall": times,
        "all_cpu": cpu,
    }
    common.print_table(
        ["phase", "wall s", "CPU s"],
        [[k, med[k], med_cpu[k]] for k in phases],
        "Dreamer V3 xs: seconds per update (B 16 x T 64, H 15, 1024 starts)",
    )
    common.append_record(NAME, record, figures)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--part", nargs="+", default=["pendulum"], choices=[*PARTS, "speed"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--steps", type=int, default=None, help="env steps per run (default: the part's)"
    )
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=5, help="part speed: timed updates")
    p.add_argument("--resume", action="store_true", help="skip seeds already stored")
    args = p.parse_args()
    torch.set_num_threads(1)
    np.set_printoptions(precision=3)
    for part in args.part:
        if part == "speed":
            part_speed(args)
        else:
            part_learning(args, part)
    print(f"\nrecords in {common.RESULTS / NAME}.json")


if __name__ == "__main__":
    main()
