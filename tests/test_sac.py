"""SAC: the squashed Gaussian, the fused twin critics, entropy tuning, Polyak targets, config
errors, checkpoints, and learning Pendulum (Haarnoja et al. 2018)."""

import copy
import math

import numpy as np
import pytest
import torch

import modelbased as mb
from modelbased.core.errors import ConfigError, UnsupportedSpaceError
from modelbased.models.actor_critic import (
    SACUpdate,
    SACUpdateConfig,
    SquashedGaussianActor,
    TwinQ,
)


def small_sac(**overrides) -> mb.SAC:
    kw = dict(
        sac=dict(hidden=(32, 32)),
        learning_starts=50,
        batch_size=64,
        eval_episodes=0,
        log_every=10**9,
    )
    return mb.SAC("Pendulum-v1", seed=0, **(kw | overrides))


def random_batch(n: int = 64, obs_dim: int = 3, action_dim: int = 1, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "obs": torch.randn(n, obs_dim, generator=g),
        "action": torch.rand(n, action_dim, generator=g) * 2 - 1,
        "reward": torch.randn(n, generator=g),
        "next_obs": torch.randn(n, obs_dim, generator=g),
        "terminated": torch.rand(n, generator=g) < 0.1,
    }


def test_squashed_gaussian_log_prob_matches_torch_distributions():
    torch.manual_seed(0)
    actor = SquashedGaussianActor(3, 2, (16, 16))
    obs = torch.randn(500, 3)
    gen = torch.Generator().manual_seed(1)
    action, log_prob = actor.sample(obs, gen)
    assert action.shape == (500, 2) and log_prob.shape == (500,)
    assert action.abs().max() < 1
    mean, log_std = actor(obs)
    dist = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, log_std.exp()),
        [torch.distributions.TanhTransform(cache_size=1)],
    )
    # the same pre-squash sample, re-drawn from the same generator state
    u = mean + torch.randn(mean.shape, generator=torch.Generator().manual_seed(1)) * log_std.exp()
    ref = dist.log_prob(torch.tanh(u)).sum(-1)
    ok = action.abs().max(-1).values < 0.999  # TanhTransform's inverse is unstable near +-1
    torch.testing.assert_close(log_prob[ok], ref[ok], atol=2e-3, rtol=1e-4)
    torch.testing.assert_close(actor.deterministic(obs), torch.tanh(mean))


def test_twin_q_is_two_independent_critics_in_one_network():
    torch.manual_seed(0)
    q = TwinQ(3, 1, (32, 32))
    obs, act = torch.randn(10, 3), torch.randn(10, 1)
    out = q(obs, act)
    assert out.shape == (2, 10)
    assert not torch.allclose(out[0], out[1])  # separately initialised
    out[0].sum().backward()  # qf1's loss leaves qf2's weights untouched
    for layer in q.net.layers:
        assert layer.weight.grad[0].abs().sum() > 0
        assert layer.weight.grad[1].abs().sum() == 0
    assert len(q.net.layers) == 3  # obs+act -> 32 -> 32 -> 1: one baddbmm per layer


def test_update_moves_alpha_toward_the_target_entropy():
    batch = random_batch()
    up, down = (
        SACUpdate(3, 1, SACUpdateConfig(hidden=(32, 32), target_entropy=t)) for t in (5.0, -50.0)
    )
    for _ in range(20):
        up.update(**batch)
        down.update(**batch)
    # entropy below a target of +5: raise alpha; above -50: lower it
    assert up.scalars()["alpha"] > 1.0 > down.scalars()["alpha"]
    assert up.log_alpha.item() > 0 > down.log_alpha.item()
    fixed = SACUpdate(3, 1, SACUpdateConfig(hidden=(32, 32), autotune=False, ent_coef=0.2))
    fixed.update(**batch)
    assert fixed.scalars()["alpha"] == pytest.approx(0.2)
    assert fixed.target_entropy == -1.0  # -dim(A) by default


def test_update_shapes_scalars_and_polyak_target():
    sac = SACUpdate(3, 1, SACUpdateConfig(hidden=(32, 32), tau=0.1))
    target_before = [p.clone() for p in sac.critic_target.parameters()]
    sac.update(**random_batch())
    for old, new, online in zip(
        target_before, sac.critic_target.parameters(), sac.critic.parameters(), strict=True
    ):
        torch.testing.assert_close(new, old + 0.1 * (online.detach() - old))
    out = sac.scalars()
    assert set(out) == set(SACUpdate.SCALARS) and all(math.isfinite(v) for v in out.values())
    assert sac.scalars() == {}  # accumulators reset
    assert sac.updates == 1


def test_terminated_cuts_the_bootstrap():
    """With gamma's target, a terminal transition's critic target is exactly its reward."""
    sac = SACUpdate(3, 1, SACUpdateConfig(hidden=(16, 16), gamma=0.99))
    batch = random_batch(8)
    batch["terminated"] = torch.ones(8, dtype=torch.bool)
    batch["reward"] = torch.full((8,), 3.0)
    critic = copy.deepcopy(sac.critic)
    qf = critic(batch["obs"], batch["action"])
    expected = 0.5 * (qf - 3.0).square().mean(1).sum()
    sac.update(**batch)
    assert sac.scalars()["critic_loss"] == pytest.approx(expected.item(), rel=1e-5)


def test_non_finite_losses_raise_training_diverged():
    sac = SACUpdate(3, 1, SACUpdateConfig(hidden=(16, 16)))
    batch = random_batch()
    batch["reward"][0] = float("nan")
    sac.update(**batch)
    with pytest.raises(mb.TrainingDivergedError, match="critic_loss"):
        sac.scalars()


@pytest.mark.parametrize(
    "key, value",
    [
        ("sac.tau", 0.0),
        ("sac.gamma", 1.0),
        ("batch_size", 0),
        ("sac.hidden", (256, 128)),
        ("sac.ent_coef", -1.0),
        ("sac.learning_rate", 0.0),
        ("learning_starts", -1),
        ("gradient_steps", 0),
    ],
)
def test_bad_config_values_name_the_key(key, value):
    with pytest.raises(ConfigError, match=key):
        mb.SAC("Pendulum-v1", **{key: value})


def test_unknown_key_and_discrete_observations_are_rejected():
    with pytest.raises(ConfigError, match="ent_coeff=0.1 is not a config key"):
        mb.SAC("Pendulum-v1", ent_coeff=0.1)
    with pytest.raises(UnsupportedSpaceError, match="Box observation space; FrozenLake-v1 has"):
        mb.SAC("FrozenLake-v1")
    assert mb.SAC("CartPole-v1").discrete  # SAC-discrete: tests/test_discrete.py


def test_defaults_are_stable_baselines3s():
    cfg = mb.SACConfig()
    assert (cfg.sac.learning_rate, cfg.buffer_size, cfg.learning_starts, cfg.batch_size) == (
        3e-4,
        1_000_000,
        100,
        256,
    )
    assert (cfg.sac.tau, cfg.sac.gamma, cfg.train_freq, cfg.gradient_steps) == (0.005, 0.99, 1, 1)
    assert cfg.sac.autotune and cfg.sac.ent_coef == 1.0 and cfg.sac.hidden == (256, 256)


def test_actions_stay_in_bounds_and_learning_starts_after_the_random_phase():
    agent = small_sac(learning_starts=60)
    agent.learn(59)
    assert agent.sac.updates == 0 and len(agent.buffer) == 59
    agent.learn(21)  # the shared schedule: updates at steps 60, 61, ..., 80
    assert agent.sac.updates == 21
    actions = agent.buffer.all().action
    assert np.all(np.abs(actions) <= 2.0) and actions.std() > 0.5  # env bounds are [-2, 2]
    scalars = agent.train_scalars()
    assert scalars["updates"] == 21 and math.isfinite(scalars["critic_loss"])


def test_checkpoint_round_trip_continues_identically(tmp_path):
    agent = small_sac()
    agent.learn(120)
    agent.save(tmp_path / "sac.pt")
    data = torch.load(tmp_path / "sac.pt", weights_only=True)  # no pickled code
    assert data["algo"] == "sac"
    loaded = mb.load(tmp_path / "sac.pt")
    assert isinstance(loaded, mb.SAC) and len(loaded.buffer) == 120
    obs = np.array([0.3, -0.9, 0.5], dtype=np.float32)
    np.testing.assert_array_equal(agent.act(obs), loaded.act(obs))
    agent.learn(30)
    loaded.learn(30)
    for a, b in zip(agent.sac.actor.parameters(), loaded.sac.actor.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert loaded.sac.updates == agent.sac.updates == 101  # steps 50..150


def test_cli_trains_sac(tmp_path):
    from modelbased.cli import main

    out = str(tmp_path / "run")
    code = main(
        [
            "train",
            "sac",
            "--env",
            "Pendulum-v1",
            "--steps",
            "150",
            "--out",
            out,
            "--set",
            "learning_starts=100",
            "--set",
            "sac.hidden=[32, 32]",
            "--quiet",
        ]
    )
    assert code in (0, None)
    assert (tmp_path / "run" / "checkpoint.pt").is_file()


@pytest.mark.slow
def test_sac_learns_pendulum():
    """SB3-default SAC reaches about -200 after 5k steps here; a random policy scores ~ -1200."""
    agent = mb.SAC("Pendulum-v1", seed=0, eval_episodes=0)
    agent.learn(5000)
    stats = agent.evaluate(episodes=10)
    assert stats["return_mean"] > -400, stats
