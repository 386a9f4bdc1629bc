"""ModelEnv propagation semantics, on a fake ensemble whose member e moves obs by e + 1."""

import dataclasses

import pytest
import torch

from modelbased.models.ensemble import EnsembleConfig, EnsembleModel
from modelbased.models.model_env import PROPAGATIONS, ModelEnv


@dataclasses.dataclass
class Pred:
    next_obs_mean: torch.Tensor
    next_obs_var: torch.Tensor
    reward_mean: torch.Tensor
    reward_var: torch.Tensor
    termination_logit: torch.Tensor | None


class ShiftEnsemble:
    """Member e: next_obs = obs + (e + 1) + noise * N(0, 1); reward = member index e."""

    def __init__(self, ensemble_size: int = 4, noise: float = 0.0, terminate_above=None):
        self.ensemble_size, self.noise, self.terminate_above = ensemble_size, noise, terminate_above
        self.calls: list[tuple[int, ...]] = []

    def _shift(self, obs):
        e = self.ensemble_size
        return torch.arange(1.0, e + 1).reshape(e, *([1] * (obs.dim() - 1)))

    def sample(self, obs, action, generator=None, deterministic=False):
        assert obs.dim() == 3 and obs.shape[0] == self.ensemble_size
        self.calls.append(tuple(obs.shape))
        mean = obs + self._shift(obs) + 0 * action.sum(-1, keepdim=True)
        noise = 0.0 if deterministic else self.noise * torch.randn(mean.shape, generator=generator)
        reward = self._shift(obs)[..., 0].expand(obs.shape[:2]) - 1
        if self.terminate_above is not None:
            done = mean[..., 0] > self.terminate_above
        else:
            done = torch.zeros(obs.shape[:2], dtype=torch.bool)
        return mean + noise, reward.clone(), done

    def predict(self, obs, action):
        e = self.ensemble_size
        mean = obs.unsqueeze(0) + self._shift(obs.unsqueeze(0))
        reward = (self._shift(obs.unsqueeze(0))[..., 0] - 1).expand(e, len(obs))
        return Pred(mean, torch.zeros_like(mean), reward, torch.zeros_like(reward), None)


def make(propagation, n_members=4, noise=0.0, **kw):
    gen = torch.Generator().manual_seed(0)
    return ModelEnv(ShiftEnsemble(n_members, noise, **kw), propagation=propagation, generator=gen)


@pytest.mark.parametrize("propagation", PROPAGATIONS)
@pytest.mark.parametrize("batch,particles", [(3, 5), (4, 1), (2, 7)])
def test_shapes_for_every_mode(propagation, batch, particles):
    env = make(propagation, noise=0.1)
    obs = env.reset(torch.zeros(batch, 2), particles)
    assert obs.shape == (batch * particles, 2)
    next_obs, reward, done, _ = env.step(torch.zeros(batch * particles, 1))
    assert next_obs.shape == (batch * particles, 2)
    assert reward.shape == done.shape == (batch * particles,)
    out = env.rollout_actions(torch.zeros(batch, 2), torch.zeros(batch, 6, 1), particles)
    assert out["obs"].shape == (7, batch, particles, 2)
    assert out["reward"].shape == out["terminated"].shape == (6, batch, particles)
    sequences = torch.zeros(batch, 3, 4, 1)
    returns = env.evaluate_action_sequences(torch.zeros(batch, 2), sequences, particles)
    assert returns.shape == (batch, 3)


def test_tsinf_keeps_each_particle_on_one_member():
    env = make("tsinf")
    env.reset(torch.zeros(6, 1), 4)  # 24 particles over 4 members
    members = env.members()
    assert torch.bincount(members, minlength=4).tolist() == [6, 6, 6, 6]
    steps = [env.step(torch.zeros(24, 1))[0][:, 0] for _ in range(5)]
    increments = torch.stack([steps[0]] + [b - a for a, b in zip(steps, steps[1:], strict=False)])
    assert torch.all(increments == increments[0])  # the same member every step
    assert torch.equal(increments[0].long() - 1, members)
    assert len(set(increments[0].tolist())) == 4


def test_ts1_redraws_members_every_step():
    env = make("ts1")
    env.reset(torch.zeros(8, 1), 5)
    a = env.step(torch.zeros(40, 1))[0][:, 0]
    b = env.step(torch.zeros(40, 1))[0][:, 0] - a
    assert not torch.equal(a, b)
    assert sorted(torch.bincount(a.long() - 1).tolist()) == [10, 10, 10, 10]


def test_one_batched_call_per_step_with_padding():
    env = make("ts1", n_members=4)
    env.reset(torch.zeros(3, 1), 3)  # 9 particles -> padded to 12 = 4 x 3
    env.step(torch.zeros(9, 1))
    assert env.model.calls == [(4, 3, 1)]


def test_expectation_is_mean_of_members_and_mean_member_has_no_noise():
    env = make("expectation", noise=1.0)
    env.reset(torch.zeros(2, 1), 3)
    next_obs, reward, _, _ = env.step(torch.zeros(6, 1))
    assert torch.allclose(next_obs, torch.full((6, 1), 2.5)) and torch.allclose(
        reward, 1.5 * torch.ones(6)
    )
    env = make("mean-member", noise=1.0)
    env.reset(torch.zeros(2, 1), 4)
    next_obs = env.step(torch.zeros(8, 1))[0]
    assert torch.equal(next_obs, next_obs.round())  # integer shifts: no Gaussian noise
    noisy = make("tsinf", noise=1.0)
    noisy.reset(torch.zeros(2, 1), 4)
    stepped = noisy.step(torch.zeros(8, 1))[0]
    assert not torch.equal(stepped, stepped.round())  # TS-inf samples aleatoric noise


def test_known_reward_and_termination_override_and_stick():
    gen = torch.Generator().manual_seed(0)
    env = ModelEnv(
        ShiftEnsemble(2),
        reward_fn=lambda o, a, n: -n[:, 0],
        termination_fn=lambda o, a, n: n[:, 0] >= 3,
        propagation="tsinf",
        generator=gen,
    )
    env.reset(torch.zeros(1, 1), 2)  # member shifts 1 and 2
    rewards, dones = [], []
    for _ in range(3):
        _, r, d, _ = env.step(torch.zeros(2, 1))
        rewards.append(r)
        dones.append(d)
    members = env.members()
    fast = int(torch.nonzero(members == 1)[0])  # shift 2: 2, 4 (terminates), then 0 reward
    assert [float(r[fast]) for r in rewards] == [-2.0, -4.0, 0.0]
    assert [bool(d[fast]) for d in dones] == [False, True, True]


def test_rollout_policy_marks_alive_steps():
    env = make("tsinf", n_members=2, terminate_above=2.5)
    out = env.rollout_policy(torch.zeros(4, 1), lambda s: torch.zeros(len(s), 1), horizon=4)
    assert out["obs"].shape == (4, 4, 1) and out["alive"].shape == (4, 4)
    assert out["alive"][0].all()
    fast = out["next_obs"][0, :, 0] == 2  # member with shift 2 crosses 2.5 at step 2
    assert (out["alive"][2, fast] == False).all() and out["alive"][2, ~fast].all()  # noqa: E712


def test_unknown_propagation_is_rejected():
    with pytest.raises(ValueError, match="propagation 'ts2'"):
        ModelEnv(ShiftEnsemble(), propagation="ts2")  # type: ignore[arg-type]


@pytest.mark.parametrize("propagation", PROPAGATIONS)
@pytest.mark.parametrize("elites_only", [False, True])
def test_rollouts_stay_on_the_model_device(propagation, elites_only):
    """On the "meta" device (shapes without data) a CPU tensor meeting the particles would
    raise: member indices, permutations, padding and returns all live on the states' device."""
    config = EnsembleConfig(ensemble_size=3, elites=2, hidden=8, layers=1, learn_termination=True)
    model = EnsembleModel(3, 1, config, seed=0).to("meta")
    env = ModelEnv(model, propagation=propagation, elites_only=elites_only)
    obs = torch.zeros(5, 3, device="meta")  # 5 x 2 particles: padded to a multiple of E
    returns = env.evaluate_action_sequences(
        obs, torch.zeros(5, 4, 3, 1, device="meta"), 2, 0.9, lambda s: s[:, 0], 0.1
    )
    assert returns.device.type == "meta" and returns.shape == (5, 4)
    out = env.rollout_policy(obs, lambda s: s[:, :1], 3)
    assert {v.device.type for v in out.values()} == {"meta"} and out["obs"].shape == (3, 5, 3)
    env.reset(obs, 2)
    assert env.members().device.type == "meta"
