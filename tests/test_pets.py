"""MPC with known dynamics, and PETS learning on Pendulum-v1."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import modelbased as mb
from modelbased.core.errors import ConfigError, UnsupportedSpaceError
from modelbased.envs.known_dynamics import PendulumDynamics
from modelbased.envs.reward_fns import pendulum_reward
from modelbased.models import ModelEnv
from modelbased.planning import CEM, CEMConfig
from modelbased.planning.mpc import MPC, imagined_return


def test_known_pendulum_dynamics_match_the_env():
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    model = PendulumDynamics()
    for _ in range(300):
        action = rng.uniform(-2.5, 2.5, size=1).astype(np.float32)
        next_obs, reward, *_ = env.step(action)
        pred, pred_r, _ = model.sample(
            torch.tensor(obs)[None, None], torch.tensor(action)[None, None]
        )
        np.testing.assert_allclose(pred[0, 0].numpy(), next_obs, atol=1e-5)
        assert float(pred_r) == pytest.approx(reward, abs=1e-4)
        obs = next_obs


def run_mpc(seed: int, steps: int = 200) -> tuple[float, float]:
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=seed)
    gen = torch.Generator().manual_seed(seed)
    model_env = ModelEnv(
        PendulumDynamics(), pendulum_reward, propagation="expectation", generator=gen
    )
    cfg = CEMConfig(population=200, elites=20, iterations=4)
    mpc = MPC(CEM(-2.0, 2.0, horizon=20, config=cfg, generator=gen))
    total = 0.0
    for _ in range(steps):
        score = imagined_return(model_env, torch.as_tensor(obs)[None], num_particles=1)
        obs, reward, *_ = env.step(mpc.act(score)[0].numpy())
        total += reward
    return total, float(obs[0])  # cos(theta) at the end


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mpc_on_true_pendulum_dynamics_swings_up(seed):
    total, cos_theta = run_mpc(seed)
    assert cos_theta > 0.99  # upright at the end
    assert total > -400, total  # a random policy scores about -1200


def pets_small(seed: int = 0, **overrides) -> mb.PETS:
    kw = dict(
        model=dict(ensemble_size=5, elites=3, hidden=64, layers=3, max_epochs=50),
        planner=dict(kind="icem", population=60, elites=6, iterations=3),
        num_particles=5,
        horizon=15,
        random_steps=200,
        train_every=100,
        eval_episodes=0,
        log_every=100,
    )
    return mb.PETS("Pendulum-v1", seed=seed, **(kw | overrides))


def test_small_budget_pets_beats_random_policy_by_a_wide_margin():
    agent = pets_small().learn(600)  # seeds 0-2 measured: -174, -169, -85
    pets = agent.evaluate(episodes=3, seed=7)["return_mean"]
    env = gym.make("Pendulum-v1")
    env.action_space.seed(7)
    random_returns = []
    for i in range(3):
        env.reset(seed=100 + i)
        total, done = 0.0, False
        while not done:
            _, r, term, trunc, _ = env.step(env.action_space.sample())
            total, done = total + r, term or trunc
        random_returns.append(total)
    assert pets > np.mean(random_returns) + 500, (pets, random_returns)
    assert pets > -400


def test_pets_checkpoint_round_trip(tmp_path):
    agent = pets_small(seed=3).learn(250)
    agent.save(tmp_path / "pets.pt")
    loaded = mb.load(str(tmp_path / "pets.pt"))
    assert type(loaded) is mb.PETS and len(loaded.buffer) == 250 and loaded.trained
    obs = np.array([0.0, 1.0, 0.5], dtype=np.float32)
    with torch.inference_mode():
        a = agent.model.predict(torch.tensor(obs)[None], torch.zeros(1, 1)).next_obs_mean
        b = loaded.model.predict(torch.tensor(obs)[None], torch.zeros(1, 1)).next_obs_mean
    assert torch.equal(a, b)
    agent.mpc.reset()  # the warm start is per episode; checkpoints sit at episode ends
    loaded.mpc.reset()
    plans = [a.plan_action(obs, a.model_env, a.mpc) for a in (agent, loaded)]
    assert np.array_equal(*plans)


def test_pets_needs_a_box_observation_and_a_box_or_discrete_action_space():
    with pytest.raises(
        UnsupportedSpaceError,
        match=r"pets needs a flat Box observation space; FrozenLake-v1 has Discrete\(16\)",
    ):
        mb.PETS("FrozenLake-v1")
    assert mb.PETS("CartPole-v1").discrete  # discrete actions: tests/test_discrete.py


def test_terminal_value_needs_a_discount():
    with pytest.raises(ConfigError, match="gamma=1.0 must be < 1 with terminal_value=true"):
        mb.PETS("Pendulum-v1", terminal_value=True)


def test_pets_with_terminal_value_trains_and_round_trips(tmp_path):
    agent = pets_small(seed=4, terminal_value=True, gamma=0.99, value_steps=200).learn(210)
    assert agent.value is not None and "value_td_loss" in agent.train_scalars()
    agent.save(tmp_path / "pets.pt")
    loaded = mb.load(str(tmp_path / "pets.pt"))
    obs = torch.tensor([[0.0, 1.0, 0.5], [1.0, 0.0, 0.0]])
    with torch.no_grad():
        assert torch.equal(agent.value(obs), loaded.value(obs))


def test_mpc_agent_with_a_deterministic_model_learns_pendulum():
    """``mpc``: one MSE-trained network, one particle, random shooting (Nagabandi et al.)."""
    agent = mb.MPCAgent("Pendulum-v1", seed=0, eval_episodes=0).learn(400)
    assert mb.agent_class("mpc") is mb.MPCAgent
    assert agent.model.ensemble_size == 1 and not agent.model.config.probabilistic
    assert agent.evaluate(episodes=2, seed=5)["return_mean"] > -500
