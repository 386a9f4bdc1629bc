"""End-to-end reproductions of Sutton & Barto chapter 8 over many seeds (``pytest -m slow``)."""

import numpy as np
import pytest

import modelbased as mb

pytestmark = pytest.mark.slow


def mean_episode_lengths(n: int, runs: int, episodes: int) -> np.ndarray:
    out = np.zeros((runs, episodes))
    for seed in range(runs):
        log = mb.EpisodeLog(max_episodes=episodes)
        agent = mb.DynaQ("modelbased/DynaMaze-v0", seed=seed, planning_steps=n, eval_every=10**9)
        agent.learn(10**7, callback=log)
        out[seed] = log.lengths
    return out.mean(axis=0)


def settled_from(curve: np.ndarray, limit: float = 21.0) -> int:
    """First episode (1-based) from which the mean steps per episode stay <= limit."""
    above = np.flatnonzero(curve > limit)
    return int(above[-1]) + 2 if len(above) else 1


def test_figure_8_2_planning_steps():
    settle = {n: settled_from(mean_episode_lengths(n, 30, 50)) for n in (0, 5, 50)}
    assert settle[50] <= 4, settle
    assert settle[5] <= 8, settle
    assert settle[0] >= 20, settle


def test_figure_8_5_shortcut_over_seeds():
    kw = {"step_size": 1.0, "planning_steps": 50, "eval_every": 10**9}
    for seed in range(10):
        for cls, extra in ((mb.DynaQPlus, {"kappa": 1e-3}), (mb.DynaQ, {})):
            log = mb.EpisodeLog()
            cls("modelbased/ShortcutMaze-v0", seed=seed, **kw, **extra).learn(6000, log)
            late = [n for n, t in zip(log.lengths, log.env_steps, strict=True) if t > 5000]
            uses_shortcut = np.median(late) < 16  # impossible without the shortcut
            assert uses_shortcut == (cls is mb.DynaQPlus), (cls.algo, seed, np.median(late))


def test_frozen_lake_learned_model_over_seeds():
    known = mb.ValueIteration("FrozenLake-v1", seed=0).evaluate(2000, seed=9)["return_mean"]
    rates = []
    for seed in range(5):
        agent = mb.ValueIteration("FrozenLake-v1", seed=seed, model="learned", model_steps=20_000)
        rates.append(agent.learn(20_000).evaluate(2000, seed=9)["return_mean"])
    assert abs(np.median(rates) - known) <= 0.03, (rates, known)
