"""Report formatter of the tree-search family: MCTS simulations per second."""

from __future__ import annotations

from typing import Any

from _report import (
    Headline,
    Section,
    choose,
    formatter,
    legacy_notice,
    median,
    ratio,
    si,
    table,
    times,
)

TASKS = {
    "ttt_uct": "tic-tac-toe, UCT + random playouts, 200 simulations",
    "c4_puct_mlp": "connect four, PUCT + MLP 3x128, 100 simulations",
    "c4_puct_resnet": "connect four, PUCT + ResNet 32x3, 100 simulations",
}


@formatter(
    "mcts_speed",
    "Tree search",
    "MCTS simulations per second",
    "python benchmarks/mcts_speed.py --mctx-python .mctx/bin/python",
)
def mcts_speed(records: list[dict[str, Any]]) -> Section:
    chosen = choose(records)
    figs = [r["figures"]["results"] for r in chosen.used]
    rows, wall = [], {}
    for task, label in TASKS.items():
        for batch in (1, 64):
            key = f"{task}_b{batch}"
            have = [f[key] for f in figs if key in f]
            if not have:
                continue

            def m(side: str, field: str, have: list[dict[str, Any]] = have) -> float | None:
                vals = [h[side][field] for h in have if h.get(side)]
                return median(vals) if vals else None

            wall[key] = median([h["ours"]["sims_per_s"] / h["plain"]["sims_per_s"] for h in have])
            cpu = median([h["ours"]["sims_per_cpu_s"] / h["plain"]["sims_per_cpu_s"] for h in have])
            rows.append(
                [
                    label,
                    batch,
                    si(m("ours", "sims_per_s")),
                    si(m("ours", "sims_per_cpu_s")),
                    si(m("plain", "sims_per_s")),
                    si(m("plain", "sims_per_cpu_s")),
                    times(wall[key], 2),
                    times(cpu, 2),
                    si(m("mctx", "sims_per_s")),
                    times(ratio(m("ours", "sims_per_s"), m("mctx", "sims_per_s")), 2),
                ]
            )
    big = [k for k in ("ttt_uct_b64", "c4_puct_mlp_b64", "c4_puct_resnet_b64") if k in wall]
    small = [k for k in ("ttt_uct_b1", "c4_puct_mlp_b1", "c4_puct_resnet_b1") if k in wall]
    conclusion = (
        "At batch 64 our array-tree search runs "
        + " / ".join(times(wall[k], 1) for k in big)
        + " as many simulations per wall second as the plain node-object search (tic-tac-toe "
        "UCT / connect four PUCT with the MLP / with the ResNet), at batch 1 "
        + " / ".join(times(wall[k], 2) for k in small)
        + "."
    )
    headline = []
    if "ttt_uct_b64" in wall and "c4_puct_mlp_b64" in wall:
        headline.append(
            Headline(
                "MCTS simulations/s at batch 64, ours vs plain Python nodes: tic-tac-toe UCT / "
                "connect four PUCT (MLP)",
                f"**{times(wall['ttt_uct_b64'], 1)}** / **{times(wall['c4_puct_mlp_b64'], 1)}** "
                "(wall)",
                chosen.indices,
            )
        )
    mctx = [r["figures"].get("mctx", {}) for r in chosen.used]
    skipped = [m["skipped"] for m in mctx if "skipped" in m]
    notes = legacy_notice(chosen.used)
    if skipped:
        notes.append(f"mctx was not measured in {len(skipped)} record(s): {skipped[-1]}")
    return Section(
        conclusion=conclusion,
        tables=[
            table(
                [
                    "task",
                    "batch",
                    "ours sims/s",
                    "ours sims/CPU s",
                    "plain sims/s",
                    "plain sims/CPU s",
                    "ours / plain (wall)",
                    "ours / plain (CPU)",
                    "mctx sims/s",
                    "ours / mctx",
                ],
                rows,
                "From the empty board; medians of the timed repeats (and over records).",
            )
        ],
        method=(
            "Ours: the batched MCTS over preallocated arrays (`modelbased.planning.mcts`), one "
            "search over all roots of the batch. Plain: a recursive Python UCT/PUCT over node "
            "objects (the layout of alpha-zero-general and muzero-general, written in the "
            "script), searching the roots one after another, with the same torch network at "
            "batch 1 per leaf. mctx: `muzero_policy` (JAX, its own venv, timed after a warm-up). "
            "torch on 1 thread; CPU time beside wall time."
        ),
        used=chosen.medians_note,
        headline=headline,
        notes=notes,
    )
