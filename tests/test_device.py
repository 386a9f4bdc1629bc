"""The device layer: names, and training with subnormal floats flushed to zero on the CPU."""

from __future__ import annotations

import copy

import pytest
import torch

import modelbased as mb
from modelbased.core.device import flush_denormal, flushing_denormals, resolve_device
from modelbased.core.errors import ConfigError

SUBNORMAL = 1e-40  # float32 subnormals lie below 1.18e-38


def test_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type in ("cpu", "cuda")
    with pytest.raises(ConfigError, match="is not one of"):
        resolve_device("tpu")


def test_flush_denormal_flushes_inside_and_restores_the_mode_found():
    tiny = torch.full((4,), SUBNORMAL)
    assert not flushing_denormals() and (tiny * 1.0).ne(0).all()
    with flush_denormal():
        assert flushing_denormals()
        assert (tiny * 1.0).eq(0).all()
        with flush_denormal():
            pass
        assert flushing_denormals()  # a nested block leaves the outer one flushing
    assert not flushing_denormals()
    torch.set_flush_denormal(True)
    try:
        with flush_denormal():
            pass
        assert flushing_denormals()  # a user's global setting survives
    finally:
        torch.set_flush_denormal(False)


def test_learn_flushes_and_gives_it_back():
    seen = []

    class Probe(mb.Callback):
        def on_learn_start(self, agent, total_steps):
            seen.append(flushing_denormals())

        def on_learn_end(self, agent):
            seen.append(flushing_denormals())

    agent = mb.QLearning("FrozenLake-v1", seed=0, eval_episodes=0)
    agent.learn(50, callback=Probe())
    assert seen == [True, True]
    assert not flushing_denormals()


def test_muzero_update_with_subnormals_flushed_matches_the_exact_one():
    """One MuZero gradient step from a state seeded with subnormal weights and Adam moments:
    flushed and exact give the same parameters to far below float32's resolution of them."""
    torch.set_num_threads(1)
    agent = mb.MuZero(
        "CartPole-v1",
        seed=0,
        num_envs=2,
        learning_starts=60,
        eval_episodes=0,
        **{"search.num_simulations": 2, "net.hidden": 16, "net.state_dim": 8},
    )
    agent.learn(120)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in agent.net.parameters():
            mask = torch.rand(p.shape, generator=gen) < 0.2
            p[mask] = SUBNORMAL
        for state in agent.optimizer.state.values():
            for key in ("exp_avg", "exp_avg_sq"):
                mask = torch.rand(state[key].shape, generator=gen) < 0.2
                state[key][mask] = SUBNORMAL
    exact, flushed = copy.deepcopy(agent), copy.deepcopy(agent)
    exact.train_step()
    with flush_denormal():
        flushed.train_step()
    for a, b in zip(exact.net.parameters(), flushed.net.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-30)
