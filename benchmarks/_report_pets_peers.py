"""Report formatters of PETS against its peer library: wall clock to a first success and planning
speed, ours against mbrl-lib 0.2.0."""

from __future__ import annotations

from typing import Any

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
    pct,
    per_seed,
    ratio,
    record_label,
    steps,
    table,
    times,
)


# -- wall clock against mbrl-lib -----------------------------------------------------------------
def _clock_runs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for rec in records:
        f = rec["figures"]
        if is_legacy(rec):
            for contender in ("ours", "mbrl"):
                for seed, r in f.get(contender, {}).items():
                    out.append(
                        {
                            "record": rec,
                            "contender": contender,
                            "seed": int(seed),
                            "first": r["steps"],
                            "wall": r["wall_s"],
                            "cpu": r["cpu_s"],
                            "stay_measured": False,
                            "stay": None,
                            "stay_wall": None,
                        }
                    )
        else:
            r = f["run"]
            out.append(
                {
                    "record": rec,
                    "contender": f["contender"],
                    "seed": rec["seeds"][0],
                    "first": r["first_crossing"],
                    "wall": r["wall_s_to_first_crossing"],
                    "cpu": r["cpu_s_to_first_crossing"],
                    "stay_measured": r["stay_measured"],
                    "stay": r["steps_to_threshold_and_stay"],
                    "stay_wall": r["wall_s_to_steps_to_threshold_and_stay"],
                }
            )
    return out


@formatter(
    "pets_wallclock",
    "PETS and MPC",
    "PETS wall clock against mbrl-lib",
    ".bench/bin/python benchmarks/pets_wallclock.py --seeds 0 1 2 --mbrl-seeds 0 1 2",
)
def pets_wallclock(records: list[dict[str, Any]]) -> Section:
    chosen = choose(records, lambda r: bool(args_of(r).get("run_on")))
    runs = _clock_runs(chosen.used)
    rows, med = [], {}
    names = {"ours": "ours (iCEM 100 x 10 particles)", "mbrl": "mbrl-lib (CEM 350 x 20)"}
    for contender in ("ours", "mbrl"):
        mine = sorted((r for r in runs if r["contender"] == contender), key=lambda r: r["seed"])
        for r in mine:
            rows.append(
                [
                    names[contender],
                    r["seed"],
                    record_label(r["record"]),
                    steps(r["first"]),
                    num(r["wall"]),
                    num(r["cpu"]),
                    never(r["stay"]) if r["stay_measured"] else NOT_MEASURED,
                    num(r["stay_wall"]),
                ]
            )
        med[contender] = {
            k: median([r[k] for r in mine]) if mine else None for k in ("wall", "cpu")
        }
        med[contender]["n"] = len(mine)
        med[contender]["seeds"] = [r["seed"] for r in mine]
    wall, cpu = (
        ratio(med["mbrl"]["wall"], med["ours"]["wall"]),
        ratio(med["mbrl"]["cpu"], med["ours"]["cpu"]),
    )
    ours, theirs = med["ours"], med["mbrl"]

    def reached(m: dict[str, Any], who: str) -> str:
        if m["wall"] is None or m["wall"] == float("inf"):
            return f"{who} did not reach it in the median of its {m['n']} seed(s)"
        return f"{who} reaches it after a median of {num(m['wall'])} s wall ({m['n']} seed(s))"

    conclusion = "First planned episode >= -200: " + reached(ours, "ours")
    headline = []
    if theirs["n"]:
        conclusion += (
            f", {reached(theirs, 'mbrl-lib default PETS')} (seeds {per_seed(theirs['seeds'])})"
        )
        if wall:
            conclusion += f": {times(wall, 1)} wall, {times(cpu, 1)} CPU"
            headline.append(
                Headline(
                    "PETS, Pendulum-v1, 1 thread: wall clock to the first planned episode >= "
                    "-200, ours vs mbrl-lib's defaults",
                    f"ours **{num(ours['wall'])} s** (median of {ours['n']}) vs mbrl-lib "
                    f"**{num(theirs['wall'])} s** ({theirs['n']} seed): **{times(wall, 1)}**",
                    chosen.indices,
                )
            )
    stays = [r["stay_wall"] for r in runs if r["contender"] == "ours" and r["stay_measured"]]
    if stays:
        conclusion += f"; ours' episodes stay >= -200 from a median of {num(median(stays))} s wall"
    if any(not r["stay_measured"] for r in runs):
        conclusion += "; the runs stopped there, so whether the return holds is not measured"
    return Section(
        conclusion=conclusion + ".",
        tables=[
            table(
                [
                    "contender",
                    "seed",
                    "record",
                    "real steps to the first planned episode >= -200",
                    "wall s",
                    "CPU s",
                    "episodes stay >= -200 from",
                    "wall s to stay",
                ],
                rows,
                "Clock from the start, building the agent and every model fit included.",
            ),
            table(
                ["", "ours", "mbrl-lib", "mbrl-lib / ours"],
                [
                    ["median wall s", num(ours["wall"]), num(theirs["wall"]), times(wall, 1)],
                    ["median CPU s", num(ours["cpu"]), num(theirs["cpu"]), times(cpu, 1)],
                ],
                "Medians over the stored seeds of each contender.",
            ),
        ],
        method=(
            'Ours: `mb.PETS("Pendulum-v1", seed=s)`, the tuned preset (iCEM population 100, 10 '
            "elites, 3 iterations, 10 TS-inf particles, H 15, refit every 200 steps with at most "
            "30 epochs). mbrl-lib 0.2.0: its default PETS (`pets_cartpole` overrides + CEM: "
            "population 350, elite ratio 0.1, 5 iterations, 20 TS1 particles, H 15, 7x4x200 "
            "GaussianMLP, 25 epochs per refit every 50 steps), built as `mbrl/algorithms/pets.py` "
            "does. Both use the known Pendulum reward and start with 200 random steps; every later "
            "episode is planned and its return is the evaluation. torch on 1 thread, contenders "
            "one after the other."
        ),
        used=chosen.note,
        headline=headline,
        notes=legacy_notice(chosen.used),
    )


# -- planning speed against mbrl-lib -------------------------------------------------------------
LABELS = {"a": "(a) 350 x 20 particles", "b": "(b) 100 x 5", "tiny": "tiny 50 x 1"}


@formatter(
    "pets_planning_speed",
    "PETS and MPC",
    "PETS planning speed against mbrl-lib",
    ".bench/bin/python benchmarks/pets.py --part 2",
)
def pets_planning_speed(records: list[dict[str, Any]]) -> Section:
    chosen = choose(records)
    figs = [r["figures"] for r in chosen.used]
    bmm = median([f["bmm_7x5000x200x200_gflops"] for f in figs])
    rows, med = [], {}
    for key, label in LABELS.items():
        have = [f["settings"][key] for f in figs if key in f["settings"]]
        if not have:
            continue

        def m(field: str, have: list[dict[str, Any]] = have) -> float | None:
            vals = [h[field] for h in have if h.get(field) is not None]
            return median(vals) if vals else None

        def b(field: str, have: list[dict[str, Any]] = have) -> float | None:
            vals = [h["batch16"][field] for h in have if "batch16" in h]
            return median(vals) if vals else None

        med[key] = {
            "ours": m("ours_s"),
            "mbrl": m("mbrl_s"),
            "ratio": m("ratio_mbrl_over_ours"),
            "share": ratio(m("ours_gflops"), bmm),
            "batch": b("speedup_wall"),
        }
        rows.append(
            [
                label,
                fixed(m("ours_s"), 3),
                fixed(m("mbrl_s"), 3),
                times(med[key]["ratio"]),
                num(m("ours_gflops")),
                num(m("mbrl_gflops")),
                pct(med[key]["share"]),
                pct(ratio(m("mbrl_gflops"), bmm)),
                pct(m("ours_outside_matmul")),
                pct(m("mbrl_outside_matmul")),
                times(med[key]["batch"]),
            ]
        )
    a = med.get("a", {})
    conclusion = (
        f"At population 350 x 20 particles ours plans an action in {fixed(a.get('ours'), 2)} s "
        f"against mbrl-lib's {fixed(a.get('mbrl'), 2)} s ({times(a.get('ratio'))}), at "
        f"{pct(a.get('share'))} of one large bmm's rate ({num(bmm)} GFLOP/s in the same run); "
        + ", ".join(f"{LABELS[k]}: {times(v['ratio'])}" for k, v in med.items() if k != "a")
        + "; 16 start states in one call against 16 calls: "
        + ", ".join(f"{times(v['batch'])} at {LABELS[k]}" for k, v in med.items())
        + "."
    )
    return Section(
        conclusion=conclusion,
        tables=[
            table(
                [
                    "setting",
                    "ours s/action",
                    "mbrl-lib s/action",
                    "mbrl-lib / ours",
                    "ours GFLOP/s",
                    "mbrl-lib GFLOP/s",
                    "ours, share of the bmm rate",
                    "mbrl-lib, share",
                    "ours outside matmul (profiled)",
                    "mbrl-lib (profiled)",
                    "ours: 16 states in 1 call vs 16 calls",
                ],
                rows,
                f"Pendulum-v1, CEM + TS1, H 15, 7x4x200 ensemble, 1 thread; one bmm "
                f"[7,5000,200]x[7,200,200] ran at {num(bmm)} GFLOP/s.",
            )
        ],
        method=(
            "Seconds per planned action: ours (`plan_action`) against mbrl-lib's "
            "`TrajectoryOptimizerAgent.act`, each with a 7-member 4x200 ensemble fitted by its "
            "library on 200 random steps, CEM (population x particles as labelled; elites 10%, 5 "
            "iterations), TS1 propagation, H 15; medians of the timed repeats. The share of the "
            "bmm rate bounds the time spent outside matmul kernels (1 - share); torch.profiler's "
            "figure is looser (its per-op cost counts as outside). The last column plans 16 "
            "start states in one `optimize` call against 16 calls of one."
        ),
        used=chosen.medians_note,
        headline=[
            Headline(
                "PETS planning, CEM 350 x 20 particles, H 15, 1 thread: seconds per action, ours "
                "vs mbrl-lib",
                f"**{fixed(a.get('ours'), 2)} s** vs {fixed(a.get('mbrl'), 2)} s "
                f"(**{times(a.get('ratio'))}**)",
                chosen.indices,
            )
        ]
        if a
        else [],
        notes=legacy_notice(chosen.used),
    )
