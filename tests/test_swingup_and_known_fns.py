import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import modelbased as mb
from modelbased.core.errors import ConfigError
from modelbased.envs.cartpole_swingup import (
    CART_MASS,
    MAX_EPISODE_STEPS,
    MAX_RETURN,
    POLE_LENGTH,
    POLE_MASS,
    TRACK_LIMIT,
    CartPoleSwingUp,
    energy,
)
from modelbased.envs.reward_fns import KNOWN_FUNCTIONS, known_functions, planning_reward

SWINGUP = "modelbased/CartPoleSwingUp-v0"
MUJOCO_IDS = {"InvertedPendulum-v4", "InvertedPendulum-v5", "Hopper-v5", "HalfCheetah-v5"}


# The velocities of the swing-up have no natural bound, which check_env warns about.
@pytest.mark.filterwarnings("ignore:.*Box observation space m")
def test_check_env_unwrapped_and_made():
    check_env(CartPoleSwingUp(), skip_render_check=True)
    env = gym.make(SWINGUP)
    assert env.spec.max_episode_steps == 200
    check_env(env.unwrapped, skip_render_check=False)


def test_starts_hanging_down_and_renders():
    env = gym.make(SWINGUP, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (5,) and obs.dtype == np.float32
    assert obs[1] < -0.98 and abs(obs[0]) < 0.3  # cos(theta) ~ -1: hanging, cart centred
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8
    assert len(set(map(tuple, frame.reshape(-1, 3)))) > 2
    steps, done = 0, False
    while not done:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        assert not terminated
        done, steps = truncated, steps + 1
    assert steps == MAX_EPISODE_STEPS


def run(env: CartPoleSwingUp, state, steps: int, action: float = 0.0) -> np.ndarray:
    env.reset(seed=0)
    env.state = np.array(state, dtype=np.float64)
    states = [env.state.copy()]
    for _ in range(steps):
        env.step(np.array([action], dtype=np.float32))
        states.append(env.state.copy())
    return np.array(states)


def test_energy_roughly_conserved_without_force():
    env = CartPoleSwingUp(dt=0.01, substeps=10)
    states = run(env, [0.0, 0.3, 2.0, 1.0], steps=150)  # 1.5 s, the cart stays off the ends
    assert np.abs(states[:, 0]).max() < TRACK_LIMIT
    e = energy(states)
    assert np.abs(e - e[0]).max() < 0.01 * abs(e[0]) + 1e-3
    x_dot, theta, theta_dot = states[:, 1], states[:, 2], states[:, 3]
    pole_moment = POLE_MASS * POLE_LENGTH / 2
    momentum = (CART_MASS + POLE_MASS) * x_dot + pole_moment * np.cos(theta) * theta_dot
    assert np.abs(momentum - momentum[0]).max() < 1e-2  # no horizontal external force


def test_pole_falls_from_near_upright_and_hanging_is_stable():
    env = CartPoleSwingUp()
    states = run(env, [0.0, 0.0, 0.02, 0.0], steps=50)  # 2 s
    assert states[:, 2].max() > np.pi / 2  # fell to the side it leaned to
    assert states[-1, 0] < 0  # the cart recoils the other way
    hanging = run(env, [0.0, 0.0, np.pi, 0.0], steps=50)
    np.testing.assert_allclose(hanging[-1], [0.0, 0.0, np.pi, 0.0], atol=1e-9)


def test_push_moves_cart_and_track_ends_stop_it():
    env = CartPoleSwingUp()
    states = run(env, [0.0, 0.0, np.pi, 0.0], steps=10, action=1.0)
    assert states[-1, 0] > 0 and states[-1, 1] > 0
    states = run(env, [0.0, 0.0, np.pi, 0.0], steps=100, action=1.0)
    assert states[-1, 0] == TRACK_LIMIT and np.abs(states[:, 0]).max() <= TRACK_LIMIT


def test_reward_is_one_upright_over_the_centre():
    env = CartPoleSwingUp()
    env.reset(seed=0)
    env.state = np.zeros(4)
    _, reward, *_ = env.step(np.zeros(1, dtype=np.float32))
    assert reward == pytest.approx(1.0) and MAX_RETURN == 200.0
    env.state = np.array([0.0, 0.0, np.pi, 0.0])  # hanging: the tip is 2L below the target
    _, reward, *_ = env.step(np.zeros(1, dtype=np.float32))
    assert reward == pytest.approx(np.exp(-((2 * POLE_LENGTH) ** 2) / (2 * 0.6**2)), abs=1e-6)


def collect(env_id: str, min_steps: int = 600, min_terminals: int = 0, seed: int = 0):
    """Random-action transitions of the real env; MountainCar starts some near the goal."""
    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    discrete = isinstance(env.action_space, gym.spaces.Discrete)
    if not discrete:
        low, high = env.action_space.low, env.action_space.high
        # Actions beyond the bounds check that the functions clip (or not) as the env does.
        span = (high - low) * 0.25
    rows, terminals, episode = [], 0, 0
    while len(rows) < min_steps or terminals < min_terminals:
        obs, _ = env.reset(seed=seed + episode)
        if env_id == "MountainCarContinuous-v0" and episode % 4:
            env.unwrapped.state = np.array([rng.uniform(0.38, 0.6), rng.uniform(-0.02, 0.07)])
            obs = env.unwrapped.state.astype(np.float32)
        episode += 1
        for _ in range(200):  # MountainCar's own limit is 999 steps
            if discrete:
                act = np.int64(rng.integers(env.action_space.n))
            else:
                act = rng.uniform(low - span, high + span).astype(np.float32)
            next_obs, reward, terminated, truncated, _ = env.step(act)
            rows.append((obs, act, next_obs, reward, terminated))
            terminals += terminated
            if terminated or truncated:
                break
            obs = next_obs
    env.close()
    obs, act, next_obs, reward, terminated = map(np.array, zip(*rows, strict=True))
    t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    return t(obs), t(act), t(next_obs), torch.as_tensor(reward), torch.as_tensor(terminated)


@pytest.mark.parametrize("env_id", sorted(KNOWN_FUNCTIONS))
@pytest.mark.filterwarnings("ignore:.*InvertedPendulum-v4 is out of date")
def test_known_functions_match_real_env(env_id):
    if env_id in MUJOCO_IDS:
        pytest.importorskip("mujoco")
    reward_fn, termination_fn = known_functions(env_id)
    assert termination_fn is not None  # a reward may be unknown (Hopper: x is not observed)
    terminates = termination_fn.__name__ != "no_termination"
    obs, act, next_obs, reward, terminated = collect(env_id, min_terminals=20 if terminates else 0)
    if reward_fn is not None:
        predicted_reward = reward_fn(obs, act, next_obs)
        assert predicted_reward.shape == reward.shape and predicted_reward.dtype == torch.float32
        torch.testing.assert_close(predicted_reward.double(), reward.double(), atol=1e-5, rtol=0)
    predicted_done = termination_fn(obs, act, next_obs)
    assert predicted_done.shape == terminated.shape and predicted_done.dtype == torch.bool
    assert torch.equal(predicted_done, terminated)
    if terminates:
        assert terminated.sum() >= 20  # terminal transitions were exercised
    if env_id == "MountainCarContinuous-v0":
        assert (reward > 90).sum() >= 5  # the +100 goal bonus was exercised
        past_goal_going_back = (next_obs[:, 0] >= 0.45) & (next_obs[:, 1] < 0)
        assert past_goal_going_back.any()  # ... and the velocity condition of the goal


def test_known_functions_lookup():
    assert known_functions("Acrobot-v1") == (None, None)
    assert known_functions(gym.make("Pendulum-v1")) == KNOWN_FUNCTIONS["Pendulum-v1"]
    assert known_functions(CartPoleSwingUp()) == (None, None)  # no spec: unknown
    reward_fn, termination_fn = known_functions(SWINGUP)
    obs = torch.zeros(3, 5)
    obs[:, 1] = 1.0  # upright, centred
    act = torch.zeros(3, 1)
    torch.testing.assert_close(reward_fn(obs, act, obs), torch.ones(3))
    assert not termination_fn(obs, act, obs).any()


def test_inverted_pendulum_planning_reward_centres_and_never_prefers_falling():
    fn = planning_reward("InvertedPendulum-v5")
    nxt = torch.tensor(
        [
            [0.0, 0.0, 0, 0],
            [0.3, 0.0, 0, 0],
            [0.9, 0.0, 0, 0],
            [0.0, 0.19, 0, 0],
            [-1.0, 0.199, 0, 0],
            [0.0, 0.3, 0, 0],
        ]
    )
    r = fn(torch.zeros(6, 4), torch.zeros(6, 1), nxt)
    assert r[0] > r[1] > r[2] > 0.5 and r[0] > r[3] > 0.5  # centred and upright score highest
    assert r[4] > 0.0 and r[5] == 0.0  # alive at the worst corner still beats falling
    assert planning_reward("Pendulum-v1") is None


def test_planning_reward_on_an_env_without_one_is_a_config_error():
    with pytest.raises(ConfigError, match="planning_reward"):
        mb.PETS("Pendulum-v1", planning_reward=True)
