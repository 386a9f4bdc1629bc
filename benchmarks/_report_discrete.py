"""Report formatter of discrete actions on CartPole-v1: PETS, MBPO and SAC-discrete
(``benchmarks/discrete.py``) beside SB3's DQN and PPO as stored in results/muzero.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from _report import Section, formatter, never, num, per_seed, span, stat_cells, table

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {"pets": 3_000, "mbpo": 10_000, "sac": 30_000}  # issue 19: 475 within these steps
LABELS = {"pets": "PETS (categorical CEM)", "mbpo": "MBPO (SAC-discrete)", "sac": "SAC-discrete"}
BASELINE_LABELS = {"dqn": "SB3 DQN (rl-zoo)", "ppo": "SB3 PPO (rl-zoo)"}
BASELINE_STEPS = 60_000  # the full-length baseline runs of muzero.py


def baselines() -> dict[str, list[dict[str, Any]]]:
    """SB3 DQN and PPO runs of ``results/muzero.json`` at ``BASELINE_STEPS``, one per seed
    (the latest record of each), each with its record index under ``_index``."""
    path = RESULTS / "muzero.json"
    records = json.loads(path.read_text()) if path.exists() else []
    out: dict[str, dict[int, dict[str, Any]]] = {"dqn": {}, "ppo": {}}
    for index, r in enumerate(records):
        if (r.get("args") or {}).get("baseline_steps") != BASELINE_STEPS:
            continue
        for key in out:
            if key in r.get("figures", {}):
                out[key][r["seeds"][0]] = {
                    **r["figures"][key],
                    "_index": index,
                    "_seed": r["seeds"][0],
                }
    return {k: [v[s] for s in sorted(v)] for k, v in out.items()}


def _row(record: dict[str, Any]) -> list[Any]:
    part = record["figures"]["algo"]
    run = record["figures"][part]
    phases = ", ".join(
        f"{k.removesuffix('_cpu_s_per_step')} {num(1000 * v)}"
        for k, v in (run.get("phases") or {}).items()
        if k.endswith("_cpu_s_per_step")
    )
    return [
        f"#{record['_index']}",
        LABELS[part],
        span(record["seeds"], prefix=""),
        never(run["steps_to_threshold_and_stay"]),
        never(run["first_crossing"]),
        num(run["final_return"]),
        num(run["last5_mean"]),
        num(run["learn_cpu_s_to_steps_to_threshold_and_stay"]),
        num(run["total_learn_cpu_s"]),
        run["total_steps"],
        f"{run['eval_episodes']} / {run['eval_every']}",
        phases or "-",
    ]


def _summary(label: str, runs: list[dict[str, Any]], target: int | None, source: str) -> list:
    stays = [r["steps_to_threshold_and_stay"] for r in runs]
    within = (
        "-"
        if target is None
        else f"{sum(s is not None and s <= target for s in stays)} of {len(stays)}"
    )
    return [
        label,
        source,
        len(runs),
        per_seed(stays, never),
        *stat_cells(stays, never),
        "-" if target is None else f"{target:,}",
        within,
    ]


@formatter(
    "discrete",
    "SAC and MBPO",
    "Discrete actions on CartPole-v1 (PETS, MBPO, SAC-discrete)",
    "python benchmarks/discrete.py --part pets mbpo sac --seeds 0 1 2 --resume",
)
def discrete(records: list[dict[str, Any]]) -> Section:
    ours = [r for r in records if r.get("figures", {}).get("algo") in TARGETS]
    by_part = {p: [r for r in ours if r["figures"]["algo"] == p] for p in TARGETS}
    peers = baselines()
    summary = []
    parts = []
    for part, target in TARGETS.items():
        runs = [r["figures"][part] for r in by_part[part]]
        if not runs:
            parts.append(f"{LABELS[part]}: not measured")
            continue
        source = span([r["_index"] for r in by_part[part]])
        summary.append(_summary(LABELS[part], runs, target, source))
        stays = [r["steps_to_threshold_and_stay"] for r in runs]
        held = sum(s is not None and s <= target for s in stays)
        parts.append(
            f"{LABELS[part]} reaches and holds 475 within {target:,} env steps in {held} of "
            f"{len(runs)} seeds (stays from {per_seed(stays, never)})"
        )
    for key, runs in peers.items():
        if runs:
            source = "muzero.json " + span([r["_index"] for r in runs])
            summary.append(_summary(BASELINE_LABELS[key], runs, None, source))
    tables = [
        table(
            [
                "agent",
                "records",
                "seeds",
                "stays >= 475 from, per seed",
                "median [95% CI]",
                "IQM [95% CI]",
                "target (env steps)",
                "seeds within target",
            ],
            summary,
            "Real env steps from which the eval return stays >= 475 to the end of the run "
            "(never: the last eval is below it).",
        ),
        table(
            [
                "record",
                "agent",
                "seed",
                "stays >= 475 from",
                "first >= 475",
                "final",
                "last-5 mean",
                "learning CPU s to stay",
                "learning CPU s total",
                "env steps",
                "eval episodes / every",
                "CPU ms per env step by phase",
            ],
            [_row(r) for r in ours],
            "Every run; learning time leaves the evaluations out; torch on 1 thread.",
        ),
    ]
    return Section(
        conclusion="; ".join(parts) + ".",
        tables=tables,
        method=(
            "`benchmarks/discrete.py` trains each agent with its CartPole-v1 preset for the "
            "issue's budget (PETS 3k, MBPO 10k, SAC-discrete 30k env steps) and evaluates it "
            "deterministically (PETS every 500 steps on 5 episodes, each step a plan; MBPO every "
            "500 and SAC every 1000 on 10). PETS plans by CEM over per-step categorical "
            "distributions with the CartPole planning reward; MBPO and SAC use SAC-discrete "
            "(Christodoulou 2019). SB3 DQN and PPO (rl-zoo settings, 60k steps, 10 episodes "
            "every 1000 steps) are the records of `benchmarks/muzero.py --part baselines` in "
            "`results/muzero.json`, read as stored."
        ),
        used="every record of discrete.json, one row per run; SB3 rows from muzero.json",
        notes=[
            "Medians over seeds are claimed only where three seeds are listed.",
            "Wall-clock time is not compared: the machine was shared (see each record's load).",
        ],
    )
