"""The TD-fitted state-value function used as MPC's terminal value."""

import numpy as np
import pytest
import torch

from modelbased.core.errors import ConfigError, DataError
from modelbased.data.replay import ReplayBuffer
from modelbased.models.value import ValueFunction


def buffer_of(obs, reward, next_obs, terminated) -> ReplayBuffer:
    n = len(obs)
    buf = ReplayBuffer(n, obs_shape=(1,), action_shape=(1,))
    action, truncated = np.zeros((n, 1), np.float32), np.zeros(n, bool)
    buf.add_batch(obs, action, reward, next_obs, terminated, truncated)
    return buf


def test_td_recovers_a_known_value():
    """Self-loops with reward x: V(x) = x / (1 - gamma); terminal rows with reward 1: V = 1."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(2000, 1)).astype(np.float32)
    buf = buffer_of(x, x[:, 0], x, np.zeros(2000, bool))
    value = ValueFunction(1, gamma=0.8, hidden=64, lr=3e-3, tau=0.05, seed=0)
    value.fit(buf, 3000, rng)
    grid = torch.linspace(-0.9, 0.9, 7).view(-1, 1)
    with torch.no_grad():
        np.testing.assert_allclose(value(grid).numpy(), 5 * grid[:, 0].numpy(), atol=0.3)

    term = buffer_of(x, np.ones(2000, np.float32), x, np.ones(2000, bool))
    value = ValueFunction(1, gamma=0.8, hidden=64, lr=3e-3, tau=0.05, seed=0)
    value.fit(term, 1500, rng)
    with torch.no_grad():
        np.testing.assert_allclose(value(grid).numpy(), 1.0, atol=0.1)


def test_value_shapes_and_errors():
    value = ValueFunction(3, gamma=0.99)
    assert value(torch.zeros(4, 5, 3)).shape == (4, 5)
    with pytest.raises(ConfigError, match="gamma=1.0"):
        ValueFunction(3, gamma=1.0)
    with pytest.raises(DataError, match="empty"):
        empty = ReplayBuffer(10, obs_shape=(3,), action_shape=(1,))
        value.fit(empty, 10, np.random.default_rng(0))
