"""Report formatter of ``results/tdmpc.json`` (written by ``benchmarks/tdmpc.py``): TD-MPC2's
real steps to each task's threshold and its CPU time per real step, with the stored PETS
(``pets_tasks.json``), MBPO and SAC (``mbpo.json``) figures for the same task beside it, and
the planning/update speed part."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from _report import (
    Headline,
    Section,
    formatter,
    is_legacy,
    median,
    never,
    num,
    per_seed,
    span,
    table,
)
from _report_mbpo import _choose_part, runs_by_part
from _report_pets import _task_runs

RESULTS = Path(__file__).resolve().parent / "results"
TASKS = {  # part: (env, PETS task in pets_tasks.json, MBPO/SAC part in mbpo.json)
    "pendulum": ("Pendulum-v1", None, "pendulum"),
    "inverted": ("InvertedPendulum-v5", "inverted", "inverted"),
    "swingup": ("modelbased/CartPoleSwingUp-v0", "swingup", None),
    "hopper": ("Hopper-v5", None, "hopper"),
    "cartpole": ("CartPole-v1", None, None),
}


def _load(name: str) -> list[dict[str, Any]]:
    path = RESULTS / f"{name}.json"
    records = json.loads(path.read_text()) if path.exists() else []
    return [{**r, "_index": k} for k, r in enumerate(records)]


def _threshold_figure(run: dict[str, Any] | None) -> Any:
    """Reach-and-stay when measured, else the first crossing; ``None``: never."""
    if not run:
        return None
    if run.get("stay_measured"):
        return run.get("steps_to_threshold_and_stay")
    return run.get("first_crossing")


def _peers(part: str) -> list[list[str]]:
    """Rows for PETS, MBPO and our SAC on ``part``'s task from their stored records."""
    _, pets_task, mbpo_part = TASKS[part]
    rows = []
    if pets_task:
        runs = _task_runs(_load("pets_tasks"), pets_task)
        runs = [r for r in runs if not is_legacy(r["record"])] or runs  # legacy: if alone
        if runs:
            stays = [r["stay"] if r["stay_measured"] else r["first"] for r in runs]
            kind = "stay" if all(r["stay_measured"] for r in runs) else "first crossing"
            recs = sorted({r["record"]["_index"] for r in runs})
            rows.append(["PETS", f"{never(median(stays))} ({kind}; {per_seed(stays, never)})",
                         num(median([r["last5"] for r in runs])),
                         "-", f"`pets_tasks.json` {span(recs)}"])  # fmt: skip
    if mbpo_part:
        by_part = runs_by_part(_load("mbpo"))
        sources = [("mbpo", mbpo_part, "MBPO"), ("sac", mbpo_part, "SAC (ours)")]
        if part == "pendulum":  # our SAC on Pendulum is the "sac" part's "ours"
            sources[1] = ("ours", "sac", "SAC (ours)")
        for key, mpart, label in sources:
            chosen, _ = _choose_part(by_part[mpart], mpart) if by_part[mpart] else ([], "")
            have = [r for r in chosen if r.get(key)]
            if not have:
                continue
            figs = [_threshold_figure(r[key]) for r in have]
            measured = all(r[key].get("stay_measured") for r in have)
            kind = "stay" if measured else "first crossing"
            full = [r[key] for r in have if r[key].get("stay_measured") or r["threshold"] is None]
            last5 = [x.get("last5_mean") for x in full]
            cpu = [(r[key].get("phases") or {}).get("total_cpu_s_per_step") for r in have]
            cpu = [c for c in cpu if c is not None]
            recs = sorted({r["record"]["_index"] for r in have})
            reached = f"{never(median(figs))} ({kind}; {per_seed(figs, never)})"
            rows.append([label, reached if have[0]["threshold"] is not None else "-",
                         num(median(last5)) if last5 else "-",
                         num(median(cpu)) if cpu else "-",
                         f"`mbpo.json` {span(recs)}"])  # fmt: skip
    if part == "cartpole":  # SB3's PPO and DQN (rl-zoo) and MuZero from muzero.json
        records = _load("muzero")
        for rpart, key, label in (("cartpole", "muzero", "MuZero"),
                                  ("baseline-ppo", "ppo", "SB3 PPO (rl-zoo)"),
                                  ("baseline-dqn", "dqn", "SB3 DQN (rl-zoo)")):  # fmt: skip
            have = [r for r in records if r.get("part") == rpart and r["figures"].get(key)]
            if not have:
                continue
            longest = max(r["figures"][key]["last_step"] for r in have)  # the latest budget
            have = [r for r in have if r["figures"][key]["last_step"] == longest]
            figs = [r["figures"][key]["steps_to_threshold_and_stay"] for r in have]
            last5 = [r["figures"][key]["last5_mean"] for r in have]
            rows.append([label, f"{never(median(figs))} (stay; {per_seed(figs, never)})",
                         num(median(last5)), "-",
                         f"`muzero.json` {span([r['_index'] for r in have])}"])  # fmt: skip
    return rows


def _runs(records: list[dict[str, Any]], part: str) -> list[dict[str, Any]]:
    return sorted(
        (r for r in records if r.get("part") == part), key=lambda r: (r["seeds"][0], r["_index"])
    )


@formatter(
    "tdmpc", "PETS and MPC", "TD-MPC2 beside PETS, MBPO and SAC", "python benchmarks/tdmpc.py"
)
def tdmpc(records: list[dict[str, Any]]) -> Section:
    tables, headline, conclusions = [], [], []
    for part, (env, _, _) in TASKS.items():
        runs = _runs(records, part)
        if not runs:
            continue
        threshold = runs[-1]["figures"]["threshold"]
        results = [r["figures"]["tdmpc"] for r in runs]
        figs = [_threshold_figure(x) for x in results]
        cpu = [x.get("cpu_s_per_real_step") for x in results]
        phases = [r["figures"].get("phases") or {} for r in runs]
        rows = [
            [
                f"TD-MPC2 seed {r['seeds'][0]}",
                never(f) if threshold is not None else "-",
                num(x["last5_mean"]),
                f"{num(c)} (plan {num(p.get('plan_cpu_s_per_step'))}, "
                f"update {num(p.get('update_cpu_s_per_step'))})",
                f"#{r['_index']}",
            ]
            for r, x, f, c, p in zip(runs, results, figs, cpu, phases, strict=True)
        ]
        idx = tuple(r["_index"] for r in runs)
        if len(runs) > 1:
            last5 = median([x["last5_mean"] for x in results])
            rows.append(
                ["TD-MPC2 median", never(median(figs)), num(last5), num(median(cpu)), span(idx)]
            )
        rows += _peers(part)
        budget = runs[-1]["figures"]["budget"]
        what = (
            f"real steps from which the evals stay >= {threshold:g}"
            if threshold is not None
            else "no threshold"
        )
        tables.append(
            table(
                ["agent", what, "last-5 eval mean", "CPU s per real step", "records"],
                rows,
                f"{env}, budget {budget} real steps (peers: their stored runs and budgets)",
            )
        )
        seeds = [r["seeds"][0] for r in runs]
        firsts = [x.get("first_crossing") for x in results]
        conclusions.append(
            f"{env}: TD-MPC2 first reaches {threshold:g} at step {per_seed(firsts, never)} and "
            f"holds it to the end of its budget from step {per_seed(figs, never)} (seeds "
            f"{per_seed(seeds, str)})"
            if threshold is not None
            else f"{env}: last-5 mean {per_seed([x['last5_mean'] for x in results])}"
        )
        if threshold is not None:
            headline.append(
                Headline(
                    f"TD-MPC2, {env}: real steps from which the evals stay >= {threshold:g}",
                    f"**{never(median(figs))}** (seeds {per_seed(seeds, str)}; CPU "
                    f"{num(median(cpu))} s per real step)",
                    idx,
                )
            )
    speed = [r for r in records if r.get("part") == "speed"]
    if speed:
        last = speed[-1]
        rows = [
            [k, num(v["plan_ms"]), num(v["update_ms"])] for k, v in last["figures"]["speed"].items()
        ]
        header = ["model / planner", "plan CPU ms per action", "update CPU ms per step"]
        caption = f"Planning and update time, 1 thread (record #{last['_index']})"
        tables.append(table(header, rows, caption))
    return Section(
        conclusion=("; ".join(conclusions) or "only the speed part is stored") + ".",
        tables=tables,
        method=(
            "Each part runs the task's preset (`modelbased/presets/tdmpc.yaml`) for its whole "
            "budget, evaluating on the preset's schedule; reach-and-stay is the first eval from "
            "which every later eval is >= the threshold. CPU s per real step: the learning CPU "
            "time (evaluations excluded) over the steps after the random seed steps, split by the "
            "agent's phase timers into planning training actions and model/policy updates. The "
            "peer rows are their stored records (their own budgets and eval schedules); MBPO's "
            "CPU per real step is its model+rollout+SAC time after its random phase."
        ),
        used="every stored record of each part, one per seed; peers: every stored run of the task",
        headline=[],  # the README's table is full (12 rows); the lead picks what goes there
    )
