"""Report formatter of the SAC and MBPO family (``results/mbpo.json``, written by
``benchmarks/mbpo.py``): SAC against SB3, MBPO on Pendulum, InvertedPendulum and Hopper, and
the SAC update rate. :func:`runs_by_part` also feeds the script's plot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import _stats
from _report import (
    NOT_MEASURED,
    Headline,
    Section,
    args_of,
    choose,
    fixed,
    formatter,
    is_legacy,
    legacy_notice,
    median,
    never,
    num,
    reach,
    record_label,
    stat_cells,
    stay_cell,
    steps,
    table,
    times,
)

PARTS = ("sac", "pendulum", "inverted", "hopper")
STOPPED_IN_LEGACY = ("pendulum", "inverted")  # the old script stopped these at the threshold
STOPPED = "n/a (stopped)"
CONFIG = {  # the arguments a part's runs depend on
    "sac": ("sac_steps", "learning_starts"),
    "pendulum": ("steps",),
    "inverted": ("steps", "sac_inverted_steps"),
    "hopper": ("steps",),
    "rates": ("rates_steps", "repeats", "rates_runs"),
}


def _with_figures(run: dict[str, Any] | None, threshold: float | None, stopped: bool) -> Any:
    """A stored run with its threshold figures recomputed from its curve (legacy runs have the
    old keys only; a run stopped at its crossing does not measure reach-and-stay)."""
    if not run or not run.get("curve"):
        return run or None
    return {**run, **_stats.curve_figures(run["curve"], threshold, stopped)}


def runs_by_part(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Every stored run, by part: ``{"record", "seed", "env", "threshold", "source", and
    "ours"/"sb3"/"rates" (part sac) or "mbpo"/"sac"}``, with the threshold figures."""
    out: dict[str, list[dict[str, Any]]] = {p: [] for p in (*PARTS, "rates")}
    for rec in records:
        f = rec["figures"]
        if is_legacy(rec):
            for part in PARTS:
                if part not in f:
                    continue
                entry = f[part]
                threshold = -200.0 if part == "sac" else entry["threshold"]
                env = "Pendulum-v1" if part == "sac" else entry["env"]
                stopped = part in STOPPED_IN_LEGACY
                seeds = entry["per_seed" if part == "sac" else "runs"]
                for seed, r in seeds.items():
                    run = {"record": rec, "seed": int(seed), "env": env, "threshold": threshold}
                    for key, value in r.items():
                        run[key] = _with_figures(value, threshold, stopped and key != "rates")
                    run["source"] = (r.get("mbpo") or {}).get("source")
                    out[part].append(run)
            if "rates" in f:
                out["rates"].append({"record": rec, **f["rates"]})
        elif rec.get("part") == "rates":
            out["rates"].append({"record": rec, **f["rates"]})
        else:
            run = {
                "record": rec,
                "seed": rec["seeds"][0],
                "env": f["env"],
                "threshold": f["threshold"],
                "source": None,
            }
            for key in ("ours", "sb3", "rates", "mbpo", "sac"):
                if f.get(key):
                    run[key] = _with_figures(f[key], f["threshold"], False)
            out[rec["part"]].append(run)
    return out


def _choose_part(runs: list[dict[str, Any]], part: str) -> tuple[list[dict[str, Any]], str]:
    """The runs of the records :func:`_report.choose` picks for ``part``."""
    recs = list({id(r["record"]): r["record"] for r in runs}.values())
    chosen = choose(
        recs, lambda r: tuple(str(args_of(r).get(k)) for k in CONFIG[part]), what=f"{part}: records"
    )
    used = [r for r in runs if any(r["record"] is u for u in chosen.used)]
    return sorted(used, key=lambda r: (r["record"]["_index"], r.get("seed", 0))), chosen.note


def _curve_cells(run: dict[str, Any] | None) -> list[str]:
    """Stays from, first crossing, final eval, last-5 mean (the last two only for runs that ran
    their whole budget: a stopped run's last eval is its crossing)."""
    if not run:
        return ["-"] * 4
    full = run["stay_measured"] or run["threshold"] is None
    return [
        stay_cell(run),
        never(run["first_crossing"]),
        num(run["final_return"]) if full else STOPPED,
        num(run["last5_mean"]) if full else STOPPED,
    ]


def _reach(runs: list[dict[str, Any]], threshold: float) -> tuple[str, list[Any], str]:
    label, values, clause = reach(runs, threshold)
    return label, values, clause.replace("runs hold", "runs of both agents hold")


def _per_1k(run: dict[str, Any] | None, kind: str) -> float | None:
    if not run or not run.get("total_steps"):
        return None
    return 1000 * run[f"total_learn_{kind}_s"] / run["total_steps"]


def _summary(runs: list[dict[str, Any]], key: str, label: str) -> list[list[str]]:
    have = [r[key] for r in runs if r.get(key)]
    if not have:
        return []
    full = [r for r in have if r["stay_measured"]]
    stay = [r["steps_to_threshold_and_stay"] for r in full]
    last5 = stat_cells([r["last5_mean"] for r in full]) if full else [STOPPED] * 2
    return [
        [
            label,
            *stat_cells([r["first_crossing"] for r in have], steps),
            stat_cells(stay, steps)[0] if stay else NOT_MEASURED,
            *last5,
        ]
    ]


SUMMARY_HEADER = [
    "agent",
    "first crossing: median [95% CI]",
    "IQM [95% CI]",
    "stays from: median [95% CI]",
    "last 5 evals: median [95% CI]",
    "IQM [95% CI]",
]


@dataclass
class _Out:
    """What the parts add up to."""

    tables: list[str] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)
    headline: list[Headline] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    used: list[str] = field(default_factory=list)
    records: dict[int, dict[str, Any]] = field(default_factory=dict)

    def use(self, runs: list[dict[str, Any]], note: str) -> None:
        self.used.append(note)
        self.records |= {r["record"]["_index"]: r["record"] for r in runs}


def _sac_part(out: _Out, runs: list[dict[str, Any]]) -> None:
    """Our SAC against SB3's on Pendulum-v1."""
    rows = [
        [
            r["seed"],
            record_label(r["record"]),
            *_curve_cells(r.get("ours")),
            *_curve_cells(r.get("sb3")),
            fixed(_per_1k(r.get("ours"), "cpu"), 1),
            fixed(_per_1k(r.get("sb3"), "cpu"), 1),
            times((r.get("rates") or {}).get("ratio")),
        ]
        for r in runs
    ]
    header = ["seed", "record", "ours: evals stay >= -200 from", "first crossing", "final"]
    header += ["last 5", "SB3: stays from", "first crossing", "final", "last 5"]
    header += ["ours CPU s per 1k steps", "SB3 CPU s per 1k", "update rate ours/SB3 after learning"]
    out.tables.append(
        table(
            header,
            rows,
            "Pendulum-v1, SAC with SB3's defaults on both sides (learning_starts as stored), 5 "
            "deterministic eval episodes every 500 steps.",
        )
    )
    summary = _summary(runs, "ours", "ours SAC") + _summary(runs, "sb3", "SB3 SAC")
    out.tables.append(table(SUMMARY_HEADER, summary, "SAC over seeds."))
    ours = [r["ours"] for r in runs if r.get("ours")]
    sb3 = [r["sb3"] for r in runs if r.get("sb3")]
    label, both, clause = _reach(ours + sb3, -200.0)
    o, s = both[: len(ours)], both[len(ours) :]
    out.sentences.append(
        f"on Pendulum-v1, {label}: our SAC median {steps(median(o))} (seeds "
        f"{' / '.join(never(v) for v in o)}), SB3's {steps(median(s))} ({clause}); last-5 eval "
        f"mean {num(median([r['last5_mean'] for r in ours]))} and "
        f"{num(median([r['last5_mean'] for r in sb3]))}"
    )


def _threshold_part(
    out: _Out, part: str, runs: list[dict[str, Any]], sac_runs: list[dict[str, Any]]
) -> None:
    """MBPO against our SAC in real steps to a threshold (Pendulum's SAC runs are part sac's)."""
    env, threshold = runs[0]["env"], runs[0]["threshold"]
    rows = []
    for r in runs:
        ph = (r.get("mbpo") or {}).get("phases") or {}
        rows.append(
            [
                r["seed"],
                record_label(r["record"]),
                *_curve_cells(r.get("mbpo")),
                *_curve_cells(r.get("sac"))[:2],
                fixed(ph.get("model_s_per_step"), 3),
                fixed(ph.get("rollout_s_per_step"), 4),
                fixed(ph.get("sac_s_per_step"), 3),
                fixed(ph.get("total_cpu_s_per_step"), 3),
            ]
        )
    header = ["seed", "record", f"MBPO: evals stay >= {threshold:g} from", "first crossing"]
    header += ["final", "last 5", "our SAC: stays from", "first crossing"]
    header += ["MBPO s per real step: model", "rollouts", "SAC updates", "total CPU"]
    pendulum = part == "pendulum"
    which = " (Pendulum's SAC runs are part sac's, above)" if pendulum else " and our SAC"
    out.tables.append(table(header, rows, f"{env}: MBPO{which}."))
    ref, key = (sac_runs, "ours") if pendulum else (runs, "sac")
    summary = _summary(runs, "mbpo", "MBPO") + _summary(ref, key, "our SAC")
    if pendulum:
        summary += _summary(sac_runs, "sb3", "SB3 SAC")
    out.tables.append(table(SUMMARY_HEADER, summary, f"{env} over seeds."))
    mine = [r["mbpo"] for r in runs]
    theirs = [r[key] for r in ref if r.get(key)]
    # one kind of figure for both sides: reach-and-stay only if every run measured it
    label, both, clause = _reach(mine + theirs, threshold)
    m_vals, s_vals = both[: len(mine)], both[len(mine) :]
    per_seed = " / ".join(never(v) for v in m_vals)
    out.sentences.append(
        f"on {env}, {label}: MBPO median {steps(median(m_vals))} (seeds {per_seed}), our SAC "
        f"{steps(median(s_vals))} ({clause})"
    )
    cell = f"MBPO **{steps(median(m_vals))}** ({per_seed})"
    if s_vals:
        cell += f" vs our SAC **{steps(median(s_vals))}**"
    if typed := [str(r["seed"]) for r in runs if r.get("source")]:
        out.notes.append(
            f"{env} seed(s) {', '.join(typed)}: typed into the old JSON by hand from a run's "
            "printed output (its `source` field), not written by the script."
        )
        cell += f"; seed {', '.join(typed)} typed in by hand"
    if pendulum:
        out.headline.append(
            Headline(
                f"MBPO vs SAC, {env}: {label} (5-episode evals, median)"
                + ("; runs stopped there" if "first" in label else ""),
                cell,
                tuple(sorted({r["record"]["_index"] for r in runs + ref})),
            )
        )


def _hopper_part(out: _Out, runs: list[dict[str, Any]]) -> None:
    """MBPO against our SAC on Hopper-v5 at a fixed budget: the last evals."""
    rows = []
    for r in runs:
        m, s = r.get("mbpo") or {}, r.get("sac") or {}
        best = [max(p["return"] for p in x["curve"]) if x else None for x in (m, s)]
        rows.append(
            [
                r["seed"],
                record_label(r["record"]),
                num(m.get("last5_mean")),
                num(m.get("final_return")),
                num(best[0]),
                num(s.get("last5_mean")),
                num(s.get("final_return")),
                num(best[1]),
                fixed((m.get("phases") or {}).get("total_cpu_s_per_step"), 3),
                fixed(_per_1k(s, "cpu"), 1),
            ]
        )
    header = ["seed", "record", "MBPO last 5", "final", "best", "our SAC last 5", "final"]
    header += ["best", "MBPO CPU s per real step", "SAC CPU s per 1k steps"]
    caption = "Hopper-v5: mean of the last 5 evals (5 episodes every 1000 steps)."
    out.tables.append(table(header, rows, caption))
    summary = [
        [name, *stat_cells([r[k]["last5_mean"] for r in runs if r.get(k)])]
        for name, k in (("MBPO", "mbpo"), ("our SAC", "sac"))
    ]
    out.tables.append(table(["agent", *SUMMARY_HEADER[-2:]], summary, "Hopper-v5 over seeds."))
    m5 = median([r["mbpo"]["last5_mean"] for r in runs])
    s5 = median([r["sac"]["last5_mean"] for r in runs if r.get("sac")])
    budget = runs[0]["mbpo"]["last_step"]
    out.sentences.append(
        f"on Hopper-v5 after {budget} real steps MBPO's last-5 eval mean is {num(m5)} against "
        f"our SAC's {num(s5)} (medians of {len(runs)} seeds)"
    )
    out.headline.append(
        Headline(
            f"MBPO vs our SAC, Hopper-v5, {budget} real steps, {len(runs)} seeds: mean of the "
            "last 5 evals (median)",
            f"MBPO **{num(m5)}** vs SAC **{num(s5)}**",
            tuple(sorted({r["record"]["_index"] for r in runs})),
        )
    )


def _rates_part(out: _Out, rates: list[dict[str, Any]]) -> None:
    """Updates/s of each library's own SAC update call, every run of every used record."""
    runs = [(r["record"], k, run) for r in rates for k, run in enumerate(r["runs"])]
    rows = [
        [
            record_label(rec),
            k,
            num(run["ours_updates_per_s"]),
            num(run["sb3_updates_per_s"]),
            times(run["ratio"]),
            times(run["ratio_cpu"]),
        ]
        for rec, k, run in runs
    ]
    ratios = [run["ratio"] for _, _, run in runs]
    cpu = median([run["ratio_cpu"] for _, _, run in runs])
    rows.append(["all", "median", "", "", times(median(ratios)), times(cpu)])
    out.tables.append(
        table(
            ["record", "run", "ours updates/s", "SB3 updates/s", "ours / SB3", "per CPU s"],
            rows,
            "SAC update at batch 256, 256x256 networks, 1 thread, each library's own update call "
            "on its own filled buffer, alternating blocks of 200 (median of the blocks).",
        )
    )
    out.sentences.append(
        f"our SAC update runs at {times(median(ratios))} SB3's rate (median of {len(ratios)} "
        f"runs in {len(rates)} invocation(s): {', '.join(times(x) for x in ratios)})"
    )
    out.headline.append(
        Headline(
            "SAC update, batch 256, 1 thread: ours vs SB3 updates/s",
            f"**{times(median(ratios))}** (median of {len(ratios)} runs, {len(rates)} "
            "invocation(s))",
            tuple(sorted({r["record"]["_index"] for r in rates})),
        )
    )


@formatter(
    "mbpo",
    "SAC and MBPO",
    "SAC against SB3, and MBPO against SAC",
    ".bench/bin/python benchmarks/mbpo.py --part sac pendulum inverted",
)
def mbpo(records: list[dict[str, Any]]) -> Section:
    parts = runs_by_part(records)
    chosen = {name: _choose_part(runs, name) for name, runs in parts.items() if runs}
    out = _Out()
    for name, (runs, note) in chosen.items():
        out.use(runs, note)
        if name == "sac":
            _sac_part(out, runs)
        elif name in ("pendulum", "inverted"):
            _threshold_part(out, name, runs, chosen.get("sac", ([], ""))[0])
        elif name == "hopper":
            _hopper_part(out, runs)
        else:
            _rates_part(out, runs)
    legacy = legacy_notice([out.records[k] for k in sorted(out.records)])
    return Section(
        conclusion=f"Over the stored seeds, {'; '.join(out.sentences)}.",
        tables=out.tables,
        method=(
            "`mb.SAC` (Stable-Baselines3's defaults) and `mb.MBPO`: Pendulum with the tuned "
            "preset (7x4x200 ensemble, refit every 200 steps, 400 rollouts per step of length 1, "
            "G = 20 updates per real step, real_ratio 0.05), InvertedPendulum-v5 and Hopper-v5 "
            "with the paper's presets. Evaluations: 5 deterministic episodes, every 100 steps "
            "(Pendulum), 250 (InvertedPendulum) or 1000 (Hopper, SAC baselines). No run stops "
            "at a threshold: *stays from* is the first eval step from which every later eval is "
            ">= the threshold (`benchmarks/_stats.py`); runs of the old script that stopped at "
            "their first crossing say *not measured*. MBPO's seconds per real step after the "
            "random phase are split by the agent's own phase timers. torch on 1 thread."
        ),
        used="; ".join(out.used),
        plot="mbpo.png",
        headline=out.headline,
        notes=legacy + out.notes,
    )
