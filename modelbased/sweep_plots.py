"""``modelbased plot SWEEP_DIR``: a sweep's learning curves per configuration over seeds.

Two panels share the env-step axis: the median over seeds of the evaluation return (left) and
the interquartile mean (right, Agarwal et al. 2021), each with its percentile-bootstrap 95%
band (seeds resampled with replacement, :mod:`modelbased.stats`). A configuration's runs are
the sweep's run dirs of one label (``runs/LABEL-sS``); they evaluate at the same env steps, so
the curves are taken at the steps every seed has reached (an unfinished run shortens its
configuration's curve rather than dropping out). Drawn on the Agg canvas like
:mod:`modelbased.plots`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from modelbased.core.errors import CheckpointError
from modelbased.plots import check_output, save_figure
from modelbased.runs import read_eval
from modelbased.stats import Statistic, bootstrap_band, iqm_rows

RESAMPLES = 2_000  # per evaluation step; the band's ends move by well under a pixel beyond this


def seed_curves(runs: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Eval steps ``[T]`` every run reached, and the returns there ``[n seeds, T]``."""
    evals = [read_eval(r) for r in runs]
    steps = evals[0]["env_steps"]
    for ev in evals[1:]:
        steps = np.intersect1d(steps, ev["env_steps"])
    returns = np.array([ev["return_mean"][np.searchsorted(ev["env_steps"], steps)] for ev in evals])
    return steps, returns


def sweep_figure(groups: dict[str, list[Path]], title: str) -> Figure:
    """Median and IQM over seeds with bootstrap 95% bands, one colour per configuration."""
    fig = Figure(figsize=(11, 4.6))
    FigureCanvasAgg(fig)
    ax_med, ax_iqm = fig.subplots(1, 2, sharex=True, sharey=True)
    for i, (name, runs) in enumerate(groups.items()):
        steps, returns = seed_curves(runs)
        color = f"C{i % 10}"
        stats: tuple[tuple[Any, Statistic], ...] = ((ax_med, "median"), (ax_iqm, "iqm"))
        for ax, stat in stats:
            y = np.median(returns, axis=0) if stat == "median" else iqm_rows(returns.T)
            lo, hi = bootstrap_band(returns, stat, resamples=RESAMPLES)
            ax.plot(steps, y, color=color, lw=1.8, marker="o", ms=3, label=f"{name} ({len(runs)})")
            ax.fill_between(steps, lo, hi, color=color, alpha=0.18, lw=0)
    ax_med.set_title("median over seeds, bootstrap 95% band", fontsize=10)
    ax_iqm.set_title("IQM over seeds, bootstrap 95% band", fontsize=10)
    ax_med.set_ylabel("eval return")
    for ax in (ax_med, ax_iqm):
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
    ax_iqm.legend(fontsize=7.5, loc="best", framealpha=0.85, title="configuration (seeds)")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def plot_sweeps(sweep_dirs: list[str | Path], out: str | Path) -> Path:
    """Draw the configurations of ``sweep_dirs`` into ``out``; a sweep without evaluations yet
    is a :class:`CheckpointError`, an unwritable ``out`` an ``OutputError``."""
    from modelbased.sweep import read_spec, sweep_runs

    check_output(Path(out))
    groups: dict[str, list[Path]] = {}
    titles = []
    for d in map(Path, sweep_dirs):
        spec = read_spec(d)
        titles.append(f"{spec.algo} on {spec.env_id}")
        prefix = f"{d.name}: " if len(sweep_dirs) > 1 else ""
        found = sweep_runs(d)
        if not found:
            raise CheckpointError(f"sweep {d} has no run with evaluations yet")
        groups |= {prefix + name: runs for name, runs in found.items()}
    return save_figure(sweep_figure(groups, ", ".join(dict.fromkeys(titles))), out)
