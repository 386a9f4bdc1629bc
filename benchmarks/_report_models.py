"""Report formatters of the world-model family: the batched ensemble's speed."""

from __future__ import annotations

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
    pct,
    table,
    times,
)


@formatter(
    "ensemble_speed",
    "World models",
    "Ensemble speed: batched members vs a loop, and mbrl-lib",
    ".bench/bin/python benchmarks/ensemble_speed.py",
)
def ensemble_speed(records: list[dict[str, Any]]) -> Section:
    chosen = choose(records, lambda r: args_of(r).get("threads"))
    threads = args_of(chosen.used[-1]).get("threads")
    figs = [r["figures"] for r in chosen.used]

    def med(get: Any) -> float | None:
        values = [v for v in (get(f) for f in figs) if v is not None]
        return median(values) if values else None

    rows_per_member = [row["rows_per_member"] for row in figs[-1]["forward"]]
    fwd = []
    speed: dict[int, dict[str, float | None]] = {}
    for k, rows in enumerate(rows_per_member):

        def at(key: str, k: int = k) -> float | None:
            return med(lambda f: f["forward"][k].get(key))

        speed[rows] = {"loop": at("speedup_vs_loop_wall"), "mbrl": at("speedup_vs_mbrl_cpu")}
        fwd.append(
            [
                rows,
                fixed(at("ours_ms"), 3),
                fixed(at("loop_ms"), 3),
                fixed(at("mbrl_ms"), 3),
                times(speed[rows]["loop"], 2),
                times(at("speedup_vs_loop_cpu"), 2),
                times(speed[rows]["mbrl"], 2),
                num(at("ours_gflops")),
            ]
        )
    frac = med(lambda f: f["forward_fraction_of_bmm"])
    bmm = med(lambda f: f["matmul_reference"]["gflops_wall"])
    epoch = {
        k: med(lambda f, k=k: f["epoch"].get(k))
        for k in ("ours_s", "mbrl_s", "speedup_wall", "ours_cpu_s", "mbrl_cpu_s", "speedup_cpu")
    }
    tables = [
        table(
            [
                "rows per member",
                "ours ms",
                "loop of 7 models ms",
                "mbrl-lib GaussianMLP ms",
                "ours vs loop (wall)",
                "ours vs loop (CPU)",
                "ours vs mbrl-lib (CPU)",
                "ours GFLOP/s",
            ],
            fwd,
            f"Forward of a 7-member 4x200 ensemble, {threads} thread(s), medians.",
        ),
        table(
            ["one bmm of the same FLOPs, GFLOP/s", "ours at 7 x 5000 rows, share of it"],
            [[num(bmm), pct(frac)]],
            "The compute-bound regime against the machine's batched-matmul rate.",
        ),
        table(
            [
                "ours s/epoch",
                "mbrl-lib s/epoch",
                "speedup (wall)",
                "ours CPU s",
                "mbrl-lib CPU s",
                "speedup (CPU)",
            ],
            [
                [
                    fixed(epoch["ours_s"], 3),
                    fixed(epoch["mbrl_s"], 3),
                    times(epoch["speedup_wall"]),
                    fixed(epoch["ours_cpu_s"], 3),
                    fixed(epoch["mbrl_cpu_s"], 3),
                    times(epoch["speedup_cpu"]),
                ]
            ],
            "One training epoch on 10k Pendulum-v1 transitions, batch 256 per member, 20% "
            "holdout evaluated each epoch.",
        ),
    ]
    small, mid = rows_per_member[0], rows_per_member[-2]
    conclusion = (
        f"One batched forward of the 7 members is {times(speed[small]['loop'], 1)} as fast as a "
        f"loop over 7 models at {small} row per member and {times(speed[mid]['loop'], 1)} at "
        f"{mid} rows; at {rows_per_member[-1]} rows it runs at {pct(frac)} of one same-FLOPs "
        f"bmm; a training epoch takes {fixed(epoch['ours_s'], 2)} s against mbrl-lib's "
        f"{fixed(epoch['mbrl_s'], 2)} s ({times(epoch['speedup_wall'])}), {threads} thread."
    )
    return Section(
        conclusion=conclusion,
        tables=tables,
        method=(
            "A 7-member 4x200 SiLU ensemble with Gaussian heads (mean and log-variance of 3 obs "
            "+ 1 reward): ours does one `baddbmm` per layer for all members; the loop calls 7 "
            "`nn.Sequential` models; mbrl-lib 0.2.0's `GaussianMLP` runs in the same process "
            "(benchmark venv). The reference is one `torch.bmm` with the forward's FLOPs. The "
            "epoch compares `EnsembleModel.fit` with mbrl-lib's `ModelTrainer` on the same data. "
            "Medians over repeats, torch threads pinned; ratios are measured in the same run."
        ),
        used=chosen.medians_note,
        headline=[
            Headline(
                f"Ensemble forward, 7x4x200, {threads} thread: batched vs a loop over 7 models",
                f"**{times(speed[small]['loop'], 1)}** at {small} row/member, "
                f"{times(speed[mid]['loop'], 1)} at {mid}; {pct(frac)} of the bmm rate at "
                f"{rows_per_member[-1]}",
                chosen.indices,
            )
        ],
        notes=legacy_notice(chosen.used),
    )
