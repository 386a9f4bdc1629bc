import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from modelbased.models import TabularMDP
from modelbased.planning import value_iteration

MAZES = ["modelbased/DynaMaze-v0", "modelbased/BlockingMaze-v0", "modelbased/ShortcutMaze-v0"]


@pytest.mark.parametrize("env_id", MAZES)
def test_check_env(env_id):
    check_env(gym.make(env_id).unwrapped, skip_render_check=False)


def shortest_path(env) -> int:
    mdp = TabularMDP.from_env(env)
    V, _, _ = value_iteration(mdp.P, mdp.R, 0.5, mdp.D)
    start = env.unwrapped.index(env.unwrapped.start)
    return int(round(np.log(V[start]) / np.log(0.5))) + 1  # reward 1 after k steps: 0.5^(k-1)


def test_dyna_maze_is_sutton_barto_figure_8_2():
    env = gym.make("modelbased/DynaMaze-v0")
    assert env.observation_space.n == 54 and env.action_space.n == 4
    assert shortest_path(env) == 14
    obs, _ = env.reset(seed=0)
    assert obs == 2 * 9 + 0


@pytest.mark.parametrize(
    "env_id,change_at,before,after",
    [
        ("modelbased/ShortcutMaze-v0", 3000, 16, 10),
        ("modelbased/BlockingMaze-v0", 1000, 10, 16),
    ],
)
def test_changing_maze_changes_after_steps_across_episodes(env_id, change_at, before, after):
    env = gym.make(env_id)
    env.reset(seed=0)
    assert shortest_path(env) == before
    for _ in range(change_at - 1):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
    assert shortest_path(env) == before
    env.step(0)
    assert shortest_path(env) == after
    state = env.unwrapped.state_dict()
    fresh = gym.make(env_id)
    fresh.unwrapped.load_state_dict(state)
    assert shortest_path(fresh) == after


def test_known_model_matches_step():
    env = gym.make("modelbased/DynaMaze-v0")
    table = env.unwrapped.P
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    for _ in range(500):
        a = int(rng.integers(4))
        [(p, s2, r, done)] = table[obs][a]
        obs2, reward, term, _, _ = env.step(a)
        assert (p, s2, r, done) == (1.0, obs2, reward, term)
        obs = env.reset()[0] if term else obs2


def test_toy_text_envs_work_unchanged():
    for env_id in ("FrozenLake-v1", "CliffWalking-v1", "Taxi-v4"):
        mdp = TabularMDP.from_env(gym.make(env_id))
        np.testing.assert_allclose(mdp.P.sum(-1), 1.0)


def test_render_modes():
    env = gym.make("modelbased/DynaMaze-v0", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (6 * 32, 9 * 32, 3) and frame.dtype == np.uint8
    text = gym.make("modelbased/DynaMaze-v0", render_mode="ansi")
    text.reset(seed=0)
    assert text.render().count("\n") == 6
