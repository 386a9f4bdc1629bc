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
    never,
    num,
    ratio,
    si,
    span,
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
    # speeds measure the code: records of the latest record's commit only (not pooled across
    # versions of the search)
    chosen = choose(records, config=lambda r: r.get("git_commit"))
    figs = [r["figures"]["results"] for r in chosen.used]
    rows, wall, mctx_cpu = [], {}, {}
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
            peer = [h for h in have if h.get("mctx")]
            if peer:  # mctx's simulations per CPU second from its CPU time per search
                mctx_cpu[key] = median(
                    [h["ours"]["sims_per_cpu_s"] * h["mctx"]["cpu_s"] / (batch * h["simulations"])
                     for h in peer]
                )  # fmt: skip
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
                    times(mctx_cpu.get(key), 2),
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
    versus = [k for k in ("ttt_uct_b1", "c4_puct_mlp_b1", "c4_puct_mlp_b64") if k in mctx_cpu]
    if versus:
        conclusion += (
            " Against mctx's muzero_policy, per CPU second: "
            + " / ".join(times(mctx_cpu[k], 2) for k in versus)
            + " (tic-tac-toe UCT at batch 1 / connect four MLP at batch 1 / at batch 64)."
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
                    "ours / mctx (wall)",
                    "ours / mctx (CPU)",
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


def _muzero_label(run: dict[str, Any], key: str) -> str:
    """``MuZero, <root> <n> sims[, reanalyse f]`` or the SB3 baseline's name."""
    if key == "lightzero":
        return "LightZero 0.2.0 MuZero (its CartPole config, 3-episode evals)"
    if key != "muzero":
        return f"SB3 {key.upper()} (rl-zoo)"
    over = run.get("overrides") or {}
    search = over.get("search") or {}
    label = f"MuZero, {search.get('root', 'puct')} {search.get('num_simulations', 50)} sims"
    frac = over.get("reanalyse_fraction")
    return label + (f", reanalyse {frac:g}" if frac is not None else "")


def _muzero_row(record: dict[str, Any], key: str) -> list[Any]:
    run = record["figures"][key]
    phases = run.get("phases") or {}
    label = _muzero_label(run, key)
    ms = [
        num(1000 * phases[f"{p}_cpu_s_per_step"]) if f"{p}_cpu_s_per_step" in phases else "-"
        for p in ("self_play", "train", "reanalyse")
    ]
    return [
        f"#{record['_index']}",
        label,
        span(record["seeds"], prefix=""),
        never(run["steps_to_threshold_and_stay"]),
        never(run["first_crossing"]),
        num(run["final_return"]),
        num(run["last5_mean"]),
        num(run["learn_cpu_s_to_steps_to_threshold_and_stay"]),
        num(run["total_learn_cpu_s"]),
        run["total_steps"],
        *ms,
    ]


@formatter(
    "muzero",
    "Tree search",
    "MuZero on CartPole-v1",
    "python benchmarks/muzero.py --part cartpole baselines reanalyse gumbel tictactoe speed",
)
def muzero(records: list[dict[str, Any]]) -> Section:
    keys = ("muzero", "lightzero", "ppo", "dqn")
    runs = [(r, k) for r in records for k in keys if k in r.get("figures", {})]
    speed = [r for r in records if "env_steps_per_s" in r.get("figures", {})]
    tables, parts = [], []
    if runs:
        tables.append(
            table(
                [
                    "record",
                    "agent",
                    "seed",
                    "steps to >= 475 and stay",
                    "first >= 475",
                    "final",
                    "last-5 mean",
                    "learning CPU s to stay",
                    "learning CPU s total",
                    "env steps",
                    "self-play CPU ms/step",
                    "train CPU ms/step",
                    "reanalyse CPU ms/step",
                ],
                [_muzero_row(r, k) for r, k in runs],
                "Eval return of 10 deterministic episodes every 1000 env steps; learning time "
                "leaves the evaluations out; torch on 1 thread.",
            )
        )
        groups: dict[str, list[dict[str, Any]]] = {}
        for r, k in runs:  # MuZero: the runs stored with a setting (before it, seed 0 only)
            if k != "muzero" or "setting" in r:
                run = r["figures"][k]
                label = f"{_muzero_label(run, k)}, {run['total_steps']} steps"
                groups.setdefault(label, []).append(run)
        tables.append(
            table(
                ["setting", "seeds", "held >= 475", "median steps to stay", "median CPU s to stay"],
                [
                    [
                        label,
                        len(g),
                        sum(m["steps_to_threshold_and_stay"] is not None for m in g),
                        never(median([m["steps_to_threshold_and_stay"] for m in g])),
                        never(median([m["learn_cpu_s_to_steps_to_threshold_and_stay"] for m in g])),
                    ]
                    for label, g in groups.items()
                ],
                "Medians over the runs of each setting and budget (a run that never holds 475 "
                "counts as never, so the median is never when half or more never hold it); "
                "MuZero rows count the runs stored with their setting (`--resume` era).",
            )
        )
        for label, g in groups.items():
            if label.startswith("MuZero"):
                stays = [m["steps_to_threshold_and_stay"] for m in g]
                parts.append(
                    f"{label}: {sum(s is not None for s in stays)} of {len(g)} runs hold 475 "
                    f"(median {never(median(stays))} env steps)"
                )
    ttt = [r for r in records if r.get("part") == "tictactoe"]
    if ttt:
        tables.append(
            table(
                [
                    "record",
                    "seed",
                    "no loss from (CPU s)",
                    "no loss from (env steps)",
                    "final losses / 100",
                    "learning CPU s",
                ],
                [
                    [
                        f"#{r['_index']}",
                        span(r["seeds"], prefix=""),
                        never(r["figures"]["zero_losses_and_stay_cpu_s"]),
                        never(r["figures"]["zero_losses_and_stay_steps"]),
                        r["figures"]["final_losses"],
                        num(r["figures"]["curve"][-1]["learn_cpu_s"]),
                    ]
                    for r in ttt
                ],
                "Tic-tac-toe with a learned model: 100 noise-free games (50 with each colour) "
                "against the perfect minimax player after each training chunk; 'no loss from' is "
                "the first chunk after which no game is lost again.",
            )
        )
        held = [r["figures"]["zero_losses_and_stay_cpu_s"] for r in ttt]
        parts.append(
            f"tic-tac-toe: {sum(h is not None for h in held)} of {len(ttt)} runs stop losing to "
            f"minimax (median from {never(median(held))} learning CPU s)"
        )
    if speed:
        last = speed[-1]["figures"]
        rates = last["env_steps_per_s"]
        cpu = last.get("env_steps_per_cpu_s", {})  # recorded since 2026-12-03
        tables.append(
            table(
                ["search", "env steps/s", "env steps/CPU s"],
                [
                    ["16 envs in one batched search", si(rates["batched"]), si(cpu.get("batched"))],
                    [
                        "16 searches of one env each",
                        si(rates["one_by_one"]),
                        si(cpu.get("one_by_one")),
                    ],
                ],
                f"Self-play search speed, {last['simulations']} simulations per move (record "
                f"#{speed[-1]['_index']}): batched {times(last['ratio'], 1)} faster.",
            )
        )
        cpu_note = f" ({times(last['cpu_ratio'], 1)} per CPU second)" if "cpu_ratio" in last else ""
        parts.append(
            f"batched self-play runs {times(last['ratio'], 1)} the one-env-at-a-time rate{cpu_note}"
        )
    return Section(
        conclusion="; ".join(parts) + "." if parts else "No run recorded.",
        tables=tables,
        method=(
            "`benchmarks/muzero.py` trains MuZero with its CartPole-v1 preset (each seed one "
            "record, parts `cartpole` and `reanalyse`), SB3's PPO and DQN with rl-zoo's settings "
            "(part `baselines`) and times the self-play search (part `speed`). The threshold "
            "figures are those of `benchmarks/_stats.py`; CPU per env step by phase comes from "
            "the agent's phase timer."
        ),
        used="every record, one row per run",
        plot="muzero.png",
        notes=["Every row is one seed: no median over seeds is claimed unless three are listed."],
    )
