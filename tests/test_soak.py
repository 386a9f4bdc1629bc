"""The soak on one cheap algorithm (slow): Dyna-Q killed with SIGKILL at 5 random points and
resumed each time, and stopped once with SIGINT and resumed, through the command line, ends with
every evaluation equal to an uninterrupted run's (``benchmarks/soak.py`` does every algorithm)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import soak  # noqa: E402

import modelbased as mb  # noqa: E402


def test_the_soak_covers_every_registered_algorithm():
    assert set(soak.SOAK) == set(mb.ALGORITHMS)


@pytest.mark.slow
def test_dyna_q_survives_kills_and_a_stop(tmp_path):
    out = soak.soak_one("dyna-q", tmp_path, np.random.default_rng([0, 1]))
    checks = out["checks"]
    assert checks["kills"] == soak.KILLS and checks["sigint_sent"]
    assert all(k["exit_code"] == -9 for k in out["kills"])
    assert out["sigint"]["exit_code"] == 130
    assert checks["kill_evals_equal"] and checks["kill_final_equal"]
    assert checks["sigint_nothing_lost"] and checks["sigint_reaches_total"]
    if out["sigint"]["at_episode_end"]:
        assert checks["sigint_evals_equal"]
    assert len(out["reference"]) >= 4  # evaluations at 500, 1000, 1500, 2000
