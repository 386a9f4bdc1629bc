"""Before/after speed check of a change: the same speed benchmarks run at two git revisions in one
invocation, alternating sides, so that a refactor can be shown not to have slowed anything down.

Measured, each by the revision's OWN benchmark script (run from a detached worktree of that
revision, ``/tmp/mb-<shortsha>``, with ``cwd`` and ``PYTHONPATH`` set to the worktree so that its
``modelbased`` is imported -- checked in a subprocess before anything is timed):

* ``pets_planning``: ``benchmarks/pets.py --part 2 --batch-settings`` (part (c), 16 start states
  per call, is not among the figures and is skipped) -> ``results/pets_planning_speed.json``:
  seconds (wall, CPU) per planned action at settings (a) 350x20 and (b) 100x5, and mbrl-lib's
  seconds at the same settings (a same-run reference: its code does not change between sides);
* ``sac_rates``: ``benchmarks/mbpo.py --part rates`` -> ``results/mbpo.json`` entry ``rates``:
  SAC updates/s (wall, per CPU s) at batch 256, SB3's (reference) and ours/SB3;
* ``mcts``: ``benchmarks/mcts_speed.py`` -> ``results/mcts_speed.json``: simulations/s (wall,
  per CPU s) per task and batch; the pure-Python tic-tac-toe search (no ``modelbased`` code) and
  mctx (only if ``.mctx`` exists in the repository) are references.

Order: ``--rounds`` rounds (default 2); each round runs every benchmark at the before side, then
at the after side (before/after/before/after), one process at a time, so that machine noise hits
both alike. The scripts pin torch to 1 thread themselves; the children also get
``OMP_NUM_THREADS=1`` and friends. Per figure: every round's value per side, the median per side,
after/before, and a verdict for our figures (regression: the after side more than 10% worse;
reference figures show how much the machine itself moved between sides). One JSON record per
invocation is appended to ``results/before_after.json`` (a list); a table is printed. A script
that fails at one revision (e.g. its API changed) gets its error text recorded for that side, and
the other figures go on. Worktrees made by the invocation are removed at the end
(``--keep-worktrees`` keeps them); existing ones are reused.

Run from the repository root, after committing the change (one round, both sides, is about
6 min on a quiet machine: pets_planning 2.5, sac_rates 2.5, mcts 0.7; ``--quick`` about 3):

    .bench/bin/python benchmarks/before_after.py --before <rev> --after <rev> [--rounds 2]
        [--only pets_planning,sac_rates,mcts] [--quick]

``--quick`` (few repeats, smoke tests of this tool only; its records are marked ``"quick": true``).
The ``.bench`` venv is set up as shared/PEERS.md says (torch first, ``-e '.[test]'``,
stable-baselines3, mbrl 0.2.0 with hydra-core 1.3.2 and omegaconf 2.3.0), then
``.bench/bin/pip install 'gymnasium[mujoco]>=1.0' 'torch==2.13.0'`` once more: mbrl 0.2.0 pulls
gymnasium back to 0.26.3, with which SB3 2.9 and modelbased do not import.
Exit status 1 when a figure of ours regressed or a run failed, else 0.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import _common as common

REPO = Path(__file__).resolve().parents[1]
OUT = common.RESULTS / "before_after.json"
PYTHON = REPO / ".bench" / "bin" / "python"
MCTX_VENV = Path(__file__).resolve().parents[1] / ".mctx"
TOLERANCE = 0.10  # a figure of ours more than 10% worse at the after side is a regression
TIMEOUT_S = 3 * 3600  # per script run
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
SIDES = ("before", "after")


@dataclass(frozen=True)
class Figure:
    """One number read from a script's results JSON."""

    label: str  # row name in the table
    key: str  # dotted path inside the results JSON
    unit: str
    higher_is_better: bool
    reference: bool = False  # a peer's or plain figure: gauges machine noise, gets no verdict


@dataclass(frozen=True)
class Benchmark:
    script: str  # path inside the worktree
    args: tuple[str, ...]
    quick_args: tuple[str, ...]  # replace ``args`` under --quick
    results: str  # the JSON the script writes, path inside the worktree
    figures: Callable[[dict[str, Any]], list[Figure]]  # which figures a results JSON holds


def pets_figures(data: dict[str, Any]) -> list[Figure]:
    out = []
    for s, name in (("a", "(a) 350x20"), ("b", "(b) 100x5")):
        out += [
            Figure(f"PETS {name} ours s/action", f"settings.{s}.ours_s", "s", False),
            Figure(f"PETS {name} ours CPU s/action", f"settings.{s}.ours_cpu_s", "s", False),
            Figure(f"PETS {name} mbrl-lib s/action", f"settings.{s}.mbrl_s", "s", False, True),
            Figure(f"PETS {name} mbrl/ours", f"settings.{s}.ratio_mbrl_over_ours", "x", True),
        ]
    return out


def sac_figures(data: dict[str, Any]) -> list[Figure]:
    return [
        Figure("SAC ours updates/s", "rates.median.ours_updates_per_s", "1/s", True),
        Figure("SAC ours updates/CPU s", "rates.median.ours_updates_per_cpu_s", "1/s", True),
        Figure("SAC SB3 updates/s", "rates.median.sb3_updates_per_s", "1/s", True, True),
        Figure("SAC ours/SB3", "rates.median.ratio", "x", True),
        Figure("SAC ours/SB3 per CPU s", "rates.median.ratio_cpu", "x", True),
    ]


def mcts_figures(data: dict[str, Any]) -> list[Figure]:
    out = []
    for task, row in data.get("results", {}).items():
        out += [
            Figure(f"MCTS {task} ours sims/s", f"results.{task}.ours.sims_per_s", "1/s", True),
            Figure(
                f"MCTS {task} ours sims/CPU s", f"results.{task}.ours.sims_per_cpu_s", "1/s", True
            ),
        ]
        if task == "ttt_uct_b1":  # pure Python, no modelbased code: a machine-noise gauge
            out.append(
                Figure(
                    f"MCTS {task} plain sims/s",
                    f"results.{task}.plain.sims_per_s",
                    "1/s",
                    True,
                    True,
                )
            )
        if row.get("mctx"):
            out.append(
                Figure(
                    f"MCTS {task} mctx sims/s", f"results.{task}.mctx.sims_per_s", "1/s", True, True
                )
            )
    return out


BENCHMARKS = {
    "pets_planning": Benchmark(
        "benchmarks/pets.py",
        ("--part", "2", "--batch-settings"),
        ("--part", "2", "--batch-settings", "--repeats", "1"),
        "benchmarks/results/pets_planning_speed.json",
        pets_figures,
    ),
    "sac_rates": Benchmark(
        "benchmarks/mbpo.py",
        ("--part", "rates"),
        ("--part", "rates", "--rates-runs", "1", "--repeats", "1", "--rates-steps", "300"),
        "benchmarks/results/mbpo.json",
        sac_figures,
    ),
    "mcts": Benchmark(
        "benchmarks/mcts_speed.py",
        (),
        ("--repeats", "1"),
        "benchmarks/results/mcts_speed.json",
        mcts_figures,
    ),
}


@dataclass
class Side:
    """One revision checked out in a detached worktree."""

    name: str  # "before" or "after"
    rev: str  # as given
    sha: str
    worktree: Path
    created: bool  # made by this invocation (removed at the end)
    env: dict[str, Any] = field(default_factory=dict)  # what the check subprocess saw


def git(*args: str, cwd: Path = REPO) -> str:
    proc = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"git {shlex.join(args)} failed in {cwd}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def checkout(name: str, rev: str) -> Side:
    """A detached worktree of ``rev`` at ``/tmp/mb-<shortsha>``, made unless already there."""
    sha = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    path = Path(f"/tmp/mb-{git('rev-parse', '--short', sha)}")
    registered = [
        Path(line.split(maxsplit=1)[1])
        for line in git("worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]
    created = not path.exists()
    if created:
        git("worktree", "add", "--detach", str(path), sha)
    elif path.resolve() not in [p.resolve() for p in registered]:
        sys.exit(f"{path} exists but is not a worktree of {REPO}: move it away")
    if git("rev-parse", "HEAD", cwd=path) != sha:
        sys.exit(f"worktree {path} is not at {sha}: remove it (git worktree remove --force)")
    dirty = git(
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        "modelbased",
        "benchmarks",
        ":!benchmarks/results",
        cwd=path,
    )
    if dirty:
        sys.exit(f"worktree {path} has local edits to the code it would measure:\n{dirty}")
    return Side(name, rev, sha, path, created)


def child_env(side: Side) -> dict[str, str]:
    return {**os.environ, **THREAD_ENV, "PYTHONPATH": str(side.worktree)}


CHECK = """import importlib.metadata as md, json, sys
sys.path.insert(0, "benchmarks")
out = {"python": sys.version.split()[0]}
try:
    import _common, modelbased, torch
    out |= {"modelbased": modelbased.__file__, "_common": _common.__file__,
            "torch": torch.__version__, "torch_threads_default": torch.get_num_threads()}
except Exception as exc:
    out["import_error"] = f"{type(exc).__name__}: {exc}"
for dist in ("stable-baselines3", "mbrl", "gymnasium", "numpy"):
    try:
        out[dist] = md.version(dist)
    except md.PackageNotFoundError:
        out[dist] = None
print(json.dumps(out))
"""


def check_imports(side: Side, python: Path) -> None:
    """Fail loudly unless the worktree's own ``modelbased`` and ``_common`` are the ones imported
    under the environment the scripts get (an import error is kept: the runs will record it)."""
    proc = subprocess.run(
        [str(python), "-c", CHECK],
        cwd=side.worktree,
        env=child_env(side),
        capture_output=True,
        text=True,
        check=True,
    )
    side.env = json.loads(proc.stdout.strip().splitlines()[-1])
    if "import_error" in side.env:
        print(f"WARNING: {side.name} ({side.sha[:10]}) does not import: {side.env['import_error']}")
        return
    for module in ("modelbased", "_common"):
        if not Path(side.env[module]).resolve().is_relative_to(side.worktree.resolve()):
            sys.exit(
                f"{side.name}: {module} imported from {side.env[module]}, not from "
                f"{side.worktree}: the measurement would be of the wrong code"
            )
    print(f"{side.name}: {side.rev} = {side.sha[:10]}, modelbased from {side.env['modelbased']}")


def lookup(data: dict[str, Any], key: str) -> float | None:
    value: Any = data
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value) if isinstance(value, int | float) else None


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def run_once(
    name: str, side: Side, args: argparse.Namespace, log_dir: Path, round_: int
) -> dict[str, Any]:
    """Run one benchmark script at one side; its figures, or the error text."""
    bench = BENCHMARKS[name]
    cmd = [str(args.python), bench.script, *(bench.quick_args if args.quick else bench.args)]
    if name == "mcts" and MCTX_VENV.exists():
        cmd += ["--mctx-python", str(MCTX_VENV / "bin" / "python")]
    results = side.worktree / bench.results
    results.unlink(missing_ok=True)  # the worktree's committed copy must not pass for this run's
    log = log_dir / f"r{round_}_{name}_{side.name}"
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    load, w0 = os.getloadavg(), time.perf_counter()
    error = None
    try:
        with open(f"{log}.out", "w") as out, open(f"{log}.err", "w") as err:
            proc = subprocess.run(
                cmd,
                cwd=side.worktree,
                env=child_env(side),
                stdout=out,
                stderr=err,
                timeout=TIMEOUT_S,
            )
        if proc.returncode:
            error = f"exit status {proc.returncode}:\n{tail(Path(f'{log}.err'))}"
    except subprocess.TimeoutExpired:
        error = f"timed out after {TIMEOUT_S} s"
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    run: dict[str, Any] = {
        "round": round_,
        "benchmark": name,
        "side": side.name,
        "command": shlex.join(cmd),
        "wall_s": time.perf_counter() - w0,
        "cpu_s": after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime,
        "loadavg_before": load,
        "loadavg_after": os.getloadavg(),
        "log": str(log),
        "error": error,
        "figures": {},
    }
    if error is None:
        if not results.exists():
            run["error"] = f"{bench.results} was not written:\n{tail(Path(f'{log}.out'))}"
        else:
            data = latest_figures(json.loads(results.read_text()))
            run["figures"] = {f.key: lookup(data, f.key) for f in bench.figures(data)}
            run["figure_meta"] = [asdict(f) for f in bench.figures(data)]
            missing = [
                f.key
                for f in bench.figures(data)
                if not f.reference and run["figures"][f.key] is None
            ]
            if missing or not run["figures"]:
                run["error"] = f"figures missing from {bench.results}: {missing or 'all'}"
    status = "ok" if run["error"] is None else "FAILED: " + run["error"].splitlines()[0]
    print(
        f"[round {round_ + 1}/{args.rounds}] {name} {side.name} ({side.sha[:10]}): "
        f"{run['wall_s']:.0f} s wall, {run['cpu_s']:.0f} s CPU, {status}",
        flush=True,
    )
    return run


def verdict(fig: dict[str, Any]) -> str:
    ratio = fig["ratio_after_over_before"]
    if ratio is None:
        return "n/a"
    if fig["reference"]:
        return "(reference)"
    worse = ratio < 1 - TOLERANCE if fig["higher_is_better"] else ratio > 1 + TOLERANCE
    better = ratio > 1 + TOLERANCE if fig["higher_is_better"] else ratio < 1 - TOLERANCE
    return "REGRESSION" if worse else "faster" if better else "ok"


def summarize(runs: list[dict[str, Any]], rounds: int) -> dict[str, dict[str, Any]]:
    """Per figure: every round's value per side, medians, after/before and the verdict."""
    figures: dict[str, dict[str, Any]] = {}
    for run in runs:
        for meta in run.pop("figure_meta", []):
            figures.setdefault(
                f"{run['benchmark']}:{meta['key']}", {"benchmark": run["benchmark"], **meta}
            )
    for fig in figures.values():
        for side in SIDES:
            values: list[float | None] = [None] * rounds
            for run in runs:
                if run["benchmark"] == fig["benchmark"] and run["side"] == side:
                    values[run["round"]] = run["figures"].get(fig["key"])
            present = [v for v in values if v is not None]
            fig[side] = values
            fig[f"{side}_median"] = statistics.median(present) if present else None
        b, a = fig["before_median"], fig["after_median"]
        fig["ratio_after_over_before"] = a / b if a is not None and b else None
        fig["verdict"] = verdict(fig)
    return figures


def latest_figures(data: Any) -> dict[str, Any]:
    """The figures a script run just wrote: its results file is a list of records (the last is
    this run's) or, at revisions before the records, one dict."""
    if isinstance(data, list):
        return data[-1].get("figures", data[-1]) if data else {}
    return data


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--before", required=True, help="git revision measured as 'before'")
    p.add_argument("--after", required=True, help="git revision measured as 'after'")
    p.add_argument("--rounds", type=int, default=2, help="before/after pairs per benchmark")
    p.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated benchmarks")
    p.add_argument("--quick", action="store_true", help="few repeats: smoke tests of this tool")
    p.add_argument("--python", type=Path, default=PYTHON, help="interpreter for the scripts")
    p.add_argument("--keep-worktrees", action="store_true", help="keep the worktrees made here")
    args = p.parse_args()
    only = [n.strip() for n in args.only.split(",") if n.strip()]
    if unknown := sorted(set(only) - set(BENCHMARKS)):
        p.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    if args.rounds < 1 or not args.python.exists():
        p.error(f"need --rounds >= 1 and an interpreter ({args.python} missing?)")
    record = common.start_record(
        args,
        quick=args.quick,
        rounds=args.rounds,
        benchmarks=only,
    )
    log_dir = Path(f"/tmp/before_after_logs/{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    sides: list[Side] = []
    runs: list[dict[str, Any]] = []
    try:
        for name, rev in zip(SIDES, (args.before, args.after), strict=True):
            sides.append(checkout(name, rev))
            check_imports(sides[-1], args.python)
        log_dir.mkdir(parents=True)
        for round_ in range(args.rounds):
            for name in only:
                for side in sides:  # one process at a time
                    runs.append(run_once(name, side, args, log_dir, round_))
    finally:
        for side in sides:
            if side.created and not args.keep_worktrees and side.worktree.exists():
                git("worktree", "remove", "--force", str(side.worktree))
    figures = summarize(runs, args.rounds)
    record |= {
        "finished": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        **{
            side.name: {
                "rev": side.rev,
                "sha": side.sha,
                "worktree": str(side.worktree),
                "env": side.env,
            }
            for side in sides
        },
        "torch_threads": 1,
        "thread_note": "each script calls torch.set_num_threads(1); children also get "
        + " ".join(f"{k}={v}" for k, v in THREAD_ENV.items()),
        "regression_rule": f"our figure more than {TOLERANCE:.0%} worse at the after side",
    }
    common.append_record(OUT.stem, record, {"comparisons": figures, "runs": runs})
    rows = [
        [
            f["label"],
            "higher" if f["higher_is_better"] else "lower",
            f["before_median"],
            f["after_median"],
            f["ratio_after_over_before"],
            f["verdict"],
        ]
        for f in figures.values()
    ]
    measured = {f["benchmark"] for f in figures.values()}
    rows += [
        [f"{name}: no figures", "", None, None, None, "FAILED"]
        for name in only
        if name not in measured
    ]
    common.print_table(
        ["figure", "better", "before median", "after median", "after/before", "verdict"],
        rows,
        f"before {args.before} ({sides[0].sha[:10]}) vs after {args.after} ({sides[1].sha[:10]}),"
        f" median of {args.rounds} round(s){', QUICK' if args.quick else ''}",
    )
    moved = [
        f["ratio_after_over_before"]
        for f in figures.values()
        if f["reference"] and f["ratio_after_over_before"]
    ]
    if moved:
        print(
            f"\nreference figures (code unchanged between sides) moved {min(moved):.3g}x to "
            f"{max(moved):.3g}x: changes of that size are the machine, not the code; the ratios "
            "to a peer measured in the same process are the robust figures"
        )
    failed = [r for r in runs if r["error"]]
    for r in failed:
        print(f"\n{r['benchmark']} {r['side']} round {r['round'] + 1} failed:\n{r['error']}")
    print(f"\nappended a record to {OUT} (logs in {log_dir})")
    regressed = any(f["verdict"] == "REGRESSION" for f in figures.values())
    return 1 if regressed or failed else 0


if __name__ == "__main__":
    sys.exit(main())
