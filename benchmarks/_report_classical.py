"""Report formatter of ``benchmarks/classical.py``: iLQR on known and learned models, and
hybrid analytic + learned-residual models under PETS (issue 20)."""

from __future__ import annotations

from typing import Any

from _report import (
    Section,
    args_of,
    fixed,
    formatter,
    median,
    never,
    num,
    per_seed,
    span,
    table,
    times,
)

KEYS = ("episodes", "steps", "iterations", "wrong", "multi_start")


def _latest_settings(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records run with the same settings as the latest of them."""

    def settings(r: dict[str, Any]) -> dict[str, Any]:
        return {k: args_of(r).get(k) for k in KEYS} | {"H": r["figures"].get("horizon")}

    # the latest with the defaults (multi-start on); --no-multi-start runs are ablations
    ref = next((r for r in reversed(records) if args_of(r).get("multi_start") is not False), None)
    ref = records[-1] if ref is None else ref
    return [r for r in records if settings(r) == settings(ref)]


@formatter(
    "classical",
    "PETS and MPC",
    "Classical control: iLQR on known and learned models, hybrid models",
    "python benchmarks/classical.py --part known --seeds 0 1 2",
)
def classical(records: list[dict[str, Any]]) -> Section:
    tables, sentences, used = [], [], []  # no headline row: the README's table is full
    known = [r for r in records if r.get("part") == "known"]
    rows = []
    for task in dict.fromkeys(r["task"] for r in known):
        runs = _latest_settings([r for r in known if r["task"] == task])
        figs = [r["figures"] for r in runs]
        rets = [f["return_mean"] for f in figs]
        ms = [f["plan_ms_median"] for f in figs]
        cpu = [f["plan_cpu_ms_median"] for f in figs]
        seeds = [r["seeds"][0] for r in runs]
        idx = [r["_index"] for r in runs]
        used += idx
        rows.append(
            [
                task,
                figs[-1]["horizon"],
                span(seeds, ""),
                args_of(runs[-1]).get("episodes"),
                num(median(rets)),
                per_seed(rets),
                num(figs[-1]["target"]),
                fixed(median(ms), 1),
                fixed(median(cpu), 1),
                span(idx),
            ]
        )
        met_return = "met" if median(rets) >= figs[-1]["target"] else "not met"
        met_time = "met" if median(cpu) <= 10 else "not met"
        sentences.append(
            f"{task}: median over {len(rets)} seeds of the mean return over "
            f"{args_of(runs[-1]).get('episodes')} episodes {fixed(median(rets), 1)} (target "
            f">= {num(figs[-1]['target'])}: {met_return}) at a median {fixed(median(cpu), 1)} ms "
            f"of planning CPU time per action (target <= 10 ms: {met_time}; "
            f"{fixed(median(ms), 1)} ms wall)"
        )
    if rows:
        tables.append(
            table(
                [
                    "task",
                    "H",
                    "seeds",
                    "episodes",
                    "median return",
                    "per seed",
                    "target",
                    "plan ms (wall)",
                    "plan ms (CPU)",
                    "records",
                ],
                rows,
                "iLQR-MPC with the exact analytic model and known reward (part known): mean "
                "return over the episodes per seed; planning time per action, median over actions "
                "and then over seeds.",
            )  # fmt: skip
        )
    learned = [r for r in records if r.get("part") == "learned"]
    if learned:
        figs = [r["figures"] for r in learned]
        stay = [f["run"]["steps_to_threshold_and_stay"] for f in figs]
        used += [r["_index"] for r in learned]
        tables.append(
            table(
                ["seed", "steps to -200 (stay)", "final return", "iLQR ms", "iCEM ms", "iCEM/iLQR"],
                [
                    [
                        r["seeds"][0],
                        never(s),
                        num(f["run"]["final_return"]),
                        fixed(f["ilqr_plan_ms_median"], 1),
                        fixed(f["icem_plan_ms_median"], 1),
                        times(f["icem_over_ilqr"]),
                    ]
                    for r, f, s in zip(learned, figs, stay, strict=True)
                ],
                "iLQR on the learned model's mean (mpc agent, part learned), and planning time "
                "per action of iLQR and the iCEM preset on the final model.",
            )  # fmt: skip
        )
        sentences.append(f"learned-model iLQR: steps to -200 per seed {per_seed(stay, never)}")
    backward = [r for r in records if r.get("part") == "backward"]
    if backward:
        used += [r["_index"] for r in backward]
        tables.append(
            table(
                [
                    "task",
                    "H",
                    "closed-form ms",
                    "Cholesky + box QP ms",
                    "speed-up",
                    "load",
                    "record",
                ],
                [
                    [
                        r["task"],
                        r["figures"]["horizon"],
                        fixed(r["figures"]["fast_cpu_ms"], 2),
                        fixed(r["figures"]["general_cpu_ms"], 2),
                        times(r["figures"]["speedup"]),
                        num((r.get("loadavg_before") or [None])[0]),
                        span([r["_index"]]),
                    ]
                    for r in backward
                ],
                "iLQR's backward pass with one action dimension (part backward): the closed-form "
                "step (a division and a clamp) against the general Cholesky and box-QP step, CPU "
                "milliseconds per pass, median over alternating repeats on the exact model.",
            )  # fmt: skip
        )
    pilco = [r for r in records if r.get("part") == "pilco"]
    if pilco:
        rows = []
        for task in dict.fromkeys(r["task"] for r in pilco):
            runs = [r for r in pilco if r["task"] == task]
            figs = [r["figures"] for r in runs]
            stay = [f["run"]["steps_to_threshold_and_stay"] for f in figs]
            final = [f["run"]["final_return"] for f in figs]
            cpu_min = [f["run"]["total_learn_cpu_s"] / 60 for f in figs]
            idx = [r["_index"] for r in runs]
            used += idx
            rows.append(
                [
                    task,
                    span([r["seeds"][0] for r in runs], ""),
                    figs[-1]["budget"],
                    num(figs[-1]["target"]),
                    per_seed(stay, never),
                    num(median(final)),
                    per_seed([fixed(c, 1) for c in cpu_min], str),
                    span(idx),
                ]
            )
            sentences.append(
                f"PILCO on {task}: steps to {num(figs[-1]['target'])} (reach and stay) "
                f"{per_seed(stay, never)} of {figs[-1]['budget']}, learning CPU "
                f"{per_seed([fixed(c, 1) for c in cpu_min], str)} min"
            )
        tables.append(
            table(
                [
                    "task",
                    "seeds",
                    "budget",
                    "target",
                    "steps to target (stay), per seed",
                    "median final return",
                    "learning CPU min, per seed",
                    "records",
                ],
                rows,
                "PILCO (part pilco, its presets): real steps until the evaluation return reaches "
                "the target and stays there, and CPU minutes of learning (model fits, policy "
                "improvements and acting; evaluations excluded). Target: each within 30 minutes "
                "of one core.",
            )  # fmt: skip
        )
    lqr = [r for r in records if r.get("part") == "lqr"]
    if lqr:
        figs = [r["figures"] for r in lqr]
        stay = [f["run"]["steps_to_threshold_and_stay"] for f in figs]
        used += [r["_index"] for r in lqr]
        tables.append(
            table(
                [
                    "task",
                    "seeds",
                    "budget",
                    "steps to 1000 (stay), per seed",
                    "median final return",
                    "records",
                ],
                [
                    [
                        "InvertedPendulum-v5",
                        span([r["seeds"][0] for r in lqr], ""),
                        figs[-1]["budget"],
                        per_seed(stay, never),
                        num(median([f["run"]["final_return"] for f in figs])),
                        span([r["_index"] for r in lqr]),
                    ]
                ],
                "LQR on a linear model fitted by least squares to the real data (part lqr, the "
                "lqr agent): refitted at each episode end, evaluated every 50 steps (3 episodes).",
            )  # fmt: skip
        )
        sentences.append(f"LQR on a learned linear model: steps to 1000 {per_seed(stay, never)}")
    hybrid = [r for r in records if r.get("part") == "hybrid"]
    if hybrid:
        used += [r["_index"] for r in hybrid]
        rows = []
        for model in dict.fromkeys(r["model"] for r in hybrid):
            runs = [r["figures"]["run"] for r in hybrid if r["model"] == model]
            stay = [x["steps_to_threshold_and_stay"] for x in runs]
            final = [x["final_return"] for x in runs]
            rows.append([model, len(runs), per_seed(stay, never), num(median(final))])
            sentences.append(f"PETS with the {model} model: steps to -200 {per_seed(stay, never)}")
        tables.append(
            table(
                ["model", "seeds", "steps to -200 (stay), per seed", "median final return"],
                rows,
                "PETS on Pendulum-v1 with physics 30% wrong (part hybrid).",
            )
        )
    return Section(
        conclusion="; ".join(sentences) + "." if sentences else "No record yet.",
        tables=tables,
        method=(
            "`benchmarks/classical.py`, one torch thread. Part known: MPC with iLQR (projected "
            "box constraints, at most `--iterations` iterations per plan, warm-started from the "
            "shifted plan, with `multi_start` from the lowest-cost of it and five fixed plans "
            "unless the record says otherwise) on the env's exact analytic dynamics and known "
            "reward, `--episodes` "
            "episodes per seed reset with `derive_seed(seed, 'classical', i)`; planning time is "
            "the wall (and CPU) time of each `MPC.act` call. Part learned: the `mpc` agent with "
            "`planner.kind=ilqr`, H 30, evaluated every 200 steps (3 episodes); then both "
            "planners time 50 actions on its final model. Part hybrid: PETS with its Pendulum "
            "preset and `model.kind` ensemble, hybrid or analytic (`--wrong` mass and length). "
            "Parts pilco and lqr: the agents with their presets (`PILCO_TASKS` budgets), "
            "evaluated on the agent's schedule; reach-and-stay over the evaluations."
        ),
        used=f"records {span(sorted(used))}",
    )
