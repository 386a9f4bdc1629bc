"""The statistics behind the benchmark summaries (``benchmarks/_stats.py``): reach-and-stay,
first crossing, final and last-5 returns, median, IQM and the bootstrap interval."""

from __future__ import annotations

import math
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _stats  # noqa: E402


def curve(*returns: float, every: int = 100) -> list[dict[str, float]]:
    return [{"steps": every * (k + 1), "return": r} for k, r in enumerate(returns)]


def test_reach_and_stay_counts_from_the_last_drop_below() -> None:
    # MBPO seed 1's shape in the issue: crosses, falls back, crosses again and stays
    c = curve(-818, -150, -493, -199, -120, -180)
    assert _stats.first_crossing(c, -200) == 200
    assert _stats.steps_to_threshold_and_stay(c, -200) == 400
    assert _stats.final_return(c) == -180
    assert _stats.last_mean(c, 5) == pytest.approx(statistics.mean([-150, -493, -199, -120, -180]))


def test_reach_and_stay_is_none_when_the_return_does_not_hold() -> None:
    # the PETS preset run on: about -130, then -1500 after a refit
    c = curve(-1200, -130, -128, -1500)
    assert _stats.first_crossing(c, -200) == 200
    assert _stats.steps_to_threshold_and_stay(c, -200) is None
    assert _stats.steps_to_threshold_and_stay([], -200) is None
    assert _stats.first_crossing(curve(-300, -250), -200) is None


def test_threshold_is_inclusive_and_every_eval_above_counts_from_the_start() -> None:
    c = curve(1000, 1000, 1000, every=250)
    assert _stats.steps_to_threshold_and_stay(c, 1000) == 250
    assert _stats.first_crossing(c, 1000) == 250


def test_curve_figures_of_a_run_stopped_at_its_crossing_do_not_claim_it_stays() -> None:
    c = curve(-900, -400, -150)
    full = _stats.curve_figures(c, -200)
    stopped = _stats.curve_figures(c, -200, stopped_at_crossing=True)
    assert full["steps_to_threshold_and_stay"] == 300 and full["stay_measured"]
    assert stopped["steps_to_threshold_and_stay"] is None and not stopped["stay_measured"]
    assert stopped["first_crossing"] == 300
    assert stopped["final_return"] == -150 and stopped["evals"] == 3
    assert stopped["last5_mean"] == pytest.approx(-1450 / 3)
    assert _stats.curve_figures(c, None)["first_crossing"] is None


def test_median_and_iqm() -> None:
    assert _stats.median([1100, 1000, 600]) == 1000
    assert _stats.iqm([1100, 1000, 600]) == pytest.approx(2700 / 3)  # n < 4: nothing trimmed
    assert _stats.iqm([1, 2, 3, 4, 5, 6, 7, 100]) == pytest.approx(4.5)  # drops 1, 2, 7, 100
    assert _stats.iqm([1, 2, 3, 4, 100]) == pytest.approx(3.0)  # drops one value at each end
    x = np.random.default_rng(1).normal(size=40)
    trimmed = np.sort(x)[10:30].mean()
    assert _stats.iqm(list(x)) == pytest.approx(trimmed)


def test_a_run_that_never_reaches_counts_as_infinitely_late() -> None:
    assert _stats.median([600, None, 1000]) == 1000
    assert _stats.median([600, None]) == math.inf
    assert _stats.iqm([600, None, 1000]) == math.inf
    assert math.isnan(_stats.median([]))


def test_bootstrap_interval_is_deterministic_and_brackets_the_statistic() -> None:
    values = list(np.random.default_rng(2).normal(10, 3, size=12))
    lo, hi = _stats.bootstrap_ci(values, "median")
    assert (lo, hi) == _stats.bootstrap_ci(values, "median")  # fixed rng seed
    assert lo < _stats.median(values) < hi
    assert min(values) <= lo and hi <= max(values)
    ilo, ihi = _stats.bootstrap_ci(values, "iqm")
    assert ilo < _stats.iqm(values) < ihi
    # about the normal theory interval of the mean, 10 +- 1.96 * 3 / sqrt(12) (~ +-1.7)
    assert 1.0 < ihi - ilo < 6.0
    assert _stats.bootstrap_ci([5.0], "iqm") == (5.0, 5.0)
    with pytest.raises(ValueError, match="statistic"):
        _stats.bootstrap_ci(values, "mean")


def test_bootstrap_interval_uses_resampled_values_only() -> None:
    lo, hi = _stats.bootstrap_ci([600, 1000, 1100], "median")
    assert (lo, hi) == (600, 1100)
    lo, hi = _stats.bootstrap_ci([600, None, 1000], "median")
    assert lo == 600 and hi == math.inf


def test_summarize() -> None:
    s = _stats.summarize([1100, 1000, 600])
    assert s["n"] == 3 and s["median"] == 1000 and s["iqm"] == pytest.approx(900)
    assert s["median_ci"] == (600, 1100) and s["iqm_ci"][0] <= 900 <= s["iqm_ci"][1]


def test_resume_finds_runs_stored_with_the_same_settings(tmp_path: Path) -> None:
    import argparse

    import _common

    args = argparse.Namespace(max_steps=400, seeds=[0, 1], resume=True)
    record = _common.start_record(args, seeds=[0], task="swingup")
    _common.append_record("demo", record, {"run": {}}, out_dir=tmp_path)
    _common.append_record("demo", {"legacy": True, "seeds": [1]}, {}, out_dir=tmp_path)

    def stored(seed: int, **kw: object) -> bool:
        return _common.already_stored("demo", seed, args, ["max_steps"], tmp_path, **kw)

    assert stored(0, task="swingup")
    assert not stored(0, task="invpend")  # another task
    assert not stored(1, task="swingup")  # only a legacy record
    assert not _common.already_stored(
        "demo", 0, argparse.Namespace(max_steps=800), ["max_steps"], tmp_path, task="swingup"
    )
