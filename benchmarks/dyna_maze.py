"""Dyna maze: Sutton & Barto (2018), section 8.2, example 8.1 and figure 8.2.

Dyna-Q with n = 0, 5, 50 planning steps on ``modelbased/DynaMaze-v0`` (alpha 0.1, epsilon 0.1,
gamma 0.95; 30 runs x 50 episodes, seeds 0..29). Measures:

* mean steps per episode over runs (the curves of figure 8.2), and the first episode from which
  that mean stays <= ``--mean-factor`` x 14 (epsilon-greedy exploration keeps it near 17 even
  when the greedy path is optimal, so the factor is 1.5, i.e. 21 steps);
* per run, after every real step, the greedy path from the start, over every tie-break:
  "strict" = it is a 14-step shortest path, "near" = at most ``--greedy-cap`` (16) steps, the
  next possible length (start-goal paths all have even length). Reported: how many runs settle
  for good within 50 episodes, and the median episode and real env steps of settling (also
  without the first episode, a random walk of the same law for every n); ratio n=0 / n=50;
* planning updates/s: time inside ``agent.plan`` in the runs, and a microbenchmark of
  ``agent.plan(n)`` on the filled model against a plain-Python (lists, dict model,
  ``random.choice``) Dyna-Q planning loop; target >= 1M updates/s.

Each invocation appends one record to ``results/dyna_maze.json`` and redraws
``results/dyna_maze.png``; ``benchmarks/report.py`` builds the tables of docs/results.md from the
records.

Run:  python benchmarks/dyna_maze.py       (quick: --runs 5 --repeats 3; about 15 s in full)
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

import _common as common
import numpy as np

import modelbased as mb
from modelbased.envs.mazes import DynaMaze

ENV = "modelbased/DynaMaze-v0"
SHORTEST = 14
MAZE = DynaMaze()
NEXT, START, GOAL = common.maze_transitions(MAZE), MAZE.index(MAZE.start), MAZE.index(MAZE.goal)
CRITERIA = ("strict", "near")
FIELDS = ("episode", "steps", "steps_after_episode_1")
MICRO_KEYS = ("n", "calls", "ours_per_s", "plain_python_per_s", "ratio")


class Tracker(mb.EpisodeLog):
    """Also times ``agent.plan`` and checks the greedy path after every real step."""

    def __init__(self, agent: mb.DynaQ, episodes: int, cap: int) -> None:
        super().__init__(episodes)
        self.steps, self.plan_time = 0, 0.0
        self.last_bad_step = dict.fromkeys(CRITERIA, 0)
        observe, plan = agent.observe, agent.plan

        def timed_plan(n: int) -> float:
            t0 = time.perf_counter()
            out = plan(n)
            self.plan_time += time.perf_counter() - t0
            return out

        def tracked_observe(*args: Any) -> None:
            observe(*args)
            self.steps += 1
            length = common.greedy_path_length(agent.Q, NEXT, START, GOAL, cap=cap)
            for key, ok in zip(CRITERIA, (length == SHORTEST, length is not None), strict=True):
                if not ok:
                    self.last_bad_step[key] = self.steps

        agent.plan, agent.observe = timed_plan, tracked_observe  # instance-level wrappers

    def settled(self, key: str) -> dict[str, int | None]:
        """Real env steps after which the greedy path meets criterion ``key`` for the rest of
        the run, and the episode they fall in (``None``: still not met at the end)."""
        if self.last_bad_step[key] == self.steps:
            return {"episode": None, "steps": None, "steps_after_episode_1": None}
        steps = self.last_bad_step[key] + 1
        episode = int(np.searchsorted(np.cumsum(self.lengths), steps)) + 1
        return {
            "episode": episode,
            "steps": steps,
            "steps_after_episode_1": max(0, steps - self.lengths[0]),
        }


def run(n: int, seed: int, episodes: int, cap: int) -> dict[str, Any]:
    agent = mb.DynaQ(ENV, seed=seed, planning_steps=n, eval_every=10**9, log_every=10**9)
    tracker = Tracker(agent, episodes, cap)
    t0 = time.perf_counter()
    agent.learn(10**9, callback=tracker)  # stopped by the tracker after `episodes` episodes
    return {
        "lengths": tracker.lengths,
        **{f"settled_{key}": tracker.settled(key) for key in CRITERIA},
        "greedy_path_length_final": common.greedy_path_length(agent.Q, NEXT, START, GOAL),
        "planning_updates": agent.planning_updates,
        "plan_time_s": tracker.plan_time,
        "wall_s": time.perf_counter() - t0,
    }


def mean_curve_settles(mean: np.ndarray, threshold: float) -> int | None:
    """First episode (1-based) from which ``mean`` stays <= ``threshold``."""
    above = np.flatnonzero(mean > threshold)
    first = 1 if len(above) == 0 else int(above[-1]) + 2
    return first if first <= len(mean) else None


def plain_python_plan(
    Q: list[list[float]], model: dict, pairs: list, n: int, alpha: float, gamma: float
) -> None:
    """The textbook Dyna-Q planning loop in plain Python (lists, a dict model, random.choice)."""
    choice = random.choice
    for _ in range(n):
        s, a = choice(pairs)
        r, s2, terminal = model[s, a]
        target = r if terminal else r + gamma * max(Q[s2])
        Q[s][a] += alpha * (target - Q[s][a])


def microbenchmark(sizes: list[int], repeats: int, budget: int) -> list[dict[str, float]]:
    agent = mb.DynaQ(ENV, seed=0, planning_steps=50, eval_every=10**9, log_every=10**9)
    agent.learn(10**9, callback=mb.EpisodeLog(max_episodes=50))
    m, alpha, gamma = agent.model, agent.config.step_size, agent.config.gamma
    pairs = [divmod(int(p), agent.n_actions) for p in m.observed_pairs]
    model = {
        (s, a): (float(m.reward[s, a]), int(m.next_state[s, a]), bool(m.terminal[s, a]))
        for s, a in pairs
    }
    q_list = agent.Q.tolist()
    rows = []
    for n in sizes:
        calls = max(1, budget // n)

        def ours(n: int = n, calls: int = calls) -> None:
            for _ in range(calls):
                agent.plan(n)

        def plain(n: int = n, calls: int = calls) -> None:
            for _ in range(calls):
                plain_python_plan(q_list, model, pairs, n, alpha, gamma)

        r_ours, r_plain = (
            common.timed_rate(ours, n * calls, repeats),
            common.timed_rate(plain, n * calls, repeats),
        )
        rows.append(
            dict(zip(MICRO_KEYS, (n, calls, r_ours, r_plain, r_ours / r_plain), strict=True))
        )
    return rows


def summarize(runs: list[dict[str, Any]], n: int, threshold: float) -> dict[str, Any]:
    mean = np.array([r["lengths"] for r in runs], dtype=float).mean(axis=0)
    plan_s = sum(r["plan_time_s"] for r in runs)
    out: dict[str, Any] = {
        "mean_steps_per_episode": mean,
        "mean_curve_settle_episode": mean_curve_settles(mean, threshold),
        "planning_updates_per_s_in_runs": (
            sum(r["planning_updates"] for r in runs) / plan_s if n else None
        ),
        "wall_s": sum(r["wall_s"] for r in runs),
    }
    for key in CRITERIA:
        settled = [r[f"settled_{key}"] for r in runs]
        out[key] = {"runs_settled": sum(s["episode"] is not None for s in settled)} | {
            f"{field}_median": common.median_or_none([s[field] for s in settled])
            for field in FIELDS
        }
    return out | {"per_run": runs}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--planning-steps", type=int, nargs="+", default=[0, 5, 50])
    p.add_argument("--mean-factor", type=float, default=1.5, help="mean curve <= factor x 14")
    p.add_argument("--greedy-cap", type=int, default=16, help="'near': greedy path <= cap")
    p.add_argument("--repeats", type=int, default=7, help="timing repeats (median)")
    p.add_argument("--budget", type=int, default=200_000, help="updates per timing repeat")
    args = p.parse_args()
    common.setup_torch_threads()
    record = common.start_record(args, seeds=range(args.runs))
    threshold = args.mean_factor * SHORTEST
    warm = mb.DynaQ(ENV, seed=0, planning_steps=1, eval_every=10**9, log_every=10**9)
    warm.learn(
        10**9, callback=mb.EpisodeLog(max_episodes=1)
    )  # compile / load the numba planner before timing

    results = {
        n: summarize(
            [run(n, s, args.episodes, args.greedy_cap) for s in range(args.runs)], n, threshold
        )
        for n in args.planning_steps
    }
    shown = [e for e in [*range(1, 11), 15, 20, 30, 40, 50] if e <= args.episodes]
    common.print_table(
        ["episode", *[f"n={n}" for n in results]],
        [[e, *[r["mean_steps_per_episode"][e - 1] for r in results.values()]] for e in shown],
        f"Mean steps per episode over {args.runs} runs (S&B fig. 8.2)",
    )
    header = (
        f"n|mean<={threshold:g} from ep|criterion|runs settled|episode|real steps|"
        "steps after ep 1|plan updates/s|wall s"
    )
    labels = {"strict": f"greedy={SHORTEST}", "near": f"greedy<={args.greedy_cap}"}
    rows = [
        [
            n,
            r["mean_curve_settle_episode"],
            labels[k],
            f"{r[k]['runs_settled']}/{args.runs}",
            *(r[k][f"{f}_median"] for f in FIELDS),
            r["planning_updates_per_s_in_runs"],
            r["wall_s"],
        ]
        for n, r in results.items()
        for k in CRITERIA
    ]
    common.print_table(
        header.split("|"),
        rows,
        "Settling for good (medians over runs; a run that never settles counts as latest)",
    )
    ratios: dict[str, dict[str, float | None]] = {}
    if 0 in results and 50 in results:
        for key in CRITERIA:
            ratios[key] = {
                f: _ratio(results[0][key][f"{f}_median"], results[50][key][f"{f}_median"])
                for f in ("steps", "steps_after_episode_1")
            }
            print(f"{key}: real steps to settle, ratio n=0 / n=50: {ratios[key]}")

    micro = microbenchmark([5, 50, 1000, 100_000], args.repeats, args.budget)
    common.print_table(
        ["n per plan() call", "calls", "ours updates/s", "plain Python updates/s", "ours / plain"],
        [[r["n"], r["calls"], r["ours_per_s"], r["plain_python_per_s"], r["ratio"]] for r in micro],
        f"Planning microbenchmark (filled DynaMaze model, median of {args.repeats})",
    )
    figures = {
        "mean_threshold_steps": threshold,
        "settle_ratio_n0_over_n50": ratios,
        "results": {str(n): r for n, r in results.items()},
        "microbenchmark": micro,
    }
    path = common.append_record("dyna_maze", record, figures)
    plot(results, micro, args.episodes)
    print(f"\nappended a record to {path}; wrote {path.with_suffix('.png')}")


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def plot(results: dict[int, dict[str, Any]], micro: list[dict[str, float]], episodes: int) -> None:
    fig, (ax1, ax2) = common.pyplot().subplots(1, 2, figsize=(11, 4))
    x = np.arange(2, episodes + 1)
    for n, r in results.items():
        ax1.plot(x, r["mean_steps_per_episode"][1:], label=f"{n} planning steps")
    ax1.axhline(SHORTEST, color="gray", lw=0.8, ls="--")
    ax1.set(xlabel="Episodes", ylabel="Steps per episode", ylim=(0, 800), title="Dyna maze")
    ax1.legend()
    pos = np.arange(len(micro))
    ax2.bar(pos - 0.2, [r["ours_per_s"] for r in micro], 0.4, label="modelbased (numba)")
    ax2.bar(pos + 0.2, [r["plain_python_per_s"] for r in micro], 0.4, label="plain Python")
    ax2.set(
        xticks=pos,
        xticklabels=[str(r["n"]) for r in micro],
        xlabel="updates per plan() call",
        yscale="log",
        ylabel="planning updates / s",
        title="Q-planning speed",
    )
    ax2.legend()
    fig.tight_layout()
    fig.savefig(common.RESULTS / "dyna_maze.png", dpi=120)


if __name__ == "__main__":
    main()
