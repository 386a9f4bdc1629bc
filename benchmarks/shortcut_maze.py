"""Shortcut maze: Sutton & Barto (2018), section 8.3, example 8.3 and figure 8.5.

Dyna-Q and Dyna-Q+ (n = 50 planning steps, alpha 1.0 as the maze is deterministic, epsilon 0.1,
gamma 0.95) on ``modelbased/ShortcutMaze-v0`` for 6000 real steps; after 3000 steps a shortcut
opens on the right (shortest path 16 -> 10 steps). Measures, averaged over ``--runs`` seeds:

* cumulative reward (= goals reached) at t = 1000, ..., 6000 and its slope (reward per 100
  steps) over steps 5000-6000;
* per run, whether the agent found the shortcut: "uses" = the median length of its episodes
  ending in steps 5000-6000 is below 16 (impossible without the shortcut), and "greedy" = its
  greedy policy at step 6000, evaluated for one episode on the opened maze, takes 10 steps
  (Dyna-Q+'s Q includes exploration bonuses, so a snapshot greedy policy can loop on a
  long-untried pair even when the agent exploits the shortcut), and the first step at which
  the agent walked through the opening;
* Dyna-Q+ for every kappa in ``--kappas`` (the bonus is kappa * sqrt(steps since tried));
  the curves are plotted for ``--kappa``.

Each invocation appends one record to ``results/shortcut_maze.json`` and redraws
``results/shortcut_maze.png``.

Run:  python benchmarks/shortcut_maze.py        (quick: --runs 3 --kappas 1e-3; full ~30 s)
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from _common import RESULTS, append_record, print_table, pyplot, setup_torch_threads, start_record

import modelbased as mb

ENV = "modelbased/ShortcutMaze-v0"
CHECKPOINTS = (1000, 2000, 3000, 4000, 5000, 6000)
OLD_SHORTEST, NEW_SHORTEST = 16, 10


class Recorder(mb.Callback):
    """Goal times and episode lengths; stops training at exactly ``steps`` real steps."""

    def __init__(self, agent: mb.DynaQ, steps: int) -> None:
        self.steps = steps
        self.goal_steps: list[int] = []
        self.episodes: list[tuple[int, int]] = []  # (env step at the end, length)
        self.first_through_gap: int | None = None
        maze = agent.env.unwrapped
        gap = maze.index((3, maze.cols - 1))  # the cell the shortcut opens
        observe = agent.observe

        def tracked_observe(
            obs: int, action: int, reward: float, next_obs: int, *rest: Any
        ) -> None:
            observe(obs, action, reward, next_obs, *rest)
            if next_obs == gap and self.first_through_gap is None:
                self.first_through_gap = maze.total_steps

        agent.observe = tracked_observe  # instance-level wrapper

    def on_episode(self, state: Any, ret: float, length: int) -> None:
        self.episodes.append((state.env_steps, length))
        if ret > 0:
            self.goal_steps.append(state.env_steps)

    def on_train(self, state: Any, scalars: dict[str, float]) -> bool:
        return state.env_steps < self.steps


def run(agent_cls: type[mb.DynaQ], seed: int, steps: int, **overrides: Any) -> dict[str, Any]:
    agent = agent_cls(
        ENV,
        seed=seed,
        planning_steps=50,
        step_size=1.0,
        epsilon=0.1,
        gamma=0.95,
        eval_every=10**9,
        log_every=steps,
        **overrides,
    )
    rec = Recorder(agent, steps)
    # learn one step more than wanted: the recorder stops at `steps`, before the final eval
    agent.learn(steps + 1, callback=rec)
    assert agent.loop.env_steps == steps
    cumulative = np.zeros(steps + 1, dtype=np.int64)
    np.add.at(cumulative, rec.goal_steps, 1)
    late = [length for end, length in rec.episodes if end > steps - 1000]
    agent.eval_env.unwrapped.total_steps = steps  # open the shortcut in the evaluation maze too
    return {
        "cumulative_reward": np.cumsum(cumulative),
        "median_late_episode_length": float(np.median(late)) if late else None,
        "greedy_length_at_end": agent.evaluate(episodes=1)["length_mean"],
        "first_through_gap": rec.first_through_gap,
    }


def summarize(runs: list[dict[str, Any]], steps: int) -> dict[str, Any]:
    curves = np.array([r["cumulative_reward"] for r in runs], dtype=float)
    mean = curves.mean(axis=0)
    late = [r["median_late_episode_length"] for r in runs]
    gaps = [r["first_through_gap"] for r in runs]
    return {
        "mean_cumulative_reward_every_10_steps": mean[::10],
        "at": {t: float(mean[t]) for t in CHECKPOINTS if t <= steps},
        "slope_last_1000_per_100": float(mean[steps] - mean[max(steps - 1000, 0)]) / 10,
        "runs_using_shortcut": sum(m is not None and m < OLD_SHORTEST for m in late),
        "runs_greedy_shortcut": sum(r["greedy_length_at_end"] == NEW_SHORTEST for r in runs),
        "first_through_gap_median": float(np.median(gaps)) if None not in gaps else None,
        "per_run": [{k: v for k, v in r.items() if k != "cumulative_reward"} for r in runs],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--kappa", type=float, default=1e-3, help="Dyna-Q+ kappa for the plot")
    p.add_argument("--kappas", type=float, nargs="+", default=[1e-4, 3e-4, 1e-3, 3e-3, 1e-2])
    args = p.parse_args()
    setup_torch_threads()
    record = start_record(args, seeds=range(args.runs))
    kappas = sorted({*args.kappas, args.kappa})
    variants: dict[str, tuple[type[mb.DynaQ], dict[str, float]]] = {"Dyna-Q": (mb.DynaQ, {})}
    variants |= {f"Dyna-Q+ k={k:g}": (mb.DynaQPlus, {"kappa": k}) for k in kappas}

    results: dict[str, dict[str, Any]] = {}
    for name, (cls, kw) in variants.items():
        t0 = time.perf_counter()
        runs = [run(cls, seed, args.steps, **kw) for seed in range(args.runs)]
        results[name] = summarize(runs, args.steps) | {"wall_s": time.perf_counter() - t0}

    ticks = [t for t in CHECKPOINTS if t <= args.steps]
    rows = [
        [
            name,
            *r["at"].values(),
            r["slope_last_1000_per_100"],
            f"{r['runs_using_shortcut']}/{args.runs}",
            f"{r['runs_greedy_shortcut']}/{args.runs}",
            r["first_through_gap_median"],
            r["wall_s"],
        ]
        for name, r in results.items()
    ]
    print_table(
        [
            "agent",
            *[f"t={t}" for t in ticks],
            "slope/100",
            "uses shortcut",
            "greedy=10",
            "1st through gap (median)",
            "wall s",
        ],
        rows,
        f"Cumulative reward, mean of {args.runs} runs (S&B fig. 8.5; shortcut opens at 3000)",
    )
    path = append_record("shortcut_maze", record, {"results": results})
    plot(results, args.kappa)
    print(f"\nappended a record to {path}; wrote {path.with_suffix('.png')}")


def plot(results: dict[str, dict[str, Any]], kappa: float) -> None:
    fig, ax = pyplot().subplots(figsize=(6.5, 4.5))
    for name, r in results.items():
        main = name in ("Dyna-Q", f"Dyna-Q+ k={kappa:g}")
        curve = r["mean_cumulative_reward_every_10_steps"]
        ax.plot(
            10 * np.arange(len(curve)),
            curve,
            label=name,
            lw=2 if main else 0.8,
            ls="-" if main else ":",
        )
    ax.axvline(3000, color="gray", lw=0.8, ls="--")
    ax.set(xlabel="Time steps", ylabel="Cumulative reward", title="Shortcut maze")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "shortcut_maze.png", dpi=120)


if __name__ == "__main__":
    main()
