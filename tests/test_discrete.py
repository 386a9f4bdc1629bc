"""Discrete actions: categorical CEM and enumeration (planning/categorical.py), SAC-discrete
(Christodoulou 2019), and PETS, SAC and MBPO on CartPole-v1."""

import itertools
import math

import numpy as np
import pytest
import torch

import modelbased as mb
from modelbased.core.errors import ConfigError, UnsupportedSpaceError
from modelbased.envs.reward_fns import cartpole_termination
from modelbased.models.actor_critic import (
    CategoricalActor,
    DiscreteSACUpdate,
    DiscreteTwinQ,
    SACUpdateConfig,
)
from modelbased.planning.categorical import (
    CategoricalCEM,
    CategoricalCEMConfig,
    Enumerate,
    EnumerateConfig,
)
from modelbased.planning.mpc import MPC


# -- planners -------------------------------------------------------------------------------
def bandit(table: torch.Tensor, coupling: float = 0.0):
    """A hand-made H-step bandit: ``sum_t table[b, t, a_t]`` per start state ``b``, plus
    ``coupling`` for each step that repeats the previous action (not separable over steps)."""

    def score(seqs: torch.Tensor) -> torch.Tensor:  # [B, K, H, n] one-hot -> [B, K]
        per_step = (seqs * table[:, None]).sum(-1)  # [B, K, H]
        repeats = (seqs[:, :, 1:] * seqs[:, :, :-1]).sum((-1, -2))
        return per_step.sum(-1) + coupling * repeats

    return score


def brute_force(score, B: int, n: int, H: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sequence scored on its own, in a Python loop: best value and index sequence."""
    best_value = torch.full((B,), -math.inf)
    best = torch.zeros(B, H, dtype=torch.long)
    for seq in itertools.product(range(n), repeat=H):
        onehot = torch.nn.functional.one_hot(torch.tensor(seq), n).float()
        value = score(onehot.expand(B, 1, H, n))[:, 0]
        better = value > best_value
        best_value = torch.where(better, value, best_value)
        best[better] = torch.tensor(seq)
    return best_value, best


def dynamic_programming(table: torch.Tensor, coupling: float) -> torch.Tensor:
    """The optimum of :func:`bandit` by Viterbi's recursion over steps: ``[B, H]`` indices."""
    B, H, n = table.shape
    value, back = table[:, 0], []
    bonus = coupling * torch.eye(n)
    for t in range(1, H):
        total = value[:, :, None] + bonus  # [B, previous a', a]
        best, arg = total.max(1)
        value = best + table[:, t]
        back.append(arg)
    seq = [value.argmax(-1)]
    for arg in reversed(back):
        seq.append(arg.gather(1, seq[-1][:, None])[:, 0])
    return torch.stack(seq[::-1], dim=1)


def test_categorical_cem_recovers_the_optimum_of_a_hand_made_bandit():
    B, H, n = 3, 6, 5
    g = torch.Generator().manual_seed(0)
    table = torch.rand(B, H, n, generator=g)
    table[torch.arange(B)[:, None], torch.arange(H), torch.randint(n, (B, H), generator=g)] += 0.5
    score = bandit(table, coupling=0.05)
    optimum = dynamic_programming(table, 0.05)
    small = torch.rand(1, 4, 3, generator=g)
    assert torch.equal(dynamic_programming(small, 0.2), brute_force(bandit(small, 0.2), 1, 3, 4)[1])
    cfg = CategoricalCEMConfig(population=200, elites=20, iterations=6)
    cem = CategoricalCEM(n, H, cfg, torch.Generator().manual_seed(1))
    result = cem.optimize(score, batch_size=B)
    assert result.actions.shape == (B, H, n) and result.mean.shape == (B, H, n)
    assert torch.equal(result.actions.argmax(-1), optimum)
    torch.testing.assert_close(result.mean.sum(-1), torch.ones(B, H))  # probabilities
    # 5^6 = 15625 sequences, 1200 scored: the search found what uniform sampling would not
    assert result.evaluations == 1200


def test_categorical_cem_batched_equals_one_start_state_at_a_time():
    H, n = 4, 3
    table = torch.rand(2, H, n, generator=torch.Generator().manual_seed(2))
    cfg = CategoricalCEMConfig(population=16, elites=4, iterations=3)
    batched = CategoricalCEM(n, H, cfg, torch.Generator().manual_seed(5))
    together = batched.optimize(bandit(table), batch_size=2)
    single = CategoricalCEM(n, H, cfg, torch.Generator().manual_seed(5))
    apart = [single.optimize(bandit(table[b : b + 1]), batch_size=1) for b in range(2)]
    torch.testing.assert_close(together.mean, torch.cat([r.mean for r in apart]))


def test_categorical_cem_warm_start_and_execute_best():
    H, n = 3, 2
    table = torch.tensor([[[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]])
    warm = torch.nn.functional.one_hot(torch.tensor([[1, 0, 1]]), n).float()
    cfg = CategoricalCEMConfig(population=8, elites=2, iterations=2, execute_best=True)
    cem = CategoricalCEM(n, H, cfg, torch.Generator().manual_seed(0))
    result = cem.optimize(bandit(table), init_mean=warm)
    assert torch.equal(result.actions, warm) and result.value.item() == 3.0
    with pytest.raises(ValueError, match="no std"):
        cem.optimize(bandit(table), init_std=torch.ones(1))
    with pytest.raises(ConfigError, match="warm_weight=1.0 must be in"):
        CategoricalCEMConfig(warm_weight=1.0)


@pytest.mark.parametrize(("n", "H"), [(2, 8), (3, 4)])
def test_enumeration_matches_brute_force(n, H):
    B = 2
    table = torch.randn(B, H, n, generator=torch.Generator().manual_seed(n * H))
    score = bandit(table, coupling=-0.3)
    value, best = brute_force(score, B, n, H)
    result = Enumerate(n, H).optimize(score, batch_size=B)
    assert result.evaluations == n**H
    assert torch.equal(result.actions.argmax(-1), best)
    torch.testing.assert_close(result.value, value)


def test_enumeration_refuses_too_many_sequences():
    with pytest.raises(ConfigError, match=r"2\^13 = 8192 sequences exceed"):
        Enumerate(2, 13, EnumerateConfig(max_sequences=4096))


def test_mpc_executes_the_first_step_and_shifts_the_probabilities():
    table = torch.tensor([[[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]])
    cem = CategoricalCEM(2, 3, CategoricalCEMConfig(population=32, elites=4))
    mpc = MPC(cem)
    first = mpc.act(bandit(table))
    assert torch.equal(first, torch.tensor([[0.0, 1.0]]))
    assert mpc._plan.shape == (1, 3, 2)  # the probabilities, warm start of the next call


# -- SAC-discrete ----------------------------------------------------------------------------
def discrete_batch(n: int = 32, obs_dim: int = 4, actions: int = 3, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "obs": torch.randn(n, obs_dim, generator=g),
        "action": torch.randint(actions, (n,), generator=g),
        "reward": torch.randn(n, generator=g),
        "next_obs": torch.randn(n, obs_dim, generator=g),
        "terminated": torch.rand(n, generator=g) < 0.2,
    }


def test_sac_discrete_shapes_and_target_entropy():
    cfg = SACUpdateConfig(hidden=(16, 16))
    sac = DiscreteSACUpdate(4, 3, cfg, seed=0)
    assert isinstance(sac.actor, CategoricalActor) and isinstance(sac.critic, DiscreteTwinQ)
    assert sac.target_entropy == pytest.approx(0.98 * math.log(3))
    half = DiscreteSACUpdate(4, 3, SACUpdateConfig(hidden=(16,), target_entropy_scale=0.5))
    assert half.target_entropy == pytest.approx(0.5 * math.log(3))
    fixed = DiscreteSACUpdate(4, 3, SACUpdateConfig(hidden=(16,), target_entropy=0.2))
    assert fixed.target_entropy == 0.2
    obs = torch.randn(5, 4)
    assert sac.actor(obs).shape == (5, 3) and sac.critic(obs).shape == (2, 5, 3)
    for deterministic in (True, False):
        a = sac.act(obs, deterministic)
        assert a.shape == (5,) and a.dtype == torch.long and bool(((a >= 0) & (a < 3)).all())
    sac.update(**discrete_batch())
    scalars = sac.scalars()
    assert set(scalars) == set(sac.SCALARS) and all(math.isfinite(v) for v in scalars.values())
    assert 0 < scalars["entropy"] <= math.log(3) + 1e-6


@pytest.mark.parametrize(("peaked", "scale", "direction"), [(True, 0.98, 1), (False, 0.1, -1)])
def test_sac_discrete_temperature_moves_toward_the_target_entropy(peaked, scale, direction):
    """A peaked policy (entropy far below 0.98 log 3) raises alpha; a uniform one (entropy log
    3) above a target of 0.1 log 3 lowers it."""
    sac = DiscreteSACUpdate(4, 3, SACUpdateConfig(hidden=(16,), target_entropy_scale=scale))
    with torch.no_grad():
        sac.actor.head.weight.zero_()
        sac.actor.head.bias.copy_(torch.tensor([8.0, 0.0, 0.0]) if peaked else torch.zeros(3))
    before = sac.log_alpha.item()
    sac.update(**discrete_batch())
    entropy = sac.scalars()["entropy"]
    assert (entropy < sac.target_entropy) == peaked
    assert math.copysign(1, sac.log_alpha.item() - before) == direction


def test_sac_discrete_critic_target_is_the_expected_soft_value():
    torch.manual_seed(0)
    sac = DiscreteSACUpdate(4, 2, SACUpdateConfig(hidden=(8,), autotune=False, ent_coef=0.5))
    batch = discrete_batch(actions=2)
    with torch.no_grad():
        log_pi = sac.actor(batch["next_obs"]).log_softmax(-1)
        q = sac.critic_target(batch["next_obs"]).amin(0)
        v = (log_pi.exp() * (q - 0.5 * log_pi)).sum(-1)
        target = batch["reward"] + 0.99 * (~batch["terminated"]).float() * v
        qf = sac.critic(batch["obs"])[:, torch.arange(32), batch["action"]]
        expected = 0.5 * (qf - target).square().mean(1).sum()
    sac.update(**batch)
    assert sac.scalars()["critic_loss"] == pytest.approx(expected.item(), rel=1e-5)


# -- agents on CartPole-v1 ---------------------------------------------------------------------
TINY_MODEL = {"ensemble_size": 2, "elites": 1, "hidden": 16, "layers": 2, "max_epochs": 2}


@pytest.mark.parametrize("planner", ["categorical_cem", "enumerate"])
def test_pets_plans_discrete_actions_and_reloads(planner, tmp_path):
    kw = {"planner": {"kind": planner, "population": 16, "elites": 4, "iterations": 2}}
    if planner == "enumerate":
        kw = {"planner": {"kind": "enumerate"}}
    agent = mb.PETS(
        "CartPole-v1", seed=0, model=TINY_MODEL, horizon=4, num_particles=2, random_steps=20,
        train_every=20, eval_episodes=0, **kw,
    )  # fmt: skip
    agent.learn(30)
    assert agent.buffer.all().action.dtype == np.int64
    obs = np.zeros(4, dtype=np.float32)
    action = agent.act(obs)
    assert isinstance(action, int) and action in (0, 1)
    agent.save(tmp_path / "pets.pt")
    loaded = mb.PETS.load(tmp_path / "pets.pt")
    agent.reset_policy()
    assert loaded.act(obs) in (0, 1)


def test_planner_kind_must_fit_the_action_space():
    wanted = r"kind='cem' plans continuous actions; CartPole-v1 has Discrete\(2\): set planner"
    with pytest.raises(ConfigError, match=wanted):
        mb.PETS("CartPole-v1", planner={"kind": "cem"})
    with pytest.raises(ConfigError, match="planner.kind='enumerate' plans discrete actions"):
        mb.PETS("Pendulum-v1", planner={"kind": "enumerate"})
    with pytest.raises(ConfigError, match="2\\^15 = 32768 sequences"):
        mb.PETS("CartPole-v1", planner={"kind": "enumerate"}, horizon=15)
    with pytest.raises(UnsupportedSpaceError, match="flat Box observation space; FrozenLake"):
        mb.PETS("FrozenLake-v1")


@pytest.mark.parametrize("algo", ["sac", "mbpo"])
def test_sac_and_mbpo_take_discrete_actions(algo, tmp_path):
    kw = {"learning_starts": 30, "batch_size": 16, "sac": {"hidden": [16, 16]}, "eval_every": 60,
          "eval_episodes": 1}  # fmt: skip
    if algo == "mbpo":
        kw |= {"model": TINY_MODEL, "rollouts_per_step": 4, "model_train_every": 30,
               "gradient_steps": 1}  # fmt: skip
    agent = {"sac": mb.SAC, "mbpo": mb.MBPO}[algo]("CartPole-v1", seed=0, **kw)
    agent.learn(60)
    assert isinstance(agent.sac, DiscreteSACUpdate) and agent.sac.updates > 0
    assert agent.buffer.all().action.dtype == np.int64
    if algo == "mbpo":
        stored = agent.model_buffer.all()
        assert len(stored) > 0 and stored.action.dtype == np.int64
        assert set(np.unique(stored.action)) <= {0, 1}
    obs = np.zeros(4, dtype=np.float32)
    assert agent.act(obs) in (0, 1)
    agent.save(tmp_path / "a.pt")
    loaded = type(agent).load(tmp_path / "a.pt")
    assert loaded.act(obs) == agent.act(obs)


def test_cartpole_termination():
    obs = torch.zeros(4, 4)
    nxt = torch.tensor([[0.0, 0, 0, 0], [2.5, 0, 0, 0], [0, 0, -0.21, 0], [-2.39, 0, 0.2, 0]])
    assert cartpole_termination(obs, obs, nxt).tolist() == [False, True, True, False]


@pytest.mark.slow
def test_discrete_pets_learns_cartpole():
    """The CartPole-v1 preset (categorical CEM), 600 real steps: the mean of 3 evaluation
    episodes far above a random policy's ~22."""
    agent = mb.PETS("CartPole-v1", seed=0, eval_episodes=0)
    agent.learn(600)
    stats = agent.evaluate(episodes=3)
    assert stats["return_mean"] >= 200, stats
