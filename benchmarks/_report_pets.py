"""Report formatters of the PETS and MPC family: PETS against SAC on Pendulum, the further tasks,
the uncertainty penalty, the MPC horizon, wall clock and planning speed against mbrl-lib."""

from __future__ import annotations

from typing import Any

from _report import (
    NOT_MEASURED,
    Headline,
    Section,
    args_of,
    choose,
    formatter,
    is_legacy,
    legacy_notice,
    median,
    never,
    num,
    pct,
    per_seed,
    ratio,
    reach,
    record_label,
    stat_cells,
    stay_cell,
    steps,
    table,
    times,
)


def _config(*keys: str) -> Any:
    return lambda r: tuple(str(args_of(r).get(k)) for k in keys)


# -- PETS vs SAC on Pendulum ---------------------------------------------------------------------
@formatter(
    "pets_pendulum",
    "PETS and MPC",
    "PETS vs SAC on Pendulum-v1",
    ".bench/bin/python benchmarks/pets.py --part 1",
)
def pets_pendulum(records: list[dict[str, Any]]) -> Section:
    keys = (
        "pets_steps",
        "pets_eval_every",
        "pets_eval_episodes",
        "sac_steps",
        "sac_eval_every",
        "sac_learning_starts",
    )
    chosen = choose(records, _config(*keys))
    args = args_of(chosen.used[-1])
    threshold = chosen.used[-1]["figures"]["threshold"]
    rows, stay, first, final = [], {}, {}, {}
    for name in ("pets", "sac"):
        stay[name], first[name], final[name] = [], [], []
    for rec in chosen.used:
        f = rec["figures"]
        row: list[Any] = [rec["seeds"][0], record_label(rec)]
        for name in ("pets", "sac"):
            run = f[name]
            if "skipped" in run:
                row += ["-"] * 5
                continue
            stay[name].append(run["steps_to_threshold_and_stay"])
            first[name].append(run["first_crossing"])
            final[name].append(run["final_return"])
            row += [
                stay_cell(run),
                never(run["first_crossing"]),
                num(run["final_return"]),
                num(run["last5_mean"]),
                num(run["learn_wall_s_to_steps_to_threshold_and_stay"]),
            ]
        rows.append(row)
    header = ["seed", "record"]
    for who in ("PETS", "SB3 SAC"):
        header += [
            f"{who}: evals stay >= {threshold:g} from",
            "first crossing",
            "final eval",
            "last 5 evals",
            "learning s to stay",
        ]
    summary = [
        [
            name,
            *stat_cells(stay[key], steps),
            *stat_cells(first[key], steps),
            num(median(final[key])),
        ]
        for name, key in (("PETS", "pets"), ("SB3 SAC", "sac"))
        if stay[key]
    ]
    tables = [
        table(header, rows, "Per seed (real env steps; learning time excludes evaluations)."),
        table(
            [
                "agent",
                "stays from: median [95% CI]",
                "IQM [95% CI]",
                "first crossing: median",
                "IQM",
                "final eval: median",
            ],
            summary,
            "Over seeds (a run whose evals do not stay above the threshold counts as never).",
        ),
    ]
    n = len(chosen.used)
    runs = {
        key: [r["figures"][key] for r in chosen.used if "skipped" not in r["figures"][key]]
        for key in ("pets", "sac")
    }
    label, p_vals, p_clause = reach(runs["pets"], threshold)
    conclusion = (
        f"Over {n} seed(s), PETS's {label}: median {steps(median(p_vals))} (per seed "
        f"{per_seed(p_vals, never)}; {p_clause}, {args['pets_steps']} steps each)"
    )
    headline_fig = f"PETS **{steps(median(p_vals))}**"
    if runs["sac"]:
        _, s_vals, s_clause = reach(runs["sac"], threshold)
        r = ratio(median(s_vals), median(p_vals))
        conclusion += (
            f"; SB3 SAC's: median {steps(median(s_vals))} (per seed {per_seed(s_vals, never)}; "
            f"{s_clause}, {args['sac_steps']} steps each)"
            + (f", {times(r, 1)} as many real steps as PETS" if r else "")
        )
        headline_fig += f" vs SB3 SAC **{steps(median(s_vals))}**" + (
            f" ({times(r, 1)})" if r else ""
        )
    conclusion += "."
    return Section(
        conclusion=conclusion,
        tables=tables,
        method=(
            'Ours: `mb.PETS("Pendulum-v1", seed=s)`, the tuned preset (iCEM population 100, 10 '
            "elites, 3 iterations, 10 particles, H 15, 200 random steps, refit every 200), "
            f"evaluated every {args['pets_eval_every']} steps on {args['pets_eval_episodes']} "
            "planned episodes. SB3 SAC: defaults but `learning_starts` "
            f"{args['sac_learning_starts']}, evaluated on 5 deterministic episodes every "
            f"{args['sac_eval_every']} steps. No run stops at the threshold: *stays from* is the "
            "first eval step from which every later eval is >= the threshold "
            "(`benchmarks/_stats.py`), beside the first crossing, the final eval and the mean of "
            "the last 5. torch on 1 thread, contenders in turn."
        ),
        used=chosen.note,
        plot="pets_pendulum.png",
        headline=[
            Headline(
                f"PETS vs SB3 SAC, Pendulum-v1, {n} seed(s): {label} (median)",
                headline_fig,
                chosen.indices,
            )
        ],
        notes=legacy_notice(chosen.used),
    )


# -- further tasks -------------------------------------------------------------------------------
def _task_runs(records: list[dict[str, Any]], task: str) -> list[dict[str, Any]]:
    """One row per stored run of ``task``: legacy runs stopped at their first success."""
    out = []
    for rec in records:
        f = rec["figures"]
        if is_legacy(rec):
            part = f["tasks"].get(task)
            for seed, r in (part or {}).get("runs", {}).items():
                out.append(
                    {
                        "record": rec,
                        "seed": int(seed),
                        "env": part["env"],
                        "target": part["target_return"],
                        "budget": part["budget"],
                        "first": r["success_steps"],
                        "episode": r["success_episode"],
                        "stay_measured": False,
                        "stay": None,
                        "final": None,
                        "last5": None,
                        "best": r["best_return"],
                        "final_eval": r["final_eval"],
                    }
                )
        elif f["task"] == task:
            r = f["run"]
            out.append(
                {
                    "record": rec,
                    "seed": rec["seeds"][0],
                    "env": f["env"],
                    "target": f["target_return"],
                    "budget": f["budget"],
                    "first": r["first_crossing"],
                    "episode": r["first_crossing_episode"],
                    "stay_measured": r["stay_measured"],
                    "stay": r["steps_to_threshold_and_stay"],
                    "final": r["final_return"],
                    "last5": r["last5_mean"],
                    "best": r["best_return"],
                    "final_eval": r["final_eval"],
                }
            )
    return out


@formatter(
    "pets_tasks",
    "PETS and MPC",
    "PETS on the swing-up and InvertedPendulum-v5",
    "python benchmarks/pets_tasks.py",
)
def pets_tasks(records: list[dict[str, Any]]) -> Section:
    tables, sentences, cells, notes, used_all, notes_used = [], [], [], [], [], []
    whats: list[str] = []
    for task in ("swingup", "invpend"):
        holding = [r for r in records if _task_runs([r], task)]
        if not holding:
            continue
        chosen = choose(holding, _config("max_steps"), what=f"{task}: records")
        runs = _task_runs(chosen.used, task)
        env, target, budget = runs[0]["env"], runs[0]["target"], runs[0]["budget"]
        rows = [
            [
                r["seed"],
                record_label(r["record"]),
                f"{never(r['first'])} ({num(r['episode'])})",
                never(r["stay"]) if r["stay_measured"] else NOT_MEASURED,
                num(r["final"]),
                num(r["last5"]),
                num(r["best"]),
                num(r["final_eval"]),
            ]
            for r in runs
        ]
        first = [r["first"] for r in runs]
        measured = [r["stay"] for r in runs if r["stay_measured"]]
        rows.append(
            [
                "all",
                "",
                *stat_cells(first, steps)[:1],
                stat_cells(measured, steps)[0] if measured else NOT_MEASURED,
                "",
                "",
                "",
                "",
            ]
        )
        tables.append(
            table(
                [
                    "seed",
                    "record",
                    f"first episode >= {target:g}: real steps (episode)",
                    "episodes stay >= target from",
                    "final episode",
                    "last 5 episodes",
                    "best",
                    "final evaluation episode",
                ],
                rows,
                f"{env}: training episodes (all planned after the random ones); target within "
                f"{budget} real steps. Row *all*: median [95% CI].",
            )
        )
        label, values, clause = reach(
            [
                {
                    "first_crossing": r["first"],
                    "steps_to_threshold_and_stay": r["stay"],
                    "stay_measured": r["stay_measured"],
                }
                for r in runs
            ],
            target,
        )
        label = label.replace("evals", "training episodes").replace("eval", "training episode")
        name = env.split("/")[-1]
        sentences.append(
            f"on {name}, {label}: median {steps(median(values))} (seeds "
            f"{per_seed(values, never)}; target {budget}; {clause})"
        )
        cells.append(f"{name} **{steps(median(values))}** ({per_seed(values, never)})")
        whats.append(label)
        used_all += chosen.indices
        notes_used.append(chosen.note)
        notes += legacy_notice(chosen.used)
    stay = all("stay" in w for w in whats)
    what = "PETS, training episodes, swing-up (target 180) / InvertedPendulum-v5 (1000): " + (
        "real steps from which they stay at the target (median)"
        if stay
        else "real steps to the first at the target (median; runs stopped there)"
    )
    return Section(
        conclusion=("PETS: " + "; ".join(sentences) + ".") if sentences else "No stored run.",
        tables=tables,
        method=(
            "`mb.PETS(env, seed=s)` with the env's preset (`modelbased/presets/pets.yaml`), torch "
            "on 1 thread. PETS plans at every training step, so, as in the PETS paper and "
            "mbrl-lib's notebook, the measure is the return of the training episodes; the first "
            "`random_steps` steps are uniform random and count. Swing-up: "
            "`modelbased/CartPoleSwingUp-v0`, maximum return 200, target 90% of it within 10 "
            "episodes. InvertedPendulum-v5: target 1000 within 3,000 real steps. A final "
            "deterministic evaluation episode (fresh env seed) stands beside."
        ),
        used="; ".join(notes_used),
        headline=[Headline(what, ", ".join(cells), tuple(sorted(set(used_all))))] if cells else [],
        notes=list(dict.fromkeys(notes)),
    )


# -- uncertainty penalty and horizon -------------------------------------------------------------
@formatter(
    "pets_penalty",
    "PETS and MPC",
    "Uncertainty penalty and catastrophic plans",
    "python benchmarks/pets_horizon.py --part U --seeds 0 1 2 --episodes 2",
)
def pets_penalty(records: list[dict[str, Any]]) -> Section:
    chosen = choose(records, _config("stages", "lambdas", "episodes"))
    args = args_of(chosen.used[-1])
    seeds = [
        (rec, s, v) for rec in chosen.used for s, v in rec["figures"]["penalty"]["per_seed"].items()
    ]
    stages, lambdas = sorted(args["stages"]), args["lambdas"]
    rows = []
    for stage in stages:
        for lam in lambdas:
            cell = [v[f"{stage}/{lam:g}"] for _, _, v in seeds]
            rows.append(
                [
                    stage,
                    f"{lam:g}",
                    per_seed([c["rate_1"] for c in cell], lambda x: pct(x, 1)),
                    pct(median([c["rate_1"] for c in cell]), 1),
                    pct(median([c["rate_3"] for c in cell]), 1),
                    per_seed([c["return"] for c in cell]),
                    num(median([c["return"] for c in cell])),
                ]
            )
    lo, hi = lambdas[0], lambdas[-1]
    sentences = []
    for stage in stages:
        changes = [
            (v[f"{stage}/{hi:g}"]["rate_1"], v[f"{stage}/{lo:g}"]["rate_1"]) for _, _, v in seeds
        ]
        down = sum(a < b for a, b in changes)
        up = sum(a > b for a, b in changes)
        sentences.append(
            f"after {stage} random steps lambda {hi:g} lowers the rate of catastrophic plans "
            f"below lambda {lo:g}'s on {down} of {len(changes)} seeds and raises it on {up} "
            f"(rates per seed {per_seed([b for _, b in changes], pct)} -> "
            f"{per_seed([a for a, _ in changes], pct)})"
        )
    label = ", ".join(f"seed {s} {record_label(rec)}" for rec, s, _ in seeds)
    return Section(
        conclusion=(
            f"With {len(seeds)} seed(s) x {args['episodes']} episode(s), "
            + "; ".join(sentences)
            + "."
        ),
        tables=[
            table(
                [
                    "random steps",
                    "lambda",
                    "catastrophic plans (gap > 1/step), per seed",
                    "median",
                    "(gap > 3/step) median",
                    "episode return, per seed",
                    "median",
                ],
                rows,
                f"Pendulum-v1, PETS preset; {label}.",
            )
        ],
        method=(
            "PETS (preset, no terminal value) with its model fitted on the stated number of "
            "random transitions plans episodes whose score is the model return minus lambda "
            "times the particles' disagreement (ensemble spread of the next states). At every "
            "real step the chosen H-step plan's predicted return (mean over particles, no "
            "penalty) is compared with its realized return (same actions, open loop, Pendulum's "
            "true dynamics from the true state); a plan is *catastrophic* when the prediction "
            "exceeds the realization by more than 1 (or 3) reward units per step of the horizon "
            "(a step's reward lies in [-16.3, 0])."
        ),
        used=chosen.note,
        notes=legacy_notice(chosen.used),
    )


@formatter(
    "pets_horizon",
    "PETS and MPC",
    "MPC horizon with and without a terminal value",
    "python benchmarks/pets_horizon.py --part H --seeds 0 1 2 --episodes 2",
)
def pets_horizon(records: list[dict[str, Any]]) -> Section:
    chosen = choose(records, _config("train_steps", "value_steps", "episodes", "horizons"))
    args = args_of(chosen.used[-1])
    seeds = [
        (rec, s, v) for rec in chosen.used for s, v in rec["figures"]["horizon"]["per_seed"].items()
    ]
    rows, med = [], {}
    for kind in ("model", "true"):
        for h in args["horizons"]:
            row: list[Any] = [kind, h]
            for use in ("none", "value"):
                vals = [v[f"{kind}/H{h}/{use}"] for _, _, v in seeds]
                med[kind, h, use] = median(vals)
                row += [per_seed(vals), num(med[kind, h, use])]
            rows.append(row)
    short, long = args["horizons"][0], args["horizons"][-1]
    n, eps = len(seeds), args["episodes"]
    label = ", ".join(f"seed {s} {record_label(rec)}" for rec, s, _ in seeds)
    return Section(
        conclusion=(
            f"With the learned model ({n} seed(s) x {eps} episode(s)), H {short} returns "
            f"{num(med['model', short, 'none'])} without the terminal value and "
            f"{num(med['model', short, 'value'])} with it; at H {long}, "
            f"{num(med['model', long, 'none'])} and {num(med['model', long, 'value'])}."
        ),
        tables=[
            table(
                [
                    "dynamics",
                    "H",
                    "return, no terminal value (per seed)",
                    "median",
                    "with gamma^H V(s_H) (per seed)",
                    "median",
                ],
                rows,
                f"Pendulum-v1, mean of {eps} episode(s) per seed; {label}.",
            )
        ],
        method=(
            f"PETS (preset + a TD(0) value, gamma 0.99) learns for {args['train_steps']} real "
            f"steps, the value gets {args['value_steps']} more TD updates, then model and value "
            "are frozen and the same controller plans at every horizon H, scoring a plan by its "
            "discounted model return with and without gamma^H V(s_H); *true* plans with "
            "Pendulum's true dynamics instead of the learned model (myopia, which the value "
            "addresses, apart from model error, which grows with H)."
        ),
        used=chosen.note,
        notes=legacy_notice(chosen.used),
    )


@formatter(
    "user_path",
    "PETS and MPC",
    "PETS and MBPO on Pendulum-v1 through the CLI, as a user runs them",
    "python benchmarks/user_path.py --part pets --resume (and --part mbpo)",
)
def user_path(records: list[dict[str, Any]]) -> Section:
    import numpy as np

    tables, sentences = [], []
    for part in dict.fromkeys(r["part"] for r in records):
        latest = {r["seeds"][0]: r for r in records if r["part"] == part}
        runs = [latest[s]["figures"] for s in sorted(latest)]
        threshold, by = runs[0]["threshold"], runs[0]["reach_by"]
        shared = sorted(set.intersection(*({p["steps"] for p in r["curve"]} for r in runs)))
        at = [{p["steps"]: p["return"] for p in r["curve"]} for r in runs]
        med = [float(np.median([a[s] for a in at])) for s in shared]
        stay = None
        for s, v in zip(reversed(shared), reversed(med), strict=True):
            if v < threshold:
                break
            stay = s
        met = stay is not None and stay <= by
        rows = [
            [
                r["seed"],
                r["first_crossing"],
                stay_cell(r),
                num(r["final_return"]),
                " / ".join(f"{p['return']:.0f}" for p in r["curve"]),
                f"#{latest[r['seed']]['_index']}",
            ]
            for r in runs
        ]
        rows.append(["median curve", "-", never(stay), num(med[-1]), "", ""])
        tables.append(
            table(
                ["seed", "first >= threshold", "stays from", "final", "evals", "record"],
                rows,
                f"`modelbased train {runs[0]['algo']} --env {runs[0]['env']} --steps "
                f"{runs[0]['total_steps']} --seed S` (shipped preset; the benchmark adds only "
                f"`--out`): reach {threshold:g} by {by} real steps "
                "and stay; the median curve is the median over seeds at each eval step.",
            )
        )
        sentences.append(
            f"{runs[0]['algo'].upper()} on {runs[0]['env']} ({len(runs)} seeds): the median curve "
            f"{'reaches' if met else 'does not reach'} {threshold:g} by {by} steps and stay"
            f"{'s' if met else ''} there (stays from {never(stay)})"
        )
    conclusion = "; ".join(sentences) + "."
    return Section(
        conclusion=conclusion[0].upper() + conclusion[1:],
        tables=tables,
        method=(
            "`modelbased train ALGO --env Pendulum-v1 --steps N --seed S` run as a subprocess "
            "with the shipped preset and nothing set (PETS: 10 planned evaluation episodes every "
            "500 steps, 3 every 200 in records before commit 58f0dbb; MBPO: 10 deterministic "
            "episodes every 100 steps, 5 before 58f0dbb), its `eval.csv` read "
            "back; no run stops at the threshold. *Stays from* is the first eval step from "
            "which every later eval is >= the threshold (`benchmarks/_stats.py`)."
        ),
        used="records " + ", ".join(f"#{r['_index']}" for r in records),
        notes=legacy_notice(records),
    )
