"""Statistics of the benchmark summaries, shared by the scripts and ``report.py`` (numpy only).

Learning curves. A curve is the list of evaluations of one run, ``[{"steps": s, "return": r},
...]`` in step order. "Steps to a threshold" counts from where the evaluations reach it and stay
there: :func:`steps_to_threshold_and_stay` is the first eval step from which every later eval is
>= the threshold (``None`` if the last eval is below it), beside :func:`first_crossing`, the
final eval return and the mean of the last 5 evals (:func:`curve_figures`). A run stopped at its
first crossing cannot show whether the return holds: its "stay" figure is not measured.

Over seeds: :func:`summarize` gives the median, the IQM and percentile-bootstrap 95%
intervals of both from :mod:`modelbased.stats` (shared with the sweeps: the IQM drops
``floor(n / 4)`` values at each end as ``scipy.stats.trim_mean(x, 0.25)`` and rliable do; 10,000
resamples of the seeds with replacement, rng seed 0, so the figures are reproducible). A run
that never reached a threshold counts as infinitely late (``inf``): it moves the median and IQM
up instead of dropping out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelbased.stats import LEVEL, RESAMPLES, RNG_SEED, bootstrap_ci, iqm, median

__all__ = ["LEVEL", "RESAMPLES", "RNG_SEED", "bootstrap_ci", "iqm", "median"]


def first_crossing(curve: Sequence[dict[str, Any]], threshold: float) -> int | None:
    """The first eval step whose return is >= ``threshold`` (``None``: never)."""
    return next((int(p["steps"]) for p in curve if p["return"] >= threshold), None)


def steps_to_threshold_and_stay(curve: Sequence[dict[str, Any]], threshold: float) -> int | None:
    """The first eval step from which every later eval's return is >= ``threshold`` (``None``:
    the last eval is below it, or there is no eval)."""
    step = None
    for p in reversed(curve):
        if p["return"] < threshold:
            break
        step = int(p["steps"])
    return step


def final_return(curve: Sequence[dict[str, Any]]) -> float | None:
    """The last eval's return."""
    return float(curve[-1]["return"]) if curve else None


def last_mean(curve: Sequence[dict[str, Any]], k: int = 5) -> float | None:
    """The mean return of the last ``k`` evals (fewer if the curve is shorter)."""
    tail = [float(p["return"]) for p in curve[-k:]]
    return sum(tail) / len(tail) if tail else None


def curve_figures(
    curve: Sequence[dict[str, Any]], threshold: float | None, stopped_at_crossing: bool = False
) -> dict[str, Any]:
    """Every threshold figure of one run: ``first_crossing``, ``steps_to_threshold_and_stay``
    (``None`` and ``stay_measured: False`` for a run stopped at its first crossing),
    ``final_return``, ``last5_mean``, ``evals`` and ``last_step``."""
    out: dict[str, Any] = {
        "threshold": threshold,
        "first_crossing": None if threshold is None else first_crossing(curve, threshold),
        "steps_to_threshold_and_stay": None,
        "stay_measured": threshold is not None and not stopped_at_crossing,
        "final_return": final_return(curve),
        "last5_mean": last_mean(curve, 5),
        "evals": len(curve),
        "last_step": int(curve[-1]["steps"]) if curve else None,
    }
    if out["stay_measured"]:
        out["steps_to_threshold_and_stay"] = steps_to_threshold_and_stay(curve, threshold)
    return out


def summarize(values: Sequence[float | None]) -> dict[str, Any]:
    """``n``, ``median``, ``iqm`` and their bootstrap intervals ``median_ci``, ``iqm_ci`` over
    seeds (``None`` values count as ``inf``: never reached)."""
    return {
        "n": len(values),
        "median": median(values),
        "median_ci": bootstrap_ci(values, "median"),
        "iqm": iqm(values),
        "iqm_ci": bootstrap_ci(values, "iqm"),
    }
