"""Formatter of the latent world models' benchmark (``benchmarks/dreamer.py``): Dreamer V1-V3
and PlaNet runs, and the seconds per update."""

from __future__ import annotations

from typing import Any

from _report import Section, formatter, median, never, num, span, table


def _run_row(record: dict[str, Any]) -> list[Any]:
    fig = record["figures"]
    label = record.get("label") or fig.get("algo")
    run = fig[label]
    last = run.get("last_train_row") or {}
    return [
        f"#{record['_index']}",
        record.get("part"),
        label,
        fig["env"],
        span(record["seeds"], prefix=""),
        num(fig["threshold"]),
        never(run["steps_to_threshold_and_stay"]),
        never(run["first_crossing"]),
        num(run["final_return"]),
        num(run["last5_mean"]),
        run["total_steps"],
        num(run["total_learn_cpu_s"]),
        run.get("updates"),
        num(last.get("recon")),
        num(last.get("kl")),
        num(last.get("reward_error")),
    ]


@formatter(
    "dreamer",
    "World models",
    "Dreamer V1-V3 and PlaNet (latent world models)",
    "python benchmarks/dreamer.py --part pendulum cartpole pixel-pendulum planet-swingup "
    "versions speed",
)
def dreamer(records: list[dict[str, Any]]) -> Section:
    runs = [r for r in records if r.get("part") != "speed"]
    speed = [r for r in records if r.get("part") == "speed"]
    tables, parts = [], []
    if runs:
        tables.append(
            table(
                [
                    "record",
                    "part",
                    "agent",
                    "env",
                    "seed",
                    "target",
                    "steps to target and stay",
                    "first at target",
                    "final",
                    "last-5 mean",
                    "env steps",
                    "learning CPU s",
                    "updates",
                    "recon",
                    "KL",
                    "reward error",
                ],
                [_run_row(r) for r in runs],
                "Eval return of 10 deterministic episodes every 1000 env steps; learning CPU "
                "seconds leave the evaluations out; recon, KL and reward error are the means of "
                "the last train.csv row; torch on 1 thread.",
            )
        )
        for r in runs:
            label = r.get("label")
            run = r["figures"][label]
            parts.append(
                f"{label} on {r['figures']['env']} (record #{r['_index']}, seed "
                f"{r['seeds'][0]}) holds >= {num(r['figures']['threshold'])} from "
                f"{never(run['steps_to_threshold_and_stay'])} env steps (final "
                f"{num(run['final_return'])}, {num(run['total_learn_cpu_s'])} learning CPU s)"
            )
    if speed:
        rows = []
        for r in speed:
            f = r["figures"]
            rows.append(
                [
                    f"#{r['_index']}",
                    f"{f['size']} (deter {f['deter']}, {f['stoch']}, B x T {f['batch'][0]} x "
                    f"{f['batch'][1]}, H {f['horizon']})",
                    num(f["cpu_s"]["world_model"]),
                    num(f["cpu_s"]["behavior"]),
                    num(f["cpu_s"]["behavior_compiled"]),
                    num(f["update_cpu_s"]),
                    num(f["update_wall_s"]),
                    num(median(r["loadavg_before"][:1])),
                ]
            )
        tables.append(
            table(
                [
                    "record",
                    "size",
                    "world model CPU s",
                    "imagination + actor-critic CPU s",
                    "same, step compiled",
                    "update CPU s",
                    "update wall s",
                    "load",
                ],
                rows,
                "Seconds per update of Dreamer V3, medians of the timed updates; wall time on "
                "a shared machine at the load shown.",
            )
        )
        last = speed[-1]["figures"]
        parts.append(
            f"an xs update takes {num(last['update_cpu_s'])} CPU s (record "
            f"#{speed[-1]['_index']}), the imagination step under torch.compile "
            f"{num(last['compiled_over_eager_cpu'])}x the eager CPU time"
        )
    return Section(
        conclusion=("; ".join(parts) + ".")[:1].upper() + ("; ".join(parts) + ".")[1:]
        if parts
        else "No run recorded.",
        tables=tables,
        method=(
            "`benchmarks/dreamer.py` trains Dreamer (presets in `modelbased/presets/dreamer.yaml`, "
            "`version` 1/2/3) and PlaNet (`planet.yaml`) one seed per record, and times single "
            "updates at size xs (part `speed`). Threshold figures are those of "
            "`benchmarks/_stats.py` (reach-and-stay)."
        ),
        used="every record, one row per run",
        notes=["Every row is one seed: no median over seeds is claimed unless three are listed."],
    )
