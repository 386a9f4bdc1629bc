"""Statistics of the benchmark summaries, shared by the scripts and ``report.py`` (numpy only).

Learning curves. A curve is the list of evaluations of one run, ``[{"steps": s, "return": r},
...]`` in step order. "Steps to a threshold" counts from where the evaluations reach it and stay
there: :func:`steps_to_threshold_and_stay` is the first eval step from which every later eval is
>= the threshold (``None`` if the last eval is below it), beside :func:`first_crossing`, the
final eval return and the mean of the last 5 evals (:func:`curve_figures`). A run stopped at its
first crossing cannot show whether the return holds: its "stay" figure is not measured.

Over seeds. :func:`summarize` gives the median, the IQM (interquartile mean: the mean of the
middle 50%, dropping ``floor(n / 4)`` values at each end, as ``scipy.stats.trim_mean(x, 0.25)``
and rliable do; for 3 seeds it is the mean) and percentile-bootstrap 95% intervals of both
(10,000 resamples of the seeds with replacement, rng seed 0, so the figures are reproducible).
A run that never reached a threshold counts as infinitely late (``math.inf``): it moves the
median and IQM up instead of dropping out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

RESAMPLES = 10_000
RNG_SEED = 0
LEVEL = 0.95


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


def _values(values: Sequence[float | None]) -> np.ndarray:
    return np.array([math.inf if v is None else float(v) for v in values], dtype=float)


def median(values: Sequence[float | None]) -> float:
    """The median (``None`` counts as ``inf``); ``nan`` for no values."""
    x = _values(values)
    return float(np.median(x)) if len(x) else math.nan


def iqm(values: Sequence[float | None]) -> float:
    """The interquartile mean: the mean after dropping ``floor(n / 4)`` values at each end."""
    x = np.sort(_values(values))
    cut = len(x) // 4
    return _mean(x[cut : len(x) - cut]) if len(x) else math.nan


def _mean(x: np.ndarray) -> float:
    return math.inf if np.isinf(x).any() else float(x.mean())


def _iqm_rows(samples: np.ndarray) -> np.ndarray:
    x = np.sort(samples, axis=1)
    cut = x.shape[1] // 4
    middle = x[:, cut : x.shape[1] - cut]
    out = np.full(len(x), math.inf)
    finite = ~np.isinf(middle).any(axis=1)
    out[finite] = middle[finite].mean(axis=1)
    return out


def bootstrap_ci(
    values: Sequence[float | None],
    statistic: str = "median",
    resamples: int = RESAMPLES,
    seed: int = RNG_SEED,
    level: float = LEVEL,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the ``statistic`` (``"median"`` or ``"iqm"``) over the
    values: resample them with replacement ``resamples`` times (``numpy.random.default_rng
    (seed)``), and take the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the
    resampled statistic (``inverted_cdf``: always a resampled value, ``inf`` included)."""
    x = _values(values)
    if not len(x):
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    samples = x[rng.integers(0, len(x), size=(resamples, len(x)))]
    if statistic == "median":
        stats = np.median(samples, axis=1)
    elif statistic == "iqm":
        stats = _iqm_rows(samples)
    else:
        raise ValueError(f"statistic must be 'median' or 'iqm', not {statistic!r}")
    lo, hi = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    return float(lo), float(hi)


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
