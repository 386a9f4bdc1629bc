"""Report formatters of the Dyna family: the Dyna maze, the shortcut maze, FrozenLake."""

from __future__ import annotations

import statistics
from typing import Any

from _report import (
    Headline,
    Section,
    args_of,
    choose,
    fixed,
    formatter,
    legacy_notice,
    median,
    num,
    ratio,
    si,
    stat_cells,
    steps,
    table,
    times,
)

SHORTEST = 14  # the Dyna maze's shortest path


def _mean_settles(mean: list[float], threshold: float) -> int | None:
    """First episode (1-based) from which ``mean`` stays <= ``threshold``."""
    above = [k for k, m in enumerate(mean) if m > threshold]
    first = 1 if not above else above[-1] + 2
    return first if first <= len(mean) else None


def _maze_config(record: dict[str, Any]) -> tuple:
    a = args_of(record)
    return tuple(a.get(k) for k in ("episodes", "mean_factor", "greedy_cap", "planning_steps"))


@formatter("dyna_maze", "Dyna", "Dyna maze (S&B fig. 8.2)", "python benchmarks/dyna_maze.py")
def dyna_maze(records: list[dict[str, Any]]) -> Section:
    chosen = choose(records, _maze_config)
    args = args_of(chosen.used[-1])
    threshold = args["mean_factor"] * SHORTEST
    cap = args["greedy_cap"]
    ns = [str(n) for n in args["planning_steps"]]
    runs = {
        n: [run for r in chosen.used for run in r["figures"]["results"][n]["per_run"]] for n in ns
    }
    total = len(runs[ns[0]])
    rows, settle, near_steps = [], {}, {}
    for n in sorted(ns, key=int, reverse=True):
        mean = [statistics.mean(col) for col in zip(*(r["lengths"] for r in runs[n]), strict=True)]
        settle[n] = _mean_settles(mean, threshold)
        near = [r["settled_near"] for r in runs[n]]
        strict = [r["settled_strict"] for r in runs[n]]
        near_steps[n] = median([s["steps"] for s in near])
        speed = median(
            [rec["figures"]["results"][n]["planning_updates_per_s_in_runs"] for rec in chosen.used]
        )
        rows.append(
            [
                n,
                num(settle[n], none="never"),
                f"{sum(s['episode'] is not None for s in near)}/{len(near)}",
                *stat_cells([s["steps"] for s in near], steps),
                steps(median([s["steps_after_episode_1"] for s in near])),
                f"{sum(s['episode'] is not None for s in strict)}/{len(strict)}",
                steps(median([s["steps"] for s in strict])),
                si(speed) if int(n) else "-",
            ]
        )
    micro: dict[int, list[dict[str, float]]] = {}
    for rec in chosen.used:
        for m in rec["figures"]["microbenchmark"]:
            micro.setdefault(m["n"], []).append(m)
    micro_rows = [
        [
            n,
            si(median([m["ours_per_s"] for m in ms])),
            si(median([m["plain_python_per_s"] for m in ms])),
            times(median([m["ratio"] for m in ms]), 1),
        ]
        for n, ms in sorted(micro.items())
    ]
    episodes = args["episodes"]
    tables = [
        table(
            [
                "planning steps n",
                f"mean steps/episode stays <= {threshold:g} from episode",
                f"runs whose greedy path settles at <= {cap} steps",
                "real steps to settle: median [95% CI]",
                "IQM [95% CI]",
                "after episode 1: median",
                f"runs settling on the {SHORTEST}-step path",
                "its real steps: median",
                "planning updates/s in the runs",
            ],
            rows,
            f"{total} runs x {episodes} episodes; a run that never settles counts as never "
            "(it moves the median up).",
        ),
        table(
            ["updates per plan() call", "ours updates/s", "plain Python updates/s", "ours / plain"],
            micro_rows,
            "Q-planning on the filled maze model, median of the timed repeats (median over "
            "records).",
        ),
    ]
    order = sorted(ns, key=int, reverse=True)
    ep = ", ".join(
        f"{settle[n]} with n = {n}" if settle[n] else f"not within {episodes} with n = {n}"
        for n in order
    )
    conclusion = (
        f"Over {total} runs the mean episode length stays within {threshold:g} steps from "
        f"episode {ep}"
    )
    headline = []
    if "0" in ns and "50" in ns:
        r = ratio(near_steps["0"], near_steps["50"])
        conclusion += (
            f"; the greedy path settles at <= {cap} steps after a median of "
            f"{steps(near_steps['50'])} real steps with n = 50 and {steps(near_steps['0'])} with "
            f"n = 0" + (f" ({times(r, 1)} fewer)" if r else "")
        )
    conclusion += "."
    figure = ", ".join(f"n={n}: **{num(settle[n], none='never')}**" for n in order)
    headline.append(
        Headline(
            f"Dyna maze (S&B fig. 8.2), {total} runs: episode from which the mean steps/episode "
            f"stays <= {threshold:g}",
            figure,
            chosen.indices,
        )
    )
    return Section(
        conclusion=conclusion,
        tables=tables,
        method=(
            f"Dyna-Q on `modelbased/DynaMaze-v0` (alpha 0.1, epsilon 0.1, gamma 0.95) with n "
            f"planning steps per real step, seeds 0-{total - 1}. After every real step the "
            "greedy path from the start is followed over every tie-break: a run *settles* at "
            "the real step after which that path stays at most "
            f"{cap} steps long (or exactly {SHORTEST}) for the rest of the run. "
            f"The mean curve is the mean steps per episode over runs; epsilon-greedy exploration "
            f"keeps it near 17 even on the optimal path, hence the threshold "
            f"{args['mean_factor']:g} x {SHORTEST}. The microbenchmark times `agent.plan(n)` "
            "(compiled) against a textbook plain-Python loop (lists, a dict model, "
            "`random.choice`) on the same filled model."
        ),
        used=chosen.note,
        plot="dyna_maze.png",
        headline=headline,
        notes=legacy_notice(chosen.used),
    )


def _shortcut_config(record: dict[str, Any]) -> tuple:
    a = args_of(record)
    return a.get("steps"), a.get("kappa")


@formatter(
    "shortcut_maze", "Dyna", "Shortcut maze (S&B fig. 8.5)", "python benchmarks/shortcut_maze.py"
)
def shortcut_maze(records: list[dict[str, Any]]) -> Section:
    chosen = choose(records, _shortcut_config)
    args = args_of(chosen.used[-1])
    agents: dict[str, list[tuple[dict[str, Any], int]]] = {}
    for rec in chosen.used:
        for name, r in rec["figures"]["results"].items():
            agents.setdefault(name, []).append((r, len(r["per_run"])))
    rows, summary = [], {}
    ticks: list[str] = []
    for name, parts in agents.items():
        n = sum(k for _, k in parts)
        runs = [run for r, _ in parts for run in r["per_run"]]
        ticks = list(parts[0][0]["at"])
        at = {t: sum(r["at"][t] * k for r, k in parts) / n for t in ticks}
        slope = sum(r["slope_last_1000_per_100"] * k for r, k in parts) / n
        end = sum(r["mean_cumulative_reward_every_10_steps"][-1] * k for r, k in parts) / n
        uses = sum(
            r["median_late_episode_length"] is not None and r["median_late_episode_length"] < 16
            for r in runs
        )
        greedy = sum(r["greedy_length_at_end"] == 10 for r in runs)
        gaps = [r["first_through_gap"] for r in runs if r["first_through_gap"] is not None]
        summary[name] = {"n": n, "final": end, "uses": uses, "greedy": greedy}
        rows.append(
            [
                name,
                *(fixed(at[t], 1) for t in ticks),
                fixed(slope, 2),
                f"{uses}/{n}",
                f"{greedy}/{n}",
                f"{len(gaps)}/{n}" + (f", median step {steps(median(gaps))}" if gaps else ""),
            ]
        )
    tables = [
        table(
            [
                "agent",
                *(f"t = {t}" for t in ticks),
                "reward per 100 steps, last 1000",
                "late episodes < 16 steps (via the shortcut)",
                "greedy policy at the end takes the 10-step path",
                "runs through the opening",
            ],
            rows,
            "Cumulative reward (goals reached), mean of the runs; the shortcut opens at step 3000.",
        )
    ]
    plus = f"Dyna-Q+ k={args['kappa']:g}"
    q, p = summary.get("Dyna-Q"), summary.get(plus)
    steps_run = args["steps"]
    headline, conclusion = [], "No Dyna-Q / Dyna-Q+ pair in the stored records."
    if q and p:
        conclusion = (
            f"Over {p['n']} runs Dyna-Q+ (kappa {args['kappa']:g}) collects "
            f"{fixed(p['final'], 1)} rewards by step {steps_run} against Dyna-Q's "
            f"{fixed(q['final'], 1)}; its episodes in the last 1000 steps are shorter than 16 "
            f"steps (possible only through the shortcut) in {p['uses']}/{p['n']} runs "
            f"(Dyna-Q {q['uses']}/{q['n']}), and its greedy policy at the end takes the 10-step "
            f"path in {p['greedy']}/{p['n']} runs (Dyna-Q {q['greedy']}/{q['n']})."
        )
        headline.append(
            Headline(
                f"Shortcut maze (S&B fig. 8.5), n=50, {steps_run} steps, {p['n']} runs: "
                "cumulative reward; runs using the shortcut",
                f"Dyna-Q+ **{fixed(p['final'], 1)}** vs Dyna-Q **{fixed(q['final'], 1)}**; "
                f"late episodes via the shortcut {p['uses']}/{p['n']} vs {q['uses']}/{q['n']}, "
                f"greedy policy at the end {p['greedy']}/{p['n']} vs {q['greedy']}/{q['n']}",
                chosen.indices,
            )
        )
    return Section(
        conclusion=conclusion,
        tables=tables,
        method=(
            "Dyna-Q and Dyna-Q+ (n = 50, alpha 1, epsilon 0.1, gamma 0.95) on "
            f"`modelbased/ShortcutMaze-v0` for {steps_run} real steps; at step 3000 a "
            "shortcut opens (shortest path 16 -> 10 steps). *Late episodes*: the median "
            "length of the episodes ending in the last 1000 steps, below 16 only through the "
            "shortcut. *Greedy*: one evaluation episode of the greedy policy at the end on the "
            "opened maze (Dyna-Q+'s Q holds exploration bonuses, so a snapshot greedy policy "
            "can loop on a long-untried pair while the agent itself uses the shortcut). "
            "Dyna-Q+'s bonus is kappa x sqrt(steps since tried), for each kappa stored."
        ),
        used=chosen.note,
        plot="shortcut_maze.png",
        headline=headline,
        notes=legacy_notice(chosen.used),
    )


def _frozen_config(record: dict[str, Any]) -> tuple:
    a = args_of(record)
    keys = ("eval_episodes", "model_steps", "rl_steps", "bound_gamma")
    return tuple(str(a.get(k)) for k in keys)


@formatter(
    "frozenlake",
    "Dyna",
    "FrozenLake: planning on a known vs a learned model",
    "python benchmarks/frozenlake.py",
)
def frozenlake(records: list[dict[str, Any]]) -> Section:
    chosen = choose(records, _frozen_config)
    args = args_of(chosen.used[-1])
    latest = chosen.used[-1]["figures"]
    known = latest["known_model"]
    ref_exact = known["value iteration"]["success_exact"]
    known_rows = [
        [
            k,
            fixed(r["V_start"], 4),
            r["iterations"],
            fixed(r["success_rate"], 3),
            fixed(r["success_exact"], 4),
        ]
        for k, r in known.items()
    ]
    by_n: dict[str, list[dict[str, Any]]] = {}
    for rec in chosen.used:
        for n, part in rec["figures"]["learned_model"].items():
            by_n.setdefault(n, []).extend(part["runs"])
    rows, optimal = [], {}
    for n in sorted(by_n, key=int):
        runs = by_n[n]
        optimal[n] = sum(abs(r["success_exact"] - ref_exact) < 1e-9 for r in runs)
        holds = sum(r["gap"] <= r["bound"] for r in runs)
        rows.append(
            [
                n,
                len(runs),
                fixed(median([r["success_rate"] for r in runs]), 3),
                *stat_cells([r["success_exact"] for r in runs], lambda x: fixed(x, 4)),
                f"{optimal[n]}/{len(runs)}",
                fixed(median([r["eps"] for r in runs]), 3),
                fixed(median([r["eps_R"] for r in runs]), 3),
                fixed(median([r["gap"] for r in runs]), 3),
                num(median([r["bound"] for r in runs])),
                f"{holds}/{len(runs)}",
            ]
        )
    rl: dict[str, list[dict[str, Any]]] = {}
    for rec in chosen.used:
        for name, part in rec["figures"].get("rl", {}).items():
            rl.setdefault(name, []).extend(part["runs"])
    rl_rows = [
        [
            name,
            len(runs),
            fixed(median([r["success_rate"] for r in runs]), 3),
            *stat_cells([r["success_exact"] for r in runs], lambda x: fixed(x, 4)),
        ]
        for name, runs in rl.items()
    ]
    eps = args["eval_episodes"]
    tables = [
        table(
            [
                "known model",
                "V(start)",
                "iterations",
                f"success over {eps} episodes",
                "exact P(success)",
            ],
            known_rows,
            "Planning on the env's transition table, gamma 1.",
        ),
        table(
            [
                "random steps N",
                "seeds",
                "success (evaluated): median",
                "exact P(success): median [95% CI]",
                "IQM [95% CI]",
                "optimal policy (exact = known)",
                "eps (TV): median",
                "eps_R",
                "measured gap",
                f"bound (gamma {args['bound_gamma']:g})",
                "bound holds",
            ],
            rows,
            "Value iteration on a maximum-likelihood model counted from N uniformly random steps.",
        ),
    ]
    if rl_rows:
        tables.append(
            table(
                [
                    "agent",
                    "seeds",
                    "success (evaluated): median",
                    "exact: median [95% CI]",
                    "IQM [95% CI]",
                ],
                rl_rows,
                f"{args['rl_steps']} real steps each, gamma 0.99.",
            )
        )
    top = max(by_n, key=int)
    n_runs = len(by_n[top])
    conclusion = (
        f"Value iteration on a model counted from {top} random steps finds a policy whose exact "
        f"success probability equals the known-model optimum ({fixed(ref_exact, 4)}) in "
        f"{optimal[top]}/{n_runs} seeds; the simulation-lemma bound holds for all "
        f"{sum(len(v) for v in by_n.values())} learned models, at a median of "
        f"{num(median([r['bound'] for r in by_n[top]]))} against a measured gap of "
        f"{fixed(median([r['gap'] for r in by_n[top]]), 3)} at N = {top}"
    )
    if rl:
        medians = "; ".join(
            f"{name} {fixed(median([r['success_exact'] for r in runs]), 3)}"
            for name, runs in rl.items()
        )
        conclusion += f"; exact success after {args['rl_steps']} steps (median): {medians}"
    conclusion += "."
    headline = [
        Headline(
            f"FrozenLake 4x4 slippery: value iteration on a model from {top} random steps, "
            f"{n_runs} seeds",
            f"optimal policy in **{optimal[top]}/{n_runs}** seeds (exact success "
            f"{fixed(ref_exact, 4)})",
            chosen.indices,
        )
    ]
    return Section(
        conclusion=conclusion,
        tables=tables,
        method=(
            "FrozenLake-v1 4x4, slippery. Dynamic programming (Sutton & Barto 4.3-4.4) on the "
            "known transition table, and certainty-equivalence value iteration on a model counted "
            "from N uniformly random steps. *Success (evaluated)*: `agent.evaluate` over the "
            f"stated episodes (standard error about {0.5 / eps**0.5:.3f}); *exact*: the "
            "probability that the greedy policy (ties split uniformly) reaches the goal within "
            "the 100-step time limit, computed on the known model. The bound is the simulation "
            "lemma's (eps_R + 2 gamma eps V_max) / (1 - gamma) with eps the largest total "
            "variation between learned and true next-state laws; *measured gap* is "
            "||V* - V^*||_inf."
        ),
        used=chosen.note,
        plot="frozenlake.png",
        headline=headline,
        notes=legacy_notice(chosen.used),
    )
