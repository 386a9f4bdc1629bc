"""Helpers shared by the benchmark scripts (run them as ``python benchmarks/<name>.py``): the
results directory and its append-only records, tables, timing, and the greedy path length of a
tabular Q on a maze with every tie-break considered.

Records. Every invocation of a benchmark appends one JSON record (or one per seed, for scripts
whose seeds take hours) to the list in ``results/<name>.json``; nothing rewrites an earlier
record. A record holds its provenance (``command``, ``git_commit``, ``date``, ``seeds``,
``torch_threads``, ``loadavg_before``/``loadavg_after``, ``python``, ``args``) and every figure
under ``figures``. Records converted from the older one-dict files carry ``"legacy": true``,
``git_commit: null`` and the old content under ``figures``. ``benchmarks/report.py`` builds
docs/results.md and the README's table from these records alone."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

try:
    import fcntl
except ImportError:  # not on Windows: appends are then unlocked
    fcntl = None  # type: ignore[assignment]

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]


def git_commit() -> str | None:
    """``HEAD``'s hash, with ``-dirty`` if tracked files differ from it (``None`` outside git)."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout

    head = git("rev-parse", "HEAD").strip()
    if not head:
        return None
    dirty = git("status", "--porcelain", "--untracked-files=no").strip()
    return head + ("-dirty" if dirty else "")


def start_record(
    args: argparse.Namespace | dict[str, Any] | None = None,
    seeds: Iterable[int] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The provenance known before a run: command line, commit, date, seeds, load averages,
    torch's version and thread count (call it after pinning the threads), the arguments."""
    torch = sys.modules.get("torch")
    return {
        "command": shlex.join([sys.executable, *sys.argv]),
        "git_commit": git_commit(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "torch": getattr(torch, "__version__", None),
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "seeds": None if seeds is None else [int(s) for s in seeds],
        "args": vars(args) if isinstance(args, argparse.Namespace) else args,
        "loadavg_before": list(os.getloadavg()),
        **extra,
    }


def append_record(
    name: str, record: dict[str, Any], figures: dict[str, Any], out_dir: Path = RESULTS
) -> Path:
    """Append ``record`` with ``loadavg_after`` and ``figures`` to ``<out_dir>/<name>.json`` (a
    JSON list; written atomically under a lock, so processes running seeds side by side can
    append to one file); refuses to touch a file that is not a list."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    entry = {"benchmark": name, **record, "loadavg_after": list(os.getloadavg())}
    entry["figures"] = figures
    lock = os.open(out_dir, os.O_RDONLY)
    try:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        records = json.loads(path.read_text()) if path.exists() else []
        if not isinstance(records, list):
            sys.exit(f"{path} is not a JSON list: not touching it; the record was:\n{entry}")
        text = json.dumps([*records, entry], indent=1, default=_plain) + "\n"
        tmp = path.with_suffix(f".json.tmp{os.getpid()}")
        tmp.write_text(text)
        tmp.replace(path)
    finally:
        os.close(lock)
    return path


def load_records(name: str, out_dir: Path = RESULTS) -> list[dict[str, Any]]:
    """Every record of benchmark ``name`` (``[]`` if none yet)."""
    path = out_dir / f"{name}.json"
    records = json.loads(path.read_text()) if path.exists() else []
    if not isinstance(records, list):
        raise ValueError(f"{path} is not a list of records")
    return records


def already_stored(
    name: str,
    seed: int,
    args: argparse.Namespace,
    keys: Iterable[str],
    out_dir: Path = RESULTS,
    **fields: Any,
) -> bool:
    """Whether ``results/<name>.json`` already holds a record with provenance for ``seed`` run
    with the same ``args`` at ``keys`` and the same record ``fields`` (e.g. ``part``, ``task``):
    what ``--resume`` skips, so a long benchmark stopped by the end of a session goes on with
    the seeds it has not stored."""
    for r in load_records(name, out_dir):
        if r.get("legacy") or r.get("seeds") != [seed]:
            continue
        stored_args = r.get("args") or {}
        if all(stored_args.get(k) == getattr(args, k) for k in keys) and all(
            r.get(k) == v for k, v in fields.items()
        ):
            return True
    return False


def skip_stored(
    name: str, seed: int, args: argparse.Namespace, keys: Iterable[str], **fields: Any
) -> bool:
    """``--resume``: True (and says so) when :func:`already_stored` finds this run."""
    if getattr(args, "resume", False) and already_stored(name, seed, args, keys, **fields):
        print(f"{name}: seed {seed} {fields} already stored; skipped (--resume)", flush=True)
        return True
    return False


def setup_torch_threads() -> None:
    """Pin torch to one thread (the tabular benchmarks do not use it; kept for uniformity)."""
    import torch

    torch.set_num_threads(1)


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``fn()`` after one untimed call."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def _plain(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def print_table(header: list[str], rows: list[list[Any]], title: str = "") -> None:
    cells = [[_fmt(c) for c in row] for row in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    if title:
        print(f"\n{title}")
    for k, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if k == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (float, np.floating)):
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return str(value)


def maze_transitions(maze: Any) -> np.ndarray:
    """``next_state[s, a]`` of a ``modelbased`` maze under its current walls."""
    table = maze.P
    return np.array([[table[s][a][0][1] for a in range(4)] for s in range(len(table))])


def greedy_path_length(
    Q: np.ndarray, next_state: np.ndarray, start: int, goal: int, cap: int = 200
) -> int | None:
    """Steps from ``start`` to ``goal`` following ``argmax Q``, taking the longest over every
    way of breaking ties; ``None`` if some tie-break never reaches the goal within ``cap``."""
    frontier = {start}
    for step in range(1, cap + 1):
        nxt: set[int] = set()
        for s in frontier:
            q = Q[s]
            if q.max() == q.min():  # no preference at all: the greedy policy is undefined here
                return None
            nxt.update(int(s2) for s2 in next_state[s, q == q.max()] if s2 != goal)
        if not nxt:
            return step
        frontier = nxt
    return None


def timed_rate(fn: Callable[[], None], updates: int, repeats: int) -> float:
    """Median updates/s over ``repeats`` timings of ``fn`` (which does ``updates`` updates)."""
    fn()  # warm-up (numba compilation, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return updates / statistics.median(times)


def median_or_none(values: list[int | None]) -> float | None:
    """Median over runs, counting runs that never settled as infinitely late."""
    finite = sorted(v if v is not None else float("inf") for v in values)
    m = statistics.median(finite) if finite else None
    return None if m is None or m == float("inf") else m


class EvalCurve:
    """Eval returns against env steps, with wall/CPU seconds since the start and the learning
    time (time spent inside evaluations excluded); :meth:`result` adds the threshold figures of
    ``benchmarks/_stats.py`` (reach-and-stay, first crossing, final, last-5 mean)."""

    def __init__(self, threshold: float | None) -> None:
        self.threshold = threshold
        self.points: list[dict[str, float]] = []
        self.eval_wall = self.eval_cpu = 0.0
        self.w0, self.c0 = time.perf_counter(), time.process_time()

    def timed_eval(self, fn: Callable[[], float]) -> float:
        """``fn()``, its time counted as evaluation."""
        w, c = time.perf_counter(), time.process_time()
        value = fn()
        self.eval_wall += time.perf_counter() - w
        self.eval_cpu += time.process_time() - c
        return value

    def add(self, steps: int, ret: float) -> None:
        wall, cpu = time.perf_counter() - self.w0, time.process_time() - self.c0
        self.points.append(
            {
                "steps": steps,
                "return": ret,
                "wall_s": wall,
                "cpu_s": cpu,
                "learn_wall_s": wall - self.eval_wall,
                "learn_cpu_s": cpu - self.eval_cpu,
            }
        )

    def result(self) -> dict[str, Any]:
        """The threshold figures, the learning time up to the first crossing and up to the step
        from which the evals stay >= the threshold, the totals, and the curve."""
        import _stats

        out = _stats.curve_figures(self.points, self.threshold)
        at = {p["steps"]: p for p in self.points}
        for key in ("first_crossing", "steps_to_threshold_and_stay"):
            hit = at.get(out[key])
            for clock in ("learn_wall_s", "learn_cpu_s"):
                out[f"{clock}_to_{key}"] = hit[clock] if hit else None
        last = self.points[-1] if self.points else {}
        return out | {
            "total_steps": last.get("steps"),
            "total_learn_wall_s": last.get("learn_wall_s"),
            "total_learn_cpu_s": last.get("learn_cpu_s"),
            "curve": self.points,
        }


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def eval_tracker(threshold: float | None) -> Any:
    """A callback keeping the eval curve (an :class:`EvalCurve` of ``threshold``; the
    evaluations' own wall/CPU seconds kept apart from learning) in ``.curve`` and every train
    row (``steps`` and the scalars, phase timers included) in ``.rows``; prints each eval."""
    import modelbased as mb

    class EvalTracker(mb.Callback):
        def __init__(self) -> None:
            self.curve = EvalCurve(threshold)
            self.rows: list[dict[str, float]] = []

        def on_train(self, state: Any, scalars: dict[str, float]) -> None:
            self.rows.append({"steps": state.env_steps, **scalars})

        def on_eval(self, state: Any, stats: dict[str, Any]) -> None:
            print(f"  eval {state.env_steps}: {stats['return_mean']:.1f}", flush=True)
            self.curve.eval_wall += stats["wall_s"]
            self.curve.eval_cpu += stats["cpu_s"]
            self.curve.add(state.env_steps, stats["return_mean"])

    return EvalTracker()


def episode_recorder(
    stop_at: float | None = None, w0: float | None = None, c0: float | None = None
) -> Any:
    """A callback recording every training episode (``steps``, ``return``, ``length``,
    ``wall_s``/``cpu_s`` since ``w0``/``c0``, default: now) and the planner's seconds per plan
    in each logged interval (the phase timer's ``time/plan_s`` over ``time/plan_calls``); with
    ``stop_at`` it stops training at the first episode returning >= ``stop_at``."""
    import modelbased as mb

    class EpisodeRecorder(mb.Callback):
        def __init__(self) -> None:
            self.rows: list[dict[str, float]] = []
            self.plan_s: list[float] = []
            self.w0 = time.perf_counter() if w0 is None else w0
            self.c0 = time.process_time() if c0 is None else c0

        def on_train(self, state: Any, scalars: dict[str, float]) -> None:
            if scalars.get("time/plan_calls"):
                self.plan_s.append(scalars["time/plan_s"] / scalars["time/plan_calls"])

        def on_episode(self, state: Any, episode_return: float, length: int) -> bool:
            self.rows.append(
                {
                    "steps": state.env_steps,
                    "return": float(episode_return),
                    "length": int(length),
                    "wall_s": time.perf_counter() - self.w0,
                    "cpu_s": time.process_time() - self.c0,
                }
            )
            return stop_at is None or episode_return < stop_at

    return EpisodeRecorder()
