"""Statistics over seeds: median, interquartile mean (IQM) and percentile-bootstrap intervals,
as recommended for reporting RL results by Agarwal et al. 2021 ("Deep Reinforcement Learning at
the Edge of the Statistical Precipice", rliable).

The IQM is the mean of the middle 50%: ``floor(n / 4)`` values are dropped at each end, as
``scipy.stats.trim_mean(x, 0.25)`` does (for 3 seeds the mean, for 4 the mean of the middle 2).
``None`` counts as ``inf`` (a run that never reached a threshold is infinitely late: it moves the
median and IQM up instead of dropping out). Intervals resample the seeds with replacement from a
fixed generator, so the figures are reproducible. Used by ``modelbased plot SWEEP_DIR``, the
sweep summary and the benchmarks (``benchmarks/_stats.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

RESAMPLES = 10_000
RNG_SEED = 0
LEVEL = 0.95
Statistic = Literal["median", "iqm"]


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


def iqm_rows(samples: np.ndarray) -> np.ndarray:
    """The IQM of each row of ``samples [R, n]`` -> ``[R]`` (``inf`` where a kept value is)."""
    x = np.sort(samples, axis=1)
    cut = x.shape[1] // 4
    middle = x[:, cut : x.shape[1] - cut]
    out = np.full(len(x), math.inf)
    finite = ~np.isinf(middle).any(axis=1)
    out[finite] = middle[finite].mean(axis=1)
    return out


def bootstrap_ci(
    values: Sequence[float | None],
    statistic: Statistic = "median",
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
    lo, hi = bootstrap_band(x[:, None], statistic, resamples, seed, level)
    return float(lo[0]), float(hi[0])


def bootstrap_band(
    values: np.ndarray,
    statistic: Statistic = "median",
    resamples: int = RESAMPLES,
    seed: int = RNG_SEED,
    level: float = LEVEL,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`bootstrap_ci` at every column of ``values [n seeds, T points]`` (a learning
    curve per seed), resampling whole seeds: -> ``lo [T]``, ``hi [T]``."""
    x = np.asarray(values, dtype=float)
    if statistic not in ("median", "iqm"):
        raise ValueError(f"statistic must be 'median' or 'iqm', not {statistic!r}")
    rng = np.random.default_rng(seed)
    samples = x[rng.integers(0, len(x), size=(resamples, len(x)))]  # [R, n, T]
    lo, hi = np.empty(x.shape[1]), np.empty(x.shape[1])
    for t in range(x.shape[1]):
        s = samples[:, :, t]
        stats = np.median(s, axis=1) if statistic == "median" else iqm_rows(s)
        lo[t], hi[t] = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    return lo, hi
