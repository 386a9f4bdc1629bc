"""Helpers shared by the benchmark scripts (run them as ``python benchmarks/<name>.py``): the
results directory, JSON output, tables, timing, and the greedy
path length of a tabular Q on a maze with every tie-break considered."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


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


def save_json(name: str, data: dict[str, Any], out_dir: Path = RESULTS) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    meta = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    path.write_text(json.dumps({"meta": meta, **data}, indent=1, default=_plain) + "\n")
    return path


def load_results(path: Path) -> dict[str, Any]:
    """What :func:`save_json` wrote to ``path`` (without its ``meta``); ``{}`` if nothing yet."""
    results = json.loads(path.read_text()) if path.exists() else {}
    results.pop("meta", None)
    return results


def _plain(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
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


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def stop_at_return(target: float, w0: float | None = None, c0: float | None = None) -> Any:
    """A callback recording every training episode (``steps``, ``return``, ``length``,
    ``wall_s``/``cpu_s`` since ``w0``/``c0``, default: now) and the planner's seconds per plan
    in each logged interval (the phase timer's ``time/plan_s`` over ``time/plan_calls``); it
    stops training at the first episode returning >= ``target``."""
    import modelbased as mb

    class StopAtReturn(mb.Callback):
        def __init__(self) -> None:
            self.rows: list[dict[str, float]] = []
            self.plan_s: list[float] = []
            self.w0 = time.perf_counter() if w0 is None else w0
            self.c0 = time.process_time() if c0 is None else c0

        def on_train(self, state: Any, scalars: dict[str, float]) -> None:
            if scalars.get("time/plan_calls"):
                self.plan_s.append(scalars["time/plan_s"] / scalars["time/plan_calls"])

        def on_episode(self, state: Any, episode_return: float, length: int) -> bool:
            self.rows.append({"steps": state.env_steps, "return": float(episode_return),
                              "length": int(length), "wall_s": time.perf_counter() - self.w0,
                              "cpu_s": time.process_time() - self.c0})  # fmt: skip
            return episode_return < target

    return StopAtReturn()
