"""Report formatters of the world-model family: the batched ensemble's speed, and the
ensemble's calibration and out-of-distribution disagreement."""

from __future__ import annotations

import math
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
    per_seed,
    span,
    stat_cells,
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


# -- model calibration ---------------------------------------------------------------------------
CALIBRATION_ROWS = (
    ("coverage_2sigma", "2-sigma coverage (nominal 95.45%)", lambda x: pct(x, 2)),
    ("coverage_1sigma", "1-sigma coverage (nominal 68.27%)", lambda x: pct(x, 2)),
    ("ece", "ECE, 19 quantile levels", lambda x: fixed(x, 3)),
    ("nll", "NLL, nats per dim", lambda x: fixed(x, 3)),
)
OOD_SETS = {
    "action": "actions 2-4x beyond the bounds",
    "state": "states beyond the training range",
}


def _ratio(x: Any) -> str:
    return "-" if x is None else f"{num(x)}x"


def _verdict_table(records: list[dict[str, Any]]) -> tuple[str, str, str]:
    """Part ``tasks``: ``diagnose``'s verdict per task and seed (a task and seed run again
    counts with its latest record)."""
    latest = {(r["task"], r["seeds"][0]): r for r in records}
    rows, calibrated = [], 0
    for (task, seed), r in latest.items():
        f = r["figures"]
        calibrated += f["verdict"] == "calibrated"
        rows.append(
            [
                task,
                seed,
                f["steps"],
                f"{f['holdout_rows']}",
                pct(f["coverage_2sigma"], 1),
                pct(f["coverage_1sigma"], 1),
                fixed(f["ece"], 3),
                num(f["mse"]),
                f"**{f['verdict']}**",
                f"#{r['_index']}",
            ]
        )
    caption = (
        "`modelbased diagnose` (random policy, every fifth episode held out, default "
        "`EnsembleConfig()`) per task and seed: the held-out coverage of the elites' "
        "moment-matched 1- and 2-sigma intervals and the verdict (`calibrated`: 2-sigma "
        "coverage in 0.90-0.99)."
    )
    header = ["task", "seed", "steps", "held-out rows", "2-sigma", "1-sigma", "ECE", "MSE"]
    table_ = table([*header, "verdict", "record"], rows, caption)
    sentence = f"`diagnose` calls {calibrated} of {len(rows)} task runs calibrated"
    return table_, sentence, "verdicts: " + span([r["_index"] for r in latest.values()])


def _calibration_task(records: list[dict[str, Any]], task: str) -> dict[str, Any]:
    """The runs of ``task`` in the records :func:`choose` picks (same ``--steps`` as the latest
    record with the task); a seed run again counts once, with its latest run."""
    having = [r for r in records if task in r["figures"]["tasks"]]
    chosen = choose(having, lambda r: args_of(r).get("steps"))
    by_seed: dict[int, dict[str, Any]] = {}
    for rec in chosen.used:
        for run in rec["figures"]["tasks"][task]["runs"]:
            by_seed[run["seed"]] = run
    runs = [by_seed[s] for s in sorted(by_seed)]
    steps = chosen.used[-1]["figures"]["tasks"][task]["steps"]
    return {"chosen": chosen, "runs": runs, "steps": steps, "seeds": sorted(by_seed)}


@formatter(
    "model_calibration",
    "World models",
    "Ensemble calibration: recalibration off and on, epistemic disagreement out of distribution",
    "python benchmarks/model_calibration.py",
)
def model_calibration(records: list[dict[str, Any]]) -> Section:
    verdicts = [r for r in records if r.get("part") == "tasks"]
    records = [r for r in records if r.get("part") != "tasks"]
    tasks = list(dict.fromkeys(t for r in records for t in r["figures"]["tasks"]))
    tables, sentences, used, headline = [], [], [], []
    for task in tasks:
        part = _calibration_task(records, task)
        runs, chosen, seeds = part["runs"], part["chosen"], span(part["seeds"], prefix="")
        where = f"{task}, {part['steps']} random-policy transitions, seeds {seeds}"
        rows = []
        for key, label, fmt in CALIBRATION_ROWS:
            for side in ("off", "on"):
                values = [r[side][key] for r in runs]
                rows.append([label, side, per_seed(values, fmt), *stat_cells(values, fmt)])
        for key, label in (("mse", "MSE, original units"), ("one_step_nmse", "NMSE")):
            values = [r["on"][key] for r in runs]
            rows.append([label, "off = on (same means)", per_seed(values), *stat_cells(values)])
        tables.append(
            table(
                ["held-out figure", "recalibration", "per seed", "median [95% CI]", "IQM [95% CI]"],
                rows,
                f"{where}: the elites' moment-matched predictive of the next observation on the "
                "held-out episodes, the same fitted weights with the recalibration scale zero "
                "(off) and as fitted (on).",
            )
        )
        ood_rows = []
        for kind, label in OOD_SETS.items():
            ratios = [r["epistemic_ratio"][kind] for r in runs]
            ood_rows.append(
                [
                    label,
                    per_seed([r["epistemic_median"]["in"] for r in runs]),
                    per_seed([r["epistemic_median"][kind] for r in runs]),
                    per_seed(ratios, _ratio),
                    *stat_cells(ratios, _ratio),
                ]
            )
        tables.append(
            table(
                [
                    "out of distribution",
                    "in: median epistemic variance",
                    "out: median epistemic variance",
                    "ratio out / in, per seed",
                    "median [95% CI]",
                    "IQM [95% CI]",
                ],
                ood_rows,
                f"{where}: the elites' epistemic variance (variance of their mean next "
                "observations, mean over dims), median over rows, per seed.",
            )
        )
        fit_rows = [
            [
                r["seed"],
                f"{r['train_rows']} / {r['holdout_rows']} ({r['holdout_episodes']} episodes)",
                r["fit_epochs"],
                " / ".join(num(math.exp(c)) for c in r["log_var_scale"]),
                fixed(r["cpu_s"], 0),
            ]
            for r in runs
        ]
        tables.append(
            table(
                [
                    "seed",
                    "training / held-out rows",
                    "fit epochs",
                    "recalibration factor e^c per target (obs dims, reward)",
                    "CPU s",
                ],
                fit_rows,
                f"{where}: the fits.",
            )
        )
        med = {
            (side, key): median([r[side][key] for r in runs])
            for side in ("off", "on")
            for key in ("coverage_2sigma", "ece", "nll")
        }
        ratios = {k: [r["epistemic_ratio"][k] for r in runs] for k in OOD_SETS}
        lower = {k: sum(r["on"][k] < r["off"][k] for r in runs) for k in ("ece", "nll")}
        sentences.append(
            f"on {task} ({part['steps']} random-policy transitions, {len(runs)} seeds) "
            f"recalibration moves held-out 2-sigma coverage from "
            f"{pct(med['off', 'coverage_2sigma'], 2)} to {pct(med['on', 'coverage_2sigma'], 2)} "
            f"(nominal 95.45%) and ECE from {fixed(med['off', 'ece'], 3)} to "
            f"{fixed(med['on', 'ece'], 3)} (lower with it in {lower['ece']} of {len(runs)} "
            f"seeds) and NLL from {fixed(med['off', 'nll'], 2)} to {fixed(med['on', 'nll'], 2)} "
            f"nats per dim (lower in {lower['nll']} of {len(runs)}; medians over seeds), and the "
            "elites' epistemic variance is "
            f"{_ratio(median(ratios['action']))} (per seed "
            f"{_ratio(min(ratios['action']))}-{_ratio(max(ratios['action']))}) its "
            f"in-distribution median on actions 2-4x beyond the bounds and "
            f"{_ratio(median(ratios['state']))} ({_ratio(min(ratios['state']))}-"
            f"{_ratio(max(ratios['state']))}) on states beyond the training range"
        )
        used.append(f"{task}: {chosen.note}")
        if not headline:
            headline.append(
                Headline(
                    f"Ensemble on {task}, {len(runs)} seeds: held-out 2-sigma coverage, ECE, "
                    "recalibration off -> on; epistemic variance OOD / in",
                    f"**{pct(med['off', 'coverage_2sigma'], 1)}, {fixed(med['off', 'ece'], 3)} "
                    f"-> {pct(med['on', 'coverage_2sigma'], 1)}, {fixed(med['on', 'ece'], 3)}**; "
                    f"**{_ratio(median(ratios['action']))}** (actions beyond the bounds)",
                    chosen.indices,
                )
            )
    if verdicts:
        table_, sentence, note = _verdict_table(verdicts)
        tables.append(table_)
        sentences.append(sentence)
        used.append(note)
    conclusion = "; ".join(sentences) + "."
    return Section(
        conclusion=conclusion[0].upper() + conclusion[1:],
        tables=tables,
        method=(
            "Per seed: N transitions of the uniformly random policy, every fifth episode held "
            "out (the rule of `modelbased diagnose`), an `EnsembleModel` with `EnsembleConfig()` "
            "defaults as PETS uses them (7 members, 5 elites, 4 x 200 SiLU, bootstrap, early "
            "stopping on `fit`'s own 20% split, which also picks the elites and the "
            "recalibration scale) fitted on the other episodes. Recalibration off vs on: "
            "`one_step_report` of the same weights with `log_var_scale` zero (what "
            "`calibrate=False` leaves; the flag is read only after training, so the weights are "
            "those of a `calibrate=False` fit) and as fitted, over the next observation's "
            "dimensions. Out of distribution, two sets made from the held-out rows: every "
            "action dimension replaced by a random sign times U(2, 4) times its bound, or every "
            "observation dimension shifted by a random sign times U(1, 2) times the range of "
            "the training observations in that dimension (at or beyond the edge of the box the "
            "training states span); the figure is the median over rows of "
            "`uncertainty(...)['epistemic']` (mean over observation dims) there, divided by "
            "the same on the held-out rows. Over seeds: median, IQM and bootstrap 95% "
            "intervals (`benchmarks/_stats.py`). Torch on one thread."
        ),
        used="; ".join(used),
        headline=headline,
        notes=[
            "The out-of-distribution inputs are inputs only: the environment would clip such "
            "actions, and the shifted states are not reachable, so there is no real next state "
            "to score there; the figure is how far the members disagree, not their error.",
            *legacy_notice(records),
        ],
    )
