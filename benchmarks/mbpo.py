"""SAC and MBPO: our SAC against Stable-Baselines3's, and MBPO's real steps to a target against
SAC's, with the wall time of each real step split into model training, rollouts and SAC
updates -- torch pinned to 1 thread, contenders run in turn in one process.

Parts (``--part``; default ``sac pendulum inverted``; ``hopper`` only when asked):

* ``sac``: Pendulum-v1, ours ``mb.SAC`` vs SB3 ``SAC("MlpPolicy")``, both SB3 defaults but
  ``learning_starts`` (``--learning-starts``, 1000 as shared/PEERS.md), same seeds, 10k steps,
  5 deterministic eval episodes every 500 steps. Reported: the threshold figures below at -200,
  wall/CPU seconds per 1k steps learning (evals excluded), and updates/s of each library's own
  update call at batch 256 on its own filled buffer, timed in alternating blocks after learning
  (median of ``--repeats``).
* ``pendulum``: MBPO (tuned Pendulum preset), 1,500 steps, eval every 100; compared with ours
  and SB3's SAC from the ``sac`` part's records.
* ``inverted``: InvertedPendulum-v5, MBPO (paper preset) for 5,000 steps, eval every 250, and
  our SAC for ``--sac-inverted-steps`` (eval every 1000); threshold 1000.
* ``hopper``: Hopper-v5, MBPO and our SAC for 25k steps each (about 2 h on this CPU per MBPO
  seed; run seeds side by side, one process each: each appends its own records).
* ``rates``: only the update-speed comparison (both buffers filled by ``--rates-steps`` steps).
* ``summary``: print the markdown section that ``benchmarks/report.py`` builds from every
  stored record, and redraw the plot.

No run stops at a threshold: each runs its whole budget, and from the stored curve come the
steps from which every later eval stays >= the threshold (``steps_to_threshold_and_stay``), the
first crossing, the final eval and the mean of the last 5 evals (``benchmarks/_stats.py``). For
every MBPO run the wall and CPU seconds per real step after the random phase are split into
model fitting, rollouts and SAC updates (the agent's own timers). One record per part and seed
(``rates``: per invocation) is appended to results/mbpo.json, so a stopped invocation keeps its
finished seeds; results/mbpo.png draws every stored curve.

Run:  .bench/bin/python benchmarks/mbpo.py               (SB3 is needed only for part sac;
      MuJoCo parts need gymnasium[mujoco] in the interpreter that runs them)
quick: --seeds 0 --steps 1000 --repeats 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import _common as common
import gymnasium as gym
import torch

import modelbased as mb

NAME = "mbpo"
PARTS = {  # env, threshold, MBPO budget, MBPO eval_every
    "pendulum": ("Pendulum-v1", -200.0, 1500, 100),
    "inverted": ("InvertedPendulum-v5", 1000.0, 5000, 250),
    "hopper": ("Hopper-v5", None, 25_000, 1000),
}
PHASES = ("model", "rollout", "sac")


def run_ours(
    cls: type[mb.Agent], env: str, seed: int, steps: int, threshold: float | None, **overrides: Any
) -> tuple[mb.Agent, dict[str, Any]]:
    agent = cls(env, seed=seed, **overrides)
    tracker = common.eval_tracker(threshold)
    agent.learn(steps, callback=tracker)
    return agent, tracker.curve.result() | {"phases": phase_split(tracker.rows)}


def phase_split(rows: list[dict[str, float]]) -> dict[str, float] | None:
    """Seconds per real step of each MBPO phase over all logged intervals after the random
    phase (the agent's phase timer, ``time/<phase>_s``; a step is one call of the SAC phase)."""
    rows = [r for r in rows if "time/sac_calls" in r]
    if not rows:
        return None
    steps = sum(r["time/sac_calls"] for r in rows)
    out = {}
    for phase in PHASES:
        for kind in ("s", "cpu_s"):
            total = sum(r.get(f"time/{phase}_{kind}", 0.0) for r in rows)
            out[f"{phase}_{kind}_per_step"] = total / steps
    out["total_s_per_step"] = sum(out[f"{p}_s_per_step"] for p in PHASES)
    out["total_cpu_s_per_step"] = sum(out[f"{p}_cpu_s_per_step"] for p in PHASES)
    return out


def run_sb3(seed: int, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    eval_env = Monitor(gym.make("Pendulum-v1"))
    eval_env.reset(seed=10_000 + seed)
    model = SAC(
        "MlpPolicy",
        "Pendulum-v1",
        seed=seed,
        learning_starts=args.learning_starts,
        device="cpu",
        verbose=0,
    )
    curve = common.EvalCurve(-200.0)

    class Eval(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % 500 == 0:
                ret = curve.timed_eval(lambda: evaluate_policy(model, eval_env, 5, True)[0])
                curve.add(self.num_timesteps, float(ret))
            return True

    model.learn(args.sac_steps, callback=Eval())
    return model, curve.result()


def update_rates(ours: mb.SAC, sb3: Any, repeats: int, block: int = 200) -> dict[str, Any]:
    """Updates/s (wall and CPU clocks) of each library's update call at batch 256, each on its
    own filled buffer, in alternating blocks; medians over ``repeats``."""
    calls = {
        "ours": lambda: ours.train_policy(block),
        "sb3": lambda: sb3.train(gradient_steps=block, batch_size=256),
    }
    ours.train_policy(20)
    sb3.train(gradient_steps=20, batch_size=256)
    wall: dict[str, list[float]] = {"ours": [], "sb3": []}
    cpu: dict[str, list[float]] = {"ours": [], "sb3": []}
    for _ in range(repeats):
        for name, fn in calls.items():
            w, c = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(block / (time.perf_counter() - w))
            cpu[name].append(block / (time.process_time() - c))
    med = {
        f"{k}_{clock}": statistics.median(v[k])
        for clock, v in (("wall", wall), ("cpu", cpu))
        for k in calls
    }
    return {
        "ours_updates_per_s": med["ours_wall"],
        "sb3_updates_per_s": med["sb3_wall"],
        "ratio": med["ours_wall"] / med["sb3_wall"],
        "ours_updates_per_cpu_s": med["ours_cpu"],
        "sb3_updates_per_cpu_s": med["sb3_cpu"],
        "ratio_cpu": med["ours_cpu"] / med["sb3_cpu"],
        "ours_all": wall["ours"],
        "sb3_all": wall["sb3"],
    }


def part_rates(args: argparse.Namespace) -> None:
    """Only the update-speed comparison, ``--rates-runs`` times: both libraries fill a buffer with
    ``--rates-steps`` steps on Pendulum-v1 (learning_starts 100), then time their update calls;
    the median ratio over runs is the figure (one run's ratio moves by 0.1-0.15 here)."""
    from stable_baselines3 import SAC

    record = common.start_record(args, seeds=[0], part="rates")
    runs = []
    for _ in range(args.rates_runs):
        agent = mb.SAC("Pendulum-v1", seed=0, learning_starts=100, eval_episodes=0, log_every=10**9)
        agent.learn(args.rates_steps)
        sb3 = SAC("MlpPolicy", "Pendulum-v1", seed=0, learning_starts=100, device="cpu")
        sb3.learn(args.rates_steps)
        runs.append(update_rates(agent, sb3, args.repeats))
    median = {
        k: statistics.median(r[k] for r in runs)
        for k, v in runs[0].items()
        if isinstance(v, float | int)
    }
    rows = [
        [i, r["ours_updates_per_s"], r["sb3_updates_per_s"], r["ratio"], r["ratio_cpu"]]
        for i, r in [*enumerate(runs), ("median", median)]
    ]
    common.print_table(
        ["run", "ours upd/s", "SB3 upd/s", "ours/SB3", "ours/SB3 per CPU s"],
        rows,
        f"SAC update at batch 256, 256x256, 1 thread, median of {args.repeats} blocks of 200",
    )
    rates = {"runs": runs, "median": median, "buffer_steps": args.rates_steps}
    common.append_record(NAME, record, {"rates": rates})


def part_sac(args: argparse.Namespace) -> None:
    try:
        import stable_baselines3  # noqa: F401

        why = ""
    except ImportError as exc:
        why = f"stable-baselines3 not installed: {exc}"
        print(f"SB3 column skipped: {why}")
    for seed in args.seeds:
        keys = ["sac_steps", "learning_starts", "repeats"]
        if common.skip_stored(NAME, seed, args, keys, part="sac"):
            continue
        record = common.start_record(args, seeds=[seed], part="sac")
        agent, ours = run_ours(
            mb.SAC,
            "Pendulum-v1",
            seed,
            args.sac_steps,
            -200.0,
            learning_starts=args.learning_starts,
            eval_every=500,
            eval_episodes=5,
            log_every=10**9,
        )
        print(f"ours SAC seed {seed}: {brief(ours)}", flush=True)
        sb3, theirs = run_sb3(seed, args) if not why else (None, {})
        if theirs:
            print(f"SB3 SAC seed {seed}: {brief(theirs)}", flush=True)
        rates = update_rates(agent, sb3, args.repeats) if sb3 is not None else {}
        print(f"updates/s seed {seed}: {rates}", flush=True)
        figures = {"env": "Pendulum-v1", "threshold": -200.0, "ours": ours, "sb3": theirs}
        common.append_record(NAME, record, figures | {"rates": rates, "sb3_skipped": why})


def part_mbpo(name: str, args: argparse.Namespace) -> None:
    env, threshold, budget, eval_every = PARTS[name]
    budget = args.steps or budget
    for seed in args.seeds:
        if common.skip_stored(NAME, seed, args, ["steps", "sac_inverted_steps"], part=name):
            continue
        record = common.start_record(args, seeds=[seed], part=name)
        _, mbpo = run_ours(
            mb.MBPO,
            env,
            seed,
            budget,
            threshold,
            eval_every=eval_every,
            eval_episodes=5,
            log_every=eval_every,
        )
        print(f"MBPO {env} seed {seed}: {brief(mbpo)}", flush=True)
        figures: dict[str, Any] = {"env": env, "threshold": threshold, "mbpo": mbpo}
        if name == "hopper" or (name == "inverted" and args.sac_inverted_steps):
            sac_steps = budget if name == "hopper" else args.sac_inverted_steps
            _, sac = run_ours(
                mb.SAC,
                env,
                seed,
                args.steps or sac_steps,
                threshold,
                eval_every=1000,
                eval_episodes=5,
            )
            print(f"SAC {env} seed {seed}: {brief(sac)}", flush=True)
            figures["sac"] = sac
        common.append_record(NAME, record, figures)


def brief(run: dict[str, Any]) -> str:
    return (
        f"reaches and stays >= {run['threshold']} from {run['steps_to_threshold_and_stay']}, "
        f"first at {run['first_crossing']}, final {run['final_return']}, last-5 mean "
        f"{run['last5_mean']}, evals {[round(p['return']) for p in run['curve']]}"
    )


def plot(records: list[dict[str, Any]]) -> None:
    """Every stored curve, one panel per part."""
    from _report_mbpo import runs_by_part

    parts = runs_by_part(records)
    panels = [k for k in ("sac", "pendulum", "inverted", "hopper") if parts.get(k)]
    if not panels:
        return
    fig, axes = common.pyplot().subplots(1, len(panels), figsize=(5 * len(panels), 4))
    axes = [axes] if len(panels) == 1 else axes
    for ax, name in zip(axes, panels, strict=True):
        runs = parts[name]
        if name == "sac":
            series = {"ours SAC": "ours", "SB3 SAC": "sb3"}
            ax.set_title("Pendulum-v1: SAC, ours vs SB3")
        else:
            series = {"MBPO": "mbpo", "SAC (ours)": "sac"}
            ax.set_title(f"{runs[0]['env']}: MBPO vs SAC")
        if name == "pendulum":
            runs = runs + [{"sac": r["ours"]} for r in parts.get("sac", [])]
        if runs[0]["threshold"] is not None:
            ax.axhline(runs[0]["threshold"], color="gray", ls="--", lw=0.8)
        for (label, key), color in zip(series.items(), ("tab:blue", "tab:orange"), strict=True):
            curves = [r[key]["curve"] for r in runs if r.get(key) and r[key].get("curve")]
            for k, curve in enumerate(curves):
                xs = [p["steps"] for p in curve]
                ys = [p["return"] for p in curve]
                ax.plot(xs, ys, "o-", ms=2, color=color, alpha=0.6, label=label if not k else None)
        ax.set(xlabel="real env steps", ylabel="eval return (5 episodes)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(common.RESULTS / f"{NAME}.png", dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--part",
        nargs="+",
        default=["sac", "pendulum", "inverted"],
        choices=["sac", "pendulum", "inverted", "hopper", "summary", "rates"],
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=0, help="override every part's step budget")
    p.add_argument("--sac-steps", type=int, default=10_000, help="part sac")
    p.add_argument("--sac-inverted-steps", type=int, default=15_000, help="0: skip that SAC")
    p.add_argument("--learning-starts", type=int, default=1000, help="part sac, both sides")
    p.add_argument("--repeats", type=int, default=5, help="timed update blocks per library")
    p.add_argument("--rates-steps", type=int, default=600, help="part rates: buffer fill")
    p.add_argument("--rates-runs", type=int, default=3, help="part rates: repeated comparisons")
    p.add_argument(
        "--resume", action="store_true", help="skip seeds already stored with these settings"
    )
    args = p.parse_args()
    if args.steps:
        args.sac_steps = args.steps
    torch.set_num_threads(1)  # both libraries
    for part in args.part:
        if part == "sac":
            part_sac(args)
        elif part == "rates":
            part_rates(args)
        elif part == "summary":
            import report

            print(report.render_one(NAME))
        else:
            part_mbpo(part, args)
    plot(common.load_records(NAME))
    print(f"\nrecords in {common.RESULTS / NAME}.json; plot {common.RESULTS / NAME}.png")


if __name__ == "__main__":
    main()
