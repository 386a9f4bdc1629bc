"""Report formatters of the speed family: the fused Dyna-Q planning call, FusedAdam's kernel
path, and before/after comparisons of two revisions."""

from __future__ import annotations

from typing import Any

from _report import (
    Section,
    choose,
    fixed,
    formatter,
    legacy_notice,
    median,
    num,
    per_seed,
    record_label,
    table,
    times,
)


@formatter("dyna_speed", "Speed", "Dyna-Q: fused planning call", "python benchmarks/dyna_speed.py")
def dyna_speed(records: list[dict[str, Any]]) -> Section:
    chosen = choose(records, lambda r: (r["args"]["steps"], r["args"]["ns"]))
    by_n: dict[int, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for rec in chosen.used:
        for res in rec["figures"]["results"]:
            by_n.setdefault(res["n"], []).append((rec, res))
    rows, med = [], {}
    for n, pairs in sorted(by_n.items()):
        for rec, res in pairs:
            rows.append(
                [
                    n,
                    record_label(rec),
                    num(res["fused"]["steps_per_s"]),
                    num(res["general"]["steps_per_s"]),
                    times(res["ratio_fused_over_general"]),
                    times(res["ratio_fused_over_general_cpu"]),
                    times(res["median_paired_ratio"]),
                    times(res["plan_call_speedup"]),
                ]
            )
        med[n] = median([res["ratio_fused_over_general"] for _, res in pairs])
        rows.append(
            [
                n,
                "median",
                "",
                "",
                times(med[n]),
                times(median([res["ratio_fused_over_general_cpu"] for _, res in pairs])),
                times(median([res["median_paired_ratio"] for _, res in pairs])),
                times(median([res["plan_call_speedup"] for _, res in pairs])),
            ]
        )
    steps = chosen.used[-1]["args"]["steps"]
    return Section(
        conclusion=(
            f"Over {len(chosen.used)} record(s), the fused planning call gives "
            + ", ".join(f"{times(v)} (n = {n})" for n, v in sorted(med.items()))
            + " the real steps/s of the general path (medians of the records' ratios)."
        ),
        tables=[
            table(
                [
                    "n",
                    "record",
                    "fused real steps/s",
                    "general real steps/s",
                    "fused / general",
                    "per CPU s",
                    "median of paired runs",
                    "plan(n) call speedup",
                ],
                rows,
                f"DynaQ on `modelbased/DynaMaze-v0`, {steps} real steps per timed run, medians of "
                "the alternating repeats.",
            )
        ],
        method=(
            "`DynaQ` with a last-seen model runs planning as one compiled call "
            "(`dyna_q_planning`); the general path samples pairs then runs the compiled "
            "sequential updates. Both draw the same pairs from the agent's rng and give the same "
            "Q table. Real steps/s of `agent.learn` from a fresh agent (no evaluations, no "
            "logging), both paths alternating, the one going first alternating too; and "
            "microseconds per `agent.plan(n)` call on a filled model."
        ),
        used=chosen.note,
        notes=legacy_notice(chosen.used),
    )


@formatter(
    "fused_adam",
    "Speed",
    "FusedAdam: the direct kernel call against its public fallback",
    "python benchmarks/fused_adam.py",
)
def fused_adam(records: list[dict[str, Any]]) -> Section:
    chosen = choose(records, lambda r: (r["args"]["block"], r["args"]["batch"]))
    rows = []
    for rec in chosen.used:
        f = rec["figures"]
        us = f.get("step_us")
        step = (
            " / ".join(
                f"{us['kernel'][k]:.0f} vs {us['fallback'][k]:.0f}"
                for k in ("actor_optimizer", "critic_optimizer", "alpha_optimizer")
            )
            if us
            else "-"
        )
        rows.append(
            [
                record_label(rec),
                num(f["results"]["kernel"]["updates_per_s"]),
                num(f["results"]["fallback"]["updates_per_s"]),
                times(f["ratio_kernel_over_fallback"], 3),
                times(f["ratio_kernel_over_fallback_cpu"], 3),
                times(f["median_paired_ratio"], 3),
                step,
            ]
        )
    wall = [r["figures"]["ratio_kernel_over_fallback"] for r in chosen.used]
    cpu = [r["figures"]["ratio_kernel_over_fallback_cpu"] for r in chosen.used]
    rows.append(["median", "", "", times(median(wall), 3), times(median(cpu), 3), "", ""])
    return Section(
        conclusion=(
            f"Over {len(wall)} record(s) the direct kernel call gives {times(median(wall), 3)} "
            f"the SAC updates/s of the public fallback (median; per record "
            f"{per_seed(wall, lambda x: fixed(x, 3))}), {times(median(cpu), 3)} per CPU second."
        ),
        tables=[
            table(
                [
                    "record",
                    "kernel updates/s",
                    "fallback updates/s",
                    "kernel / fallback",
                    "per CPU s",
                    "median of paired blocks",
                    "step us, kernel vs fallback (actor / critic / alpha)",
                ],
                rows,
                "`SACUpdate.update` at batch 256, 256x256 networks, Hopper's sizes, 1 thread; "
                "medians of alternating blocks.",
            )
        ],
        method=(
            "`FusedAdam` calls `torch._fused_adam_` directly where a feature test says it works, "
            "else wraps `torch.optim.Adam(fused=True)`. Two seeded `SACUpdate`s, one per path, "
            "update on a fixed random batch in alternating blocks (the side going first "
            "alternates); then each optimizer's `step` alone is timed the same way."
        ),
        used=chosen.note,
        notes=legacy_notice(chosen.used),
    )


@formatter(
    "before_after",
    "Speed",
    "Before/after speed checks of a change",
    ".bench/bin/python benchmarks/before_after.py --before REV --after REV",
)
def before_after(records: list[dict[str, Any]]) -> Section:
    latest = records[-1]
    comparisons = latest["figures"]["comparisons"]
    rows = [
        [
            c["label"],
            "higher" if c["higher_is_better"] else "lower",
            num(c["before_median"]),
            num(c["after_median"]),
            times(c["ratio_after_over_before"], 3),
            c["verdict"],
        ]
        for c in comparisons.values()
    ]
    verdicts = [c["verdict"] for c in comparisons.values()]
    before, after = latest["before"], latest["after"]
    return Section(
        conclusion=(
            f"The latest check ({before['rev']} = {before['sha'][:10]} against {after['rev']} = "
            f"{after['sha'][:10]}, {latest['rounds']} round(s)"
            + (", quick" if latest.get("quick") else "")
            + f") found {verdicts.count('REGRESSION')} regression(s) among "
            f"{len([v for v in verdicts if v != '(reference)'])} figures of ours."
        ),
        tables=[
            table(
                ["figure", "better", "before median", "after median", "after / before", "verdict"],
                rows,
                f"Record {record_label(latest)}.",
            )
        ],
        method=(
            "The same speed benchmarks run at two git revisions in one invocation, alternating "
            "sides round by round, each by the revision's own script in a detached worktree; a "
            "figure of ours more than 10% worse at the after side is a regression; reference "
            "figures (a peer's, or plain Python) show how much the machine moved."
        ),
        used=f"the latest record {record_label(latest)}; earlier records compare other "
        "revisions and are listed below",
    )
