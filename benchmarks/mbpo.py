"""SAC and MBPO: our SAC against Stable-Baselines3's, and MBPO's real steps to a target against
SAC's, with the wall time of each real step split into model training, rollouts and SAC
updates -- torch pinned to 1 thread, contenders run in turn in one process.

Parts (``--part``; default ``sac pendulum inverted``; ``hopper`` only when asked):

* ``sac``: Pendulum-v1, ours ``mb.SAC`` vs SB3 ``SAC("MlpPolicy")``, both SB3 defaults but
  ``learning_starts`` (``--learning-starts``, 1000 as shared/PEERS.md), same seeds, 10k steps,
  5 deterministic eval episodes every 500 steps. Reported: steps to eval >= -200, the mean of the
  last 5 evals, wall/CPU seconds per 1k steps learning (evals excluded), and updates/s of each
  library's own update call at batch 256 on its own filled buffer, timed in alternating blocks
  after learning (median of ``--repeats``).
* ``pendulum``: MBPO (tuned Pendulum preset) up to 1,500 steps, eval every 100, stopped at the
  first eval >= -200; ratio against ours and SB3's SAC steps from the ``sac`` part (this run, or
  results/mbpo.json of an earlier run).
* ``inverted``: InvertedPendulum-v5, MBPO (paper preset) up to 5,000 steps, eval every 250, and
  our SAC up to ``--sac-inverted-steps``, each stopped at the first eval of 1000.
* ``hopper``: Hopper-v5, MBPO and our SAC for 25k steps each (about 2 h on this CPU).
* ``rates``: only the update-speed comparison (both buffers filled by ``--rates-steps`` steps).
* ``summary``: reprint every table and redraw the plot from results/mbpo.json.

For every MBPO run the wall and CPU seconds per real step after the random phase are split into
model fitting, rollouts and SAC updates (the agent's own timers). -> results/mbpo.{json,png}

Run:  .bench/bin/python benchmarks/mbpo.py               (SB3 is needed only for part sac;
      MuJoCo parts need gymnasium[mujoco] in the interpreter that runs them)
quick: --seeds 0 --steps 1000 --repeats 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import _common as common
import gymnasium as gym
import torch

import modelbased as mb

PARTS = {  # env, threshold, MBPO budget, MBPO eval_every
    "pendulum": ("Pendulum-v1", -200.0, 1500, 100),
    "inverted": ("InvertedPendulum-v5", 1000.0, 5000, 250),
    "hopper": ("Hopper-v5", None, 25_000, 1000),
}
PHASES = ("model", "rollout", "sac")
RESULTS_JSON = common.RESULTS / "mbpo.json"


class Curve:
    """Eval returns against env steps; learning time excludes the time spent evaluating."""

    def __init__(self, threshold: float | None) -> None:
        self.threshold, self.points = threshold, []
        self.eval_wall = self.eval_cpu = 0.0
        self.w0, self.c0 = time.perf_counter(), time.process_time()

    def timed(self, fn: Callable[[], float]) -> float:
        w, c = time.perf_counter(), time.process_time()
        value = fn()
        self.eval_wall += time.perf_counter() - w
        self.eval_cpu += time.process_time() - c
        return value

    def add(self, steps: int, ret: float) -> bool:
        """Record an eval; True once the threshold is reached (stop training)."""
        wall, cpu = time.perf_counter() - self.w0, time.process_time() - self.c0
        self.points.append({"steps": steps, "return": ret, "learn_wall_s": wall - self.eval_wall,
                            "learn_cpu_s": cpu - self.eval_cpu})  # fmt: skip
        return self.threshold is not None and ret >= self.threshold

    def result(self) -> dict[str, Any]:
        hit = next((p for p in self.points if self.reached(p["return"])), None)
        last = self.points[-1] if self.points else {}
        tail = [p["return"] for p in self.points[-5:]]
        return {"steps": hit["steps"] if hit else None,
                "learn_wall_s": hit["learn_wall_s"] if hit else None,
                "learn_cpu_s": hit["learn_cpu_s"] if hit else None,
                "last5_return": statistics.mean(tail) if tail else None,
                "total_steps": last.get("steps"), "total_learn_wall_s": last.get("learn_wall_s"),
                "total_learn_cpu_s": last.get("learn_cpu_s"), "curve": self.points}  # fmt: skip

    def reached(self, ret: float) -> bool:
        return self.threshold is not None and ret >= self.threshold


class Tracker(mb.Callback):
    """Our agents: eval curve, evals timed apart, and the MBPO phase timers per log interval."""

    def __init__(self, threshold: float | None, stop: bool = True) -> None:
        self.curve, self.stop, self.train = Curve(threshold), stop, []

    def on_train(self, state: Any, scalars: dict[str, float]) -> None:
        self.train.append({"steps": state.env_steps, **scalars})

    def on_eval(self, state: Any, stats: dict[str, Any]) -> bool:
        print(f"  eval {state.env_steps}: {stats['return_mean']:.1f}", flush=True)
        self.curve.eval_wall += stats["wall_s"]  # the evaluation's own time, kept apart
        self.curve.eval_cpu += stats["cpu_s"]
        return not (self.curve.add(state.env_steps, stats["return_mean"]) and self.stop)


def run_ours(cls: type[mb.Agent], env: str, seed: int, steps: int, threshold: float | None,
             stop: bool = True, **overrides: Any) -> tuple[mb.Agent, dict[str, Any]]:  # fmt: skip
    agent = cls(env, seed=seed, **overrides)
    tracker = Tracker(threshold, stop)
    agent.learn(steps, callback=tracker)
    out = tracker.curve.result() | {"phases": phase_split(tracker.train)}
    return agent, out


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
    model = SAC("MlpPolicy", "Pendulum-v1", seed=seed, learning_starts=args.learning_starts,
                device="cpu", verbose=0)  # fmt: skip
    curve = Curve(-200.0)

    class Eval(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % 500 == 0:
                ret = curve.timed(lambda: evaluate_policy(model, eval_env, 5, True)[0])
                curve.add(self.num_timesteps, float(ret))
            return True

    model.learn(args.sac_steps, callback=Eval())
    return model, curve.result()


def update_rates(ours: mb.SAC, sb3: Any, repeats: int, block: int = 200) -> dict[str, Any]:
    """Updates/s (wall and CPU clocks) of each library's update call at batch 256, each on its
    own filled buffer, in alternating blocks; medians over ``repeats``."""
    calls = {"ours": lambda: ours.train_policy(block),
             "sb3": lambda: sb3.train(gradient_steps=block, batch_size=256)}  # fmt: skip
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
    med = {f"{k}_{clock}": statistics.median(v[k]) for clock, v in (("wall", wall), ("cpu", cpu))
           for k in calls}  # fmt: skip
    return {"ours_updates_per_s": med["ours_wall"], "sb3_updates_per_s": med["sb3_wall"],
            "ratio": med["ours_wall"] / med["sb3_wall"],
            "ours_updates_per_cpu_s": med["ours_cpu"], "sb3_updates_per_cpu_s": med["sb3_cpu"],
            "ratio_cpu": med["ours_cpu"] / med["sb3_cpu"], "ours_all": wall["ours"],
            "sb3_all": wall["sb3"]}  # fmt: skip


def part_rates(args: argparse.Namespace) -> None:
    """Only the update-speed comparison, ``--rates-runs`` times: both libraries fill a buffer with
    ``--rates-steps`` steps on Pendulum-v1 (learning_starts 100), then time their update calls;
    the median ratio over runs is the figure (one run's ratio moves by 0.1-0.15 here)."""
    from stable_baselines3 import SAC

    runs = []
    for _ in range(args.rates_runs):
        agent = mb.SAC("Pendulum-v1", seed=0, learning_starts=100, eval_episodes=0,
                       log_every=10**9)  # fmt: skip
        agent.learn(args.rates_steps)
        sb3 = SAC("MlpPolicy", "Pendulum-v1", seed=0, learning_starts=100, device="cpu")
        sb3.learn(args.rates_steps)
        runs.append(update_rates(agent, sb3, args.repeats))
    median = {k: statistics.median(r[k] for r in runs) for k, v in runs[0].items()
              if isinstance(v, float | int)}  # fmt: skip
    rows = [[i, r["ours_updates_per_s"], r["sb3_updates_per_s"], r["ratio"], r["ratio_cpu"]]
            for i, r in [*enumerate(runs), ("median", median)]]  # fmt: skip
    common.print_table(
        ["run", "ours upd/s", "SB3 upd/s", "ours/SB3", "ours/SB3 per CPU s"], rows,
        f"SAC update at batch 256, 256x256, 1 thread, median of {args.repeats} blocks of 200",
    )  # fmt: skip
    results = common.load_results(RESULTS_JSON)
    results["rates"] = {"runs": runs, "median": median, "buffer_steps": args.rates_steps}
    common.save_json(RESULTS_JSON.stem, results)


def part_sac(args: argparse.Namespace, results: dict[str, Any]) -> None:
    try:
        import stable_baselines3  # noqa: F401

        why = ""
    except ImportError as exc:
        why = f"stable-baselines3 not installed: {exc}"
        print(f"SB3 column skipped: {why}")
    for seed in args.seeds:
        agent, ours = run_ours(mb.SAC, "Pendulum-v1", seed, args.sac_steps, -200.0, stop=False,
                               learning_starts=args.learning_starts, eval_every=500,
                               eval_episodes=5, log_every=10**9)  # fmt: skip
        print(f"ours SAC seed {seed}: to -200 {ours['steps']}, last5 {ours['last5_return']}",
              flush=True)  # fmt: skip
        sb3, theirs = run_sb3(seed, args) if not why else (None, {})
        if theirs:
            print(f"SB3 SAC seed {seed}: to -200 {theirs['steps']}, "
                  f"last5 {theirs['last5_return']}", flush=True)  # fmt: skip
        rates = update_rates(agent, sb3, args.repeats) if sb3 is not None else {}
        print(f"updates/s seed {seed}: {rates}", flush=True)
        save_seed("sac", seed, {"ours": ours, "sb3": theirs, "rates": rates}, skipped=why)
    results |= common.load_results(RESULTS_JSON)
    table_sac(results)


def table_sac(results: dict[str, Any]) -> None:
    part = results["sac"]
    rows, keys = [], []
    for seed, r in sorted(part["per_seed"].items()):
        o, s, u = r["ours"], r["sb3"], r["rates"]
        row = {"seed": seed, "ours_steps": o["steps"], "sb3_steps": s.get("steps"),
               "ours_last5": o["last5_return"], "sb3_last5": s.get("last5_return"),
               "ours_wall_per_1k": per_1k(o, "wall"), "sb3_wall_per_1k": per_1k(s, "wall"),
               "ours_cpu_per_1k": per_1k(o, "cpu"), "sb3_cpu_per_1k": per_1k(s, "cpu"),
               "ours_ups": u.get("ours_updates_per_s"), "sb3_ups": u.get("sb3_updates_per_s"),
               "ups_ratio": u.get("ratio")}  # fmt: skip
        rows.append(row)
        keys = list(row)
    median = {k: common.median_or_none([r[k] for r in rows]) for k in keys[1:]}
    args = results.get("args", {}).get("sac", {})
    common.print_table(
        ["seed", "ours to -200", "SB3 to -200", "ours last5", "SB3 last5", "ours wall/1k",
         "SB3 wall/1k", "ours cpu/1k", "SB3 cpu/1k", "ours upd/s", "SB3 upd/s", "ratio"],
        [[r[k] for k in keys] for r in [*rows, {"seed": "median", **median}]],
        f"Pendulum-v1, SAC ours vs SB3, {args.get('sac_steps')} steps, learning_starts "
        f"{args.get('learning_starts')}, 1 thread (s per 1k steps: learning, evals excluded)",
    )  # fmt: skip
    part |= {"rows": rows, "median": median}


def save_seed(part: str, seed: int, data: dict[str, Any], **extra: Any) -> None:
    """Merge one seed's results into results/mbpo.json (other invocations may be writing)."""
    results = common.load_results(RESULTS_JSON)
    entry = results.setdefault(part, {})
    entry.setdefault("per_seed" if part == "sac" else "runs", {})[str(seed)] = data
    entry |= extra
    common.save_json(RESULTS_JSON.stem, results)


def per_1k(r: dict[str, Any], kind: str) -> float | None:
    if not r or not r.get("total_steps"):
        return None
    return 1000 * r[f"total_learn_{kind}_s"] / r["total_steps"]


def part_mbpo(name: str, args: argparse.Namespace, results: dict[str, Any]) -> None:
    env, threshold, budget, eval_every = PARTS[name]
    budget = args.steps or budget
    runs: dict[int, dict[str, Any]] = {}
    for seed in args.seeds:
        _, mbpo = run_ours(mb.MBPO, env, seed, budget, threshold, eval_every=eval_every,
                           eval_episodes=5, log_every=eval_every)  # fmt: skip
        print(f"MBPO {env} seed {seed}: steps to {threshold} = {mbpo['steps']}, "
              f"evals {[round(p['return']) for p in mbpo['curve']]}", flush=True)  # fmt: skip
        runs[seed] = {"mbpo": mbpo}
        if name == "hopper" or (name == "inverted" and args.sac_inverted_steps):
            sac_steps = budget if name == "hopper" else args.sac_inverted_steps
            _, sac = run_ours(mb.SAC, env, seed, args.steps or sac_steps, threshold,
                              eval_every=1000, eval_episodes=5)  # fmt: skip
            print(f"SAC {env} seed {seed}: steps to {threshold} = {sac['steps']}, "
                  f"last5 {sac['last5_return']}", flush=True)  # fmt: skip
            runs[seed]["sac"] = sac
        save_seed(name, seed, runs[seed], env=env, threshold=threshold)
    results |= common.load_results(RESULTS_JSON)
    table_mbpo(name, results)


def table_mbpo(name: str, results: dict[str, Any]) -> None:
    """Print (and store) the MBPO-vs-SAC table of a part; Pendulum's SAC comes from part sac."""
    part, sac_part = results[name], results.get("sac", {}).get("per_seed", {})
    rows = []
    for seed, r in part["runs"].items():
        m, ref = r["mbpo"], sac_part.get(seed, sac_part.get(str(seed), {}))
        sac = r.get("sac") or ref.get("ours", {})
        sb3 = ref.get("sb3", {}) if name == "pendulum" else {}
        ph = m["phases"] or {}
        rows.append({"seed": seed, "mbpo_steps": m["steps"], "sac_steps": sac.get("steps"),
                     "ratio": ratio(sac.get("steps"), m["steps"]), "sb3_steps": sb3.get("steps"),
                     "sb3_ratio": ratio(sb3.get("steps"), m["steps"]),
                     "mbpo_last5": m["last5_return"], "sac_last5": sac.get("last5_return"),
                     **{k: ph.get(f"{k}_s_per_step") for k in (*PHASES, "total")},
                     "cpu_total": ph.get("total_cpu_s_per_step")})  # fmt: skip
    keys = list(rows[0])
    median = {k: common.median_or_none([r[k] for r in rows]) for k in keys[1:]}
    common.print_table(
        ["seed", "MBPO steps", "SAC steps", "SAC/MBPO", "SB3 steps", "SB3/MBPO", "MBPO last5",
         "SAC last5", "model s", "rollout s", "SAC-upd s", "total s", "cpu total s"],
        [[r[k] for k in keys] for r in [*rows, {"seed": "median", **median}]],
        f"{part['env']}: real steps to eval >= {part['threshold']} (SAC = ours); MBPO wall s "
        "per real step after the random phase, by phase",
    )  # fmt: skip
    part |= {"rows": rows, "median": median}


def ratio(sac: float | None, mbpo: float | None) -> float | None:
    return sac / mbpo if sac and mbpo else None


def plot(results: dict[str, Any]) -> None:
    panels = [k for k in ("sac", "pendulum", "inverted", "hopper") if k in results]
    fig, axes = common.pyplot().subplots(1, len(panels), figsize=(5 * len(panels), 4))
    axes = [axes] if len(panels) == 1 else axes
    for ax, name in zip(axes, panels, strict=True):
        if name == "sac":
            series = {
                "ours SAC": [r["ours"] for r in results["sac"]["per_seed"].values()],
                "SB3 SAC": [r["sb3"] for r in results["sac"]["per_seed"].values()],
            }
            ax.set_title("Pendulum-v1: SAC, ours vs SB3")
        else:
            runs = results[name]["runs"].values()
            series = {
                "MBPO": [r["mbpo"] for r in runs],
                "SAC (ours)": [r["sac"] for r in runs if r.get("sac")],
            }
            if name == "pendulum":
                series["SAC (ours)"] = [r["ours"] for r in results.get("sac", {}).get(
                    "per_seed", {}).values()]  # fmt: skip
            ax.set_title(f"{results[name]['env']}: MBPO vs SAC")
            if results[name]["threshold"] is not None:
                ax.axhline(results[name]["threshold"], color="gray", ls="--", lw=0.8)
        for (label, curves), color in zip(series.items(), ("tab:blue", "tab:orange"),
                                          strict=False):  # fmt: skip
            for k, r in enumerate(c for c in curves if c and c.get("curve")):
                xs = [p["steps"] for p in r["curve"]]
                ys = [p["return"] for p in r["curve"]]
                ax.plot(xs, ys, "o-", ms=2, color=color, alpha=0.6, label=label if not k else None)
        ax.set(xlabel="real env steps", ylabel="eval return (5 episodes)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS_JSON.with_suffix(".png"), dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--part", nargs="+", default=["sac", "pendulum", "inverted"],
                   choices=["sac", "pendulum", "inverted", "hopper", "summary",
                            "rates"])  # fmt: skip
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=0, help="override every part's step budget")
    p.add_argument("--sac-steps", type=int, default=10_000, help="part sac")
    p.add_argument("--sac-inverted-steps", type=int, default=15_000, help="0: skip that SAC")
    p.add_argument("--learning-starts", type=int, default=1000, help="part sac, both sides")
    p.add_argument("--repeats", type=int, default=5, help="timed update blocks per library")
    p.add_argument("--rates-steps", type=int, default=600, help="part rates: buffer fill")
    p.add_argument("--rates-runs", type=int, default=3, help="part rates: repeated comparisons")
    p.add_argument("--name", default="mbpo", help="results/<name>.json and .png")
    args = p.parse_args()
    global RESULTS_JSON
    RESULTS_JSON = common.RESULTS / f"{args.name}.json"
    if args.steps:
        args.sac_steps = args.steps
    torch.set_num_threads(1)  # both libraries
    for part in args.part:
        if part == "sac":
            results = common.load_results(RESULTS_JSON)
            results.setdefault("args", {})["sac"] = vars(args)
            common.save_json(RESULTS_JSON.stem, results)
            part_sac(args, results)
        elif part == "rates":
            part_rates(args)
            continue
        elif part == "summary":
            results = common.load_results(RESULTS_JSON)
            for name in ("sac", "pendulum", "inverted", "hopper"):
                if name in results:
                    (table_sac if name == "sac" else partial(table_mbpo, name))(results)
        else:
            results = common.load_results(RESULTS_JSON)
            part_mbpo(part, args, results)
        merged = common.load_results(RESULTS_JSON)  # other invocations may have written meanwhile
        for name in ("sac", "pendulum", "inverted", "hopper"):
            if name in merged and name in results:
                merged[name] |= {k: results[name][k] for k in ("rows", "median")
                                 if k in results[name]}  # fmt: skip
        common.save_json(RESULTS_JSON.stem, merged)
        plot(merged)
    print(f"\nwrote {RESULTS_JSON} and {RESULTS_JSON.with_suffix('.png')}")


if __name__ == "__main__":
    main()
