"""Report formatters of the reliability and scale family: sweeps on Ray Tune, the time per 1k
steps that ``modelbased list`` shows, and the soak (kills, stops, memory)."""

from __future__ import annotations

from typing import Any

from _report import Section, fixed, formatter, num, span, table, times

PARTS = ("sequential", "local", "cluster")


def _load(record: dict[str, Any]) -> str:
    return f"{record['loadavg_before'][0]:.1f} / {record['loadavg_after'][0]:.1f}"


@formatter(
    "sweep",
    "Reliability and scale",
    "Sweeps on Ray Tune: wall time, and a two-node cluster",
    "python benchmarks/sweep.py --algo sac --env Pendulum-v1 --seeds 0 1 2 3 --steps 2000 --jobs 2",
)
def sweep(records: list[dict[str, Any]]) -> Section:
    key = lambda r: tuple(str(r["args"][k]) for k in ("algo", "env", "steps", "seeds", "jobs"))  # noqa: E731
    latest_key = key(records[-1])
    used = [r for r in records if key(r) == latest_key]
    last = {r["part"]: r for r in used}  # the latest record of each part
    base = last.get("sequential")
    rows = []
    for part in PARTS:
        if part not in last:
            continue
        r, f = last[part], last[part]["figures"]
        seeds = sorted(f["per_seed"], key=int)
        same = base is not None and all(
            f["per_seed"][s]["returns"] == base["figures"]["per_seed"][s]["returns"] for s in seeds
        )
        rows.append(
            [
                part,
                f"#{r['_index']}",
                fixed(f["wall_s"], 1),
                times(base["figures"]["wall_s"] / f["wall_s"]) if base else "-",
                " / ".join(fixed(f["per_seed"][s]["run_wall_s"], 1) for s in seeds),
                " / ".join(num(f["per_seed"][s]["final_return"], 5) for s in seeds),
                "yes" if same else "no",
                f.get("nodes_used", "-"),
                _load(r),
            ]
        )
    a = records[-1]["args"]
    header = ["part", "record", "wall s", "sequential / part", "each run's training s"]
    header += ["final eval per seed", "evals equal the sequential runs'", "Ray nodes", "load"]
    speed = {row[0]: row[3] for row in rows}
    same = all(row[6] == "yes" for row in rows)
    loads = [x for r in last.values() for x in (r["loadavg_before"][0], r["loadavg_after"][0])]
    return Section(
        conclusion=(
            f"`modelbased sweep {a['algo']}` over seeds {a['seeds']} at {a['steps']} steps gave "
            + ("the same" if same else "NOT the same")
            + " evaluations seed for seed as the runs one after another, on a local Ray and on "
            f"a two-node Ray cluster; wall time, sequential over sweep: local "
            f"{speed.get('local', '-')}, cluster {speed.get('cluster', '-')}, at 1-minute load "
            f"averages {min(loads):.1f}-{max(loads):.1f} on this machine's 2 cores"
        ),
        tables=[table(header, rows, "Latest record of each part with the same arguments:")],
        method=(
            "`benchmarks/sweep.py`: the same runs (`--steps`, seeds, one torch thread) as "
            "`modelbased train` one after another, as `modelbased sweep --jobs J` on a local Ray, "
            "and as the sweep with `--address` of a Ray cluster of two one-CPU nodes that the "
            "script starts on loopback (`ray.cluster_utils.Cluster`). Wall time from each "
            "command's start to its exit (interpreter and Ray start-up included; the cluster's "
            "start-up is apart); each run's training seconds are its `eval.csv`'s last "
            "`wall_time_s`. Load: 1-minute load average before / after."
        ),
        used=f"records {span([r['_index'] for r in last.values()])} (the latest per part)",
    )


@formatter(
    "step_time",
    "Reliability and scale",
    "Time per 1k env steps (what `modelbased list` shows)",
    "python benchmarks/step_time.py",
)
def step_time(records: list[dict[str, Any]]) -> Section:
    latest = {r["figures"]["algo"]: r for r in records}
    rows = []
    for algo, r in sorted(latest.items()):
        f = r["figures"]
        rows.append(
            [
                algo,
                f"#{r['_index']}",
                f["env"],
                f"{f['steps']} of {f['default_steps']}",
                num(f["cpu_s_per_1k"]),
                num(f["wall_s_per_1k"]),
                fixed(r["loadavg_before"][0], 1),
            ]
        )
    header = ["algorithm", "record", "env", "steps measured", "CPU s / 1k", "wall s / 1k", "load"]
    return Section(
        conclusion=(
            f"{len(latest)} algorithms measured; `modelbased list` shows their CPU seconds per "
            "1k steps from `modelbased/step_times.json`, written from these records"
        ),
        tables=[table(header, rows, "Latest record per algorithm:")],
        method=(
            "`benchmarks/step_time.py`: each algorithm trains with its default env and preset "
            "(evaluations included), seed 0, one torch thread, for its default steps or the "
            "script's cap for the slow planners (their rate over the first steps); CPU and "
            "wall seconds of the process per 1k env steps. Wall time grows with the load."
        ),
        used=f"records {span([r['_index'] for r in latest.values()])} (the latest per algorithm)",
    )


@formatter(
    "soak",
    "Reliability and scale",
    "Soak: SIGKILL and SIGINT at random points, memory over an hour",
    "python benchmarks/soak.py --part kill; python benchmarks/soak.py --part memory "
    "--algos sac pets alphazero --minutes 60",
)
def soak(records: list[dict[str, Any]]) -> Section:
    kills = {r["figures"]["algo"]: r for r in records if r["part"] == "kill"}
    memory = {r["figures"]["algo"]: r for r in records if r["part"] == "memory"}
    tables, used = [], []
    if kills:
        rows = []
        for algo, r in sorted(kills.items()):
            f, c = r["figures"], r["figures"]["checks"]
            si = f["sigint"]
            where = "episode end" if si.get("at_episode_end") else "inside an episode"
            rows.append(
                [
                    algo,
                    f"#{r['_index']}",
                    f["steps"],
                    f"{c['kills']} ({c.get('kills_before_first_checkpoint', '-')} before any)",
                    "yes" if c["kill_evals_equal"] else "NO",
                    f"{si.get('stopped_at', '-')} ({where})" if c["sigint_sent"] else "not sent",
                    "yes" if c["sigint_evals_equal"] else "no",
                    "yes" if c["sigint_nothing_lost"] else "NO",
                    num(f["reference"][-1][1], 5),
                ]
            )
        header = ["algorithm", "record", "steps", "SIGKILLs (before a checkpoint)"]
        header += ["evals equal after kills", "SIGINT at step", "evals equal after SIGINT"]
        header += ["nothing lost at SIGINT", "final eval"]
        tables.append(table(header, rows, "Kills and stops, through the command line:"))
        used += [r["_index"] for r in kills.values()]
    if memory:
        rows = []
        for algo, r in sorted(memory.items()):
            f = memory[algo]["figures"]
            rows.append(
                [
                    algo,
                    f"#{r['_index']}",
                    num(f["minutes"]),
                    f["env_steps"],
                    num(f["level_mib"], 4),
                    f"{num(f['min_after_mib'], 4)} - {num(f['max_after_mib'], 4)}",
                    f"{100 * f['max_deviation']:.1f}%",
                    "yes" if f["within_10pct"] else "NO",
                ]
            )
        header = ["algorithm", "record", "minutes", "env steps", "RSS MiB after warm-up"]
        header += ["RSS range after", "largest deviation", "within 10%"]
        tables.append(table(header, rows, "Resident memory of a long run:"))
        used += [r["_index"] for r in memory.values()]
    exact = [a for a, r in kills.items() if r["figures"]["checks"]["kill_evals_equal"]]
    flat = [a for a, r in memory.items() if r["figures"]["within_10pct"]]
    return Section(
        conclusion=(
            f"After 5 SIGKILLs and resumes, {len(exact)} of {len(kills)} algorithms measured "
            "ended with every evaluation equal to an uninterrupted run's; "
            f"{len(flat)} of {len(memory)} long runs kept their memory within 10% of the "
            "post-warm-up level"
        ),
        tables=tables,
        method=(
            "`benchmarks/soak.py` (see its docstring): per algorithm, small settings, seed 0, "
            "`modelbased train` uninterrupted, then killed with SIGKILL at 5 random steps and "
            "resumed each time, then stopped once with SIGINT and resumed; evaluations "
            "(`eval.csv`) compared with the uninterrupted run's. A SIGINT inside an episode is "
            "the documented inexact case (`docs/contracts.md`): there 'nothing lost' means exit "
            "130, the checkpoint at the printed step, and the replay holding every transition. "
            "Memory: VmRSS every 15 s of `modelbased train ALGO` (default env and preset), level "
            "= median over minutes 5-10, deviation = largest after that."
        ),
        used=f"records {span(sorted(used))} (the latest per algorithm and part)",
    )
