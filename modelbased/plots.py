"""Learning curves of run directories: return and episode length against env steps or wall time.

Two panels share the x axis: the evaluation return (top) and the episode length (bottom: the
evaluations' ``length_mean``, and thinner the training episodes of ``episodes.csv``). Where
every return is equal (each DynaMaze episode that reaches the goal returns 1) the length panel
is the one that shows learning.

Evaluations taken before the agent's policy was ready (``eval.csv``'s ``policy_ready`` is 0: a
planner without a model yet, value iteration before it plans) are drawn hollow over a grey span,
and each panel's y-range comes from the ready points alone: unready points beyond it sit on the
axis edge as hollow triangles, with a note of how many and the farthest value. A training
episode counts towards the range only if it started at or after its run's first ready
evaluation.

Runs of one configuration (same algorithm, env id and config; the seed may differ) form a
group. A group of one is drawn as its line with the band of ± the std of the evaluation
episodes' returns. A group of several is drawn as the median over runs with the interquartile
range across runs as band, on a common grid: the union of the runs' x values where every run
has data, each run linearly interpolated onto it. Runs of one configuration evaluate at the
same env steps, so against env steps the grid is those steps and nothing is interpolated;
against wall time it is. A grid point counts as ready only where every run's last evaluation at
or before it was ready.

Everything here works on data already read (:class:`RunCurve`); :mod:`modelbased.runs` reads
run directories and writes ``curve.png``. Figures are drawn on the Agg canvas without pyplot,
so the caller's matplotlib backend is left alone.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from modelbased.core.errors import OutputError

XAxis = Literal["steps", "wall"]
X_COLUMN = {"steps": "env_steps", "wall": "wall_time_s"}
X_LABEL = {"steps": "env steps", "wall": "wall-clock time (s)"}
UNREADY_SPAN = "0.88"  # grey of the "policy not ready" span
MAX_MARKERS = 60  # ready evaluations get markers up to this many points
MAX_TRAIN_DOTS = 300  # training episodes get dots up to this many


@dataclass
class RunCurve:
    """One run directory's data. ``evals``: float arrays ``env_steps``, ``wall_time_s``,
    ``return_mean``, ``return_std``, ``length_mean`` (NaN where not recorded) and a bool array
    ``policy_ready``; ``episodes``: ``env_steps``, ``length``, ``wall_time_s`` of the training
    episodes (empty arrays when none were recorded)."""

    name: str
    evals: dict[str, np.ndarray]
    episodes: dict[str, np.ndarray]
    algo: str | None = None
    env_id: str | None = None
    config: dict[str, Any] | None = None

    def group_key(self) -> str:
        """Equal for runs of one configuration (algorithm, env id, config; not the seed); a run
        without a readable config is a group of its own."""
        if self.config is None:
            return f"run:{id(self)}"
        return json.dumps([self.algo, self.env_id, self.config], sort_keys=True, default=str)


@dataclass
class Series:
    """What one group draws in one panel: ``y`` is the run's values or the median over runs,
    ``lo``/``hi`` the band (``None``: no band), ``ready`` whether the policy was ready at each x;
    ``train_x``/``train_y`` the training episodes (length panel), ``train_counted`` whether each
    counts towards the y-range."""

    x: np.ndarray
    y: np.ndarray
    lo: np.ndarray | None
    hi: np.ndarray | None
    ready: np.ndarray
    train_x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    train_y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    train_counted: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))


def group_runs(curves: list[RunCurve]) -> list[list[RunCurve]]:
    """Runs of one configuration together, groups in the order of their first run."""
    groups: dict[str, list[RunCurve]] = {}
    for curve in curves:
        groups.setdefault(curve.group_key(), []).append(curve)
    return list(groups.values())


def group_label(group: list[RunCurve]) -> str:
    """``algo name (1 run)``; for several runs the common prefix of their names and ``*``."""
    names = [c.name for c in group]
    name = names[0]
    if len(names) > 1:
        name = os.path.commonprefix(names).rstrip("-_. ") + "*"
        name = name if len(name) > 1 else f"{names[0]}, ..."
    algo = f"{group[0].algo} " if group[0].algo else ""
    runs = f"{len(group)} run" + ("s" if len(group) > 1 else "")
    return f"{algo}{name} ({runs})"


def _ready_at(run_x: np.ndarray, run_ready: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Whether the run's last evaluation at or before each grid x was ready."""
    idx = np.searchsorted(run_x, grid, side="right") - 1
    return run_ready[np.clip(idx, 0, len(run_x) - 1)]


def _common_grid(xs: list[np.ndarray]) -> np.ndarray:
    """The union of the runs' x values inside the range every run covers."""
    lo, hi = max(x[0] for x in xs), min(x[-1] for x in xs)
    grid = np.unique(np.concatenate(xs))
    return grid[(grid >= lo) & (grid <= hi)]


def _training(run: RunCurve, x: XAxis) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training episode x, length, and whether each started at or after the first ready eval."""
    ep = run.episodes
    if len(ep["env_steps"]) == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0, bool)
    ready, steps = run.evals["policy_ready"], run.evals["env_steps"]
    # ready from the start if the first evaluation was; else from the first ready evaluation
    first_ready = -np.inf if ready[0] else (steps[ready][0] if ready.any() else np.inf)
    counted = ep["env_steps"] - ep["length"] >= first_ready
    return ep[X_COLUMN[x]], ep["length"], counted


def group_series(group: list[RunCurve], x: XAxis = "steps") -> dict[str, Series]:
    """The ``return`` and ``length`` series of one group (see the module docstring)."""
    col = X_COLUMN[x]
    if len(group) == 1:
        ev = group[0].evals
        std = ev["return_std"]
        ret = Series(
            ev[col],
            ev["return_mean"],
            ev["return_mean"] - std,
            ev["return_mean"] + std,
            ev["policy_ready"],
        )
        tx, ty, tc = _training(group[0], x)
        length = Series(ev[col], ev["length_mean"], None, None, ev["policy_ready"], tx, ty, tc)
        return {"return": ret, "length": length}
    xs = [run.evals[col] for run in group]
    grid = _common_grid(xs)
    ready = np.all([_ready_at(r.evals[col], r.evals["policy_ready"], grid) for r in group], 0)
    out = {}
    for panel, key in (("return", "return_mean"), ("length", "length_mean")):
        ys = np.array([np.interp(grid, r.evals[col], r.evals[key]) for r in group])
        q25, med, q75 = np.percentile(ys, [25, 50, 75], axis=0)
        out[panel] = Series(grid, med, q25, q75, ready)
    train = [_training(run, x) for run in group]
    if all(len(t[0]) for t in train):
        tgrid = _common_grid([t[0] for t in train])
        out["length"].train_x = tgrid
        out["length"].train_y = np.median([np.interp(tgrid, t[0], t[1]) for t in train], 0)
        counted = [np.interp(tgrid, t[0], t[2].astype(float)) for t in train]
        out["length"].train_counted = np.all(np.array(counted) == 1.0, 0)
    return out


def y_limits(series: list[Series], floor: float | None = None) -> tuple[float, float]:
    """The y-range of a panel from its ready points (band and counted training episodes
    included), or from every point when none is ready; ``floor`` is always inside it."""
    ready = [s for s in series if s.ready.any()]
    values = []
    for s in ready or series:
        keep = s.ready if ready else np.ones_like(s.ready)
        values += [a[keep] for a in (s.y, s.lo, s.hi) if a is not None]
        values.append(s.train_y[s.train_counted] if ready else s.train_y)
    v = np.concatenate(values) if values else np.zeros(0)
    v = v[np.isfinite(v)]
    if floor is not None:
        v = np.append(v, floor)
    if len(v) == 0:
        return 0.0, 1.0
    lo, hi = float(v.min()), float(v.max())
    pad = 0.06 * (hi - lo) if hi > lo else max(1.0, 0.1 * abs(hi))
    return (lo if lo == floor else lo - pad), hi + pad


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _evaluations(values: list[float]) -> str:
    return f"{len(values)} not-ready evaluation" + ("s" if len(values) > 1 else "")


def _draw_panel(ax: Any, drawn: list[tuple[Series, str]], floor: float | None) -> list[str]:
    """Draw one panel's series in their colours; return the notes of off-scale points."""
    lo, hi = y_limits([s for s, _ in drawn], floor)
    below: list[float] = []
    above: list[float] = []
    for s, color in drawn:
        if len(s.train_x):
            dots = "." if len(s.train_x) <= MAX_TRAIN_DOTS else None
            ax.plot(s.train_x, s.train_y, color=color, lw=0.8, alpha=0.45, marker=dots, ms=3)
        if not np.isfinite(s.y).any():
            continue
        ready = s.ready
        y = np.clip(s.y, lo, hi)
        ax.plot(s.x, y, color=color, lw=1.0, ls=":", zorder=2)  # joins unready points too
        ax.plot(
            np.where(ready, s.x, np.nan),
            np.where(ready, s.y, np.nan),
            color=color,
            lw=1.8,
            marker="o" if len(s.x) <= MAX_MARKERS else None,
            ms=3.5,
            zorder=3,
        )
        if s.lo is not None and s.hi is not None:
            ax.fill_between(s.x, s.lo, s.hi, where=ready, color=color, alpha=0.2, lw=0, zorder=1)
        for mask, marker, bucket in (
            (~ready & (s.y >= lo) & (s.y <= hi), "o", None),
            (~ready & (s.y < lo), "v", below),
            (~ready & (s.y > hi), "^", above),
        ):
            if mask.any():
                ax.plot(
                    s.x[mask],
                    y[mask],
                    ls="none",
                    marker=marker,
                    ms=6,
                    mfc="white",
                    mec=color,
                    mew=1.4,
                    zorder=4,
                    clip_on=False,
                )
            if bucket is not None:
                bucket.extend(s.y[mask])
    ax.set_ylim(lo, hi)
    notes = []
    if below:
        notes.append(f"\u25bd {_evaluations(below)} below, lowest {_fmt(min(below))}")
    if above:
        notes.append(f"\u25b3 {_evaluations(above)} above, highest {_fmt(max(above))}")
    for note in notes:  # just inside the edge the points sit on
        top = note.startswith("\u25b3")
        ax.text(
            0.015,
            0.9 if top else 0.1,
            note,
            transform=ax.transAxes,
            va="top" if top else "bottom",
            fontsize=7.5,
            color="0.2",
            bbox={"fc": "white", "ec": "none", "alpha": 0.85, "pad": 1.5},
        )
    return notes


def _unready_spans(series: list[Series]) -> list[tuple[float, float]]:
    """x-spans from the last ready point before each stretch of unready ones (or the first
    point) to the stretch's last point."""
    spans = []
    for s in series:
        start = None
        for i, ok in enumerate(s.ready):
            if not ok and start is None:
                start = s.x[i - 1] if i > 0 else min(0.0, float(s.x[0]))
            if start is not None and (ok or i == len(s.ready) - 1):
                spans.append((float(start), float(s.x[i if not ok else i - 1])))
                start = None
    return spans


def curve_figure(curves: list[RunCurve], x: XAxis = "steps") -> Figure:
    """The two-panel figure of ``curves`` (return above, episode length below) against env
    steps or wall time; see the module docstring for groups, bands and unready evaluations."""
    fig = Figure(figsize=(7.5, 6.4))
    FigureCanvasAgg(fig)
    ax_ret, ax_len = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1]})
    groups = group_runs(curves)
    colors = [f"C{i % 10}" for i in range(len(groups))]
    series = [group_series(g, x) for g in groups]
    for s in series:
        for lo_x, hi_x in _unready_spans([s["return"]]):
            for ax in (ax_ret, ax_len):
                ax.axvspan(lo_x, hi_x, color=UNREADY_SPAN, lw=0, zorder=0)
    _draw_panel(ax_ret, [(s["return"], c) for s, c in zip(series, colors, strict=True)], None)
    _draw_panel(ax_len, [(s["length"], c) for s, c in zip(series, colors, strict=True)], 0.0)

    handles: list[Any] = []
    for g, c in zip(groups, colors, strict=True):
        band = "median, band: interquartile range over runs" if len(g) > 1 else "band: ± eval std"
        handles.append(Line2D([], [], color=c, lw=1.8, label=f"{group_label(g)}; {band}"))
    if any(not s["return"].ready.all() for s in series):
        handles += [
            Line2D(
                [],
                [],
                ls="none",
                marker="o",
                mfc="white",
                mec="0.3",
                mew=1.4,
                label="evaluation before the policy was ready (no model / plan yet)",
            ),
            Patch(color=UNREADY_SPAN, label="policy not ready"),
        ]
    ax_ret.legend(handles=handles, fontsize=7.5, loc="best", framealpha=0.85)
    length_handles = [
        Line2D([], [], color="0.2", lw=1.8, marker="o", ms=3.5, label="evaluation episodes (mean)")
    ]
    if any(len(s["length"].train_x) for s in series):
        length_handles.append(
            Line2D([], [], color="0.2", lw=0.8, alpha=0.45, label="training episodes")
        )
    ax_len.legend(handles=length_handles, fontsize=7.5, loc="best", framealpha=0.85)

    envs = sorted({c.env_id for c in curves if c.env_id})
    ax_ret.set_title(", ".join(envs) if envs else "learning curves", fontsize=10)
    ax_ret.set_ylabel("eval return")
    ax_len.set_ylabel("episode length (steps)")
    ax_len.set_xlabel(X_LABEL[x])
    for ax in (ax_ret, ax_len):
        ax.grid(alpha=0.3)
    ax_len.set_xlim(left=min(0.0, *(float(s["return"].x.min()) for s in series)))
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, out: str | Path) -> Path:
    """Write ``fig`` to ``out`` atomically (a temp file beside it, then a rename); an unwritable
    path is an :class:`OutputError`."""
    out = Path(out)
    check_output(out)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    try:
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from exc
    return out


def check_output(out: Path) -> None:
    """Raise :class:`OutputError` unless ``out`` can be an image written into an existing,
    writable folder."""
    if out.is_dir():
        raise OutputError(f"cannot write {out}: it is a folder; give a file name like curves.png")
    formats = FigureCanvasAgg(Figure()).get_supported_filetypes()
    if out.suffix.lstrip(".").lower() not in formats:
        what = f"unknown image format {out.suffix!r}" if out.suffix else "no file extension"
        raise OutputError(f"cannot write {out}: {what}; use .png, .svg or .pdf")
    if not out.parent.exists():
        raise OutputError(f"cannot write {out}: folder {out.parent} does not exist")
    if not out.parent.is_dir():
        raise OutputError(f"cannot write {out}: {out.parent} is not a folder")
    if not os.access(out.parent, os.W_OK):
        raise OutputError(f"cannot write {out}: folder {out.parent} is not writable")
