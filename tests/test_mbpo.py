"""MBPO: the rollout-length schedule, the model buffer's retain horizon, rollouts that stop at
predicted termination, real/model mixing, config errors, checkpoints, and learning Pendulum
(Janner et al. 2019)."""

import numpy as np
import pytest
import torch

import modelbased as mb
from modelbased.agents.mbpo import rollout_length
from modelbased.core.errors import ConfigError
from modelbased.data.replay import ReplayBuffer
from modelbased.models import ModelEnv


def small_mbpo(**overrides) -> mb.MBPO:
    kw = dict(
        sac=dict(hidden=(32, 32)),
        batch_size=64,
        learning_starts=50,
        model=dict(ensemble_size=3, elites=2, hidden=32, layers=2, max_epochs=3),
        rollouts_per_step=8,
        epoch_length=20,
        model_train_every=50,
        gradient_steps=2,
        rollout_schedule=[1, 15, 1, 1],
        eval_episodes=0,
        log_every=10**9,
    )
    return mb.MBPO("Pendulum-v1", seed=0, **(kw | overrides))


@pytest.mark.parametrize(
    "schedule, epoch, k",
    [((20, 100, 1, 15), 0, 1), ((20, 100, 1, 15), 20, 1), ((20, 100, 1, 15), 21, 1),
     ((20, 100, 1, 15), 60, 8), ((20, 100, 1, 15), 99, 14), ((20, 100, 1, 15), 100, 15),
     ((20, 100, 1, 15), 500, 15), ((1, 15, 1, 1), 10, 1), ((0, 4, 2, 6), 2, 4)],
)  # fmt: skip
def test_rollout_length_schedule(schedule, epoch, k):
    assert rollout_length(schedule, epoch) == k


def test_schedule_drives_k_and_model_buffer_keeps_the_newest_rows_when_resized():
    agent = small_mbpo(
        rollout_schedule=[0, 4, 1, 3], epoch_length=25, model_train_every=25, model_retain_epochs=2
    )
    agent.learn(50)  # first fit at step 50 = epoch 2: k = int(1 + 2/4 * 2) = 2
    assert agent.rollout_length == 2
    assert agent.model_buffer.capacity == 2 * 25 * 8 * 2  # retain * epoch_length * M * k
    agent.learn(49)  # refit at step 75, epoch 3: k = int(1 + 3/4 * 2) = 2; 50 steps x 8 x 2 rows
    assert agent.rollout_length == 2 and len(agent.model_buffer) == 800
    before = agent.model_buffer.all()
    agent.loop.env_steps = 100  # epoch 4: k = 3, capacity 1200: every row kept, in order
    agent.train_model()
    assert agent.rollout_length == 3 and agent.model_buffer.capacity == 1200
    np.testing.assert_array_equal(agent.model_buffer.all().obs, before.obs)
    agent.loop.env_steps = 0  # epoch 0: k = 1, capacity 400: the newest 400 rows stay
    agent.train_model()
    assert agent.rollout_length == 1 and agent.model_buffer.capacity == 400
    np.testing.assert_array_equal(agent.model_buffer.all().obs, before.obs[400:])


def test_model_buffer_retains_exactly_the_last_epochs_of_rollouts():
    agent = small_mbpo(model_retain_epochs=1, epoch_length=5, rollouts_per_step=4)
    agent.learn(50)  # trained at step 50
    buf = agent.model_buffer
    assert buf.capacity == 1 * 5 * 4 * 1  # retain * epoch_length * M * k
    for i in range(8):  # mark each batch of rollouts with its own reward
        agent.model_buffer.add_batch(
            *(
                np.zeros((4, 3), np.float32),
                np.zeros((4, 1), np.float32),
                np.full(4, float(i), np.float32),
                np.zeros((4, 3), np.float32),
                np.zeros(4, bool),
                np.zeros(4, bool),
            )
        )
    assert len(buf) == 20 and sorted(set(buf.all().reward.tolist())) == [3.0, 4.0, 5.0, 6.0, 7.0]


def test_rollouts_are_one_batched_model_step_per_rollout_step(monkeypatch):
    agent = small_mbpo(rollout_schedule=[0, 1, 3, 3])
    agent.learn(50)
    calls = []
    sample = agent.model.sample
    monkeypatch.setattr(
        agent.model, "sample", lambda *a, **k: calls.append(a[0].shape) or sample(*a, **k)
    )
    stored = agent.rollout(400)
    assert len(calls) == 3 and stored == 3 * 400  # Pendulum never terminates
    assert all(shape[0] == 3 for shape in calls)  # all members' rows in one call


@pytest.mark.parametrize("rule", ["always", "never", "cos>0"])
def test_rollouts_stop_at_predicted_termination(rule):
    agent = small_mbpo(rollout_schedule=[0, 1, 4, 4])
    agent.learn(50)
    fns = {
        "always": lambda o, a, n: torch.ones(len(n), dtype=torch.bool),
        "never": lambda o, a, n: torch.zeros(len(n), dtype=torch.bool),
        "cos>0": lambda o, a, n: n[:, 0] > 0,
    }
    agent.model_env.termination_fn = fns[rule]
    agent.model_buffer = ReplayBuffer(10_000, (3,), (1,))
    stored = agent.rollout(200)
    data = agent.model_buffer.all()
    assert len(data) == stored
    if rule == "always":  # one transition per rollout, each terminal
        assert stored == 200 and data.terminated.all()
    elif rule == "never":
        assert stored == 800 and not data.terminated.any()
    else:  # non-terminal rows never predicted termination; terminal rows did
        assert (data.next_obs[~data.terminated, 0] <= 0).all()
        assert (data.next_obs[data.terminated, 0] > 0).all()
        # a rollout's rows end at its first termination: at most one terminal row per rollout,
        # and one per rollout that terminated within k = 4 steps
        assert 0 < data.terminated.sum() <= 200 < stored < 800
    assert not data.truncated.any()


def test_elites_only_rollouts_use_only_the_elites():
    agent = small_mbpo(model=dict(ensemble_size=5, elites=2))
    agent.learn(50)
    env = ModelEnv(agent.model, propagation="ts1", elites_only=True)
    env.reset(torch.zeros(101, 3))
    members = env.members()
    assert set(members.tolist()) == set(agent.model.elites.tolist())
    counts = torch.bincount(members, minlength=5)[agent.model.elites]
    assert counts.min() >= 50  # spread evenly over the elites
    next_obs, reward, done, _ = env.step(torch.zeros(101, 1))
    assert next_obs.shape == (101, 3) and torch.isfinite(next_obs).all()


@pytest.mark.parametrize("ratio", [0.0, 0.05, 0.5, 1.0])
def test_real_ratio_sets_the_share_of_real_rows_in_each_batch(ratio):
    agent = small_mbpo(real_ratio=ratio, batch_size=200)
    n = 100
    zeros = (np.zeros((n, 3), np.float32), np.zeros((n, 1), np.float32))

    def fill(buf, r):
        return buf.add_batch(
            zeros[0],
            zeros[1],
            np.full(n, r, np.float32),
            zeros[0],
            np.zeros(n, bool),
            np.zeros(n, bool),
        )

    assert len(agent.buffer) == 0
    fill(agent.buffer, 1.0)
    assert (agent.sample_batch()["reward"] == 1.0).all()  # empty model buffer: all real
    fill(agent.model_buffer, -1.0)
    for _ in range(3):
        reward = agent.sample_batch()["reward"]
        assert len(reward) == 200 and int((reward == 1.0).sum()) == int(200 * ratio)


@pytest.mark.parametrize(
    "key, value",
    [
        ("rollout_schedule", [1, 2, 3]),
        ("rollout_schedule", [5, 5, 1, 1]),
        ("rollout_schedule", [0, 5, 3, 1]),
        ("real_ratio", 1.5),
        ("model.elites", 9),
        ("rollouts_per_step", 0),
        ("model_retain_epochs", 0),
        ("learning_starts", 0),
    ],
)
def test_bad_config_values_name_the_key(key, value):
    with pytest.raises(ConfigError, match=key):
        mb.MBPO("Pendulum-v1", **{key: value})


def test_presets_hold_the_papers_knobs():
    hopper = mb.MBPOConfig.resolve("Hopper-v5")
    # jannerm/mbpo examples/config/{hopper,halfcheetah,inverted_pendulum}/0.py
    assert hopper.rollout_schedule == (20, 150, 1, 15) and hopper.gradient_steps == 20
    assert hopper.sac.target_entropy == -1.0
    assert (hopper.model.ensemble_size, hopper.model.elites, hopper.rollouts_per_step) == (
        7,
        5,
        400,
    )
    assert hopper.real_ratio == 0.05 and hopper.model_train_every == 250
    cheetah = mb.MBPOConfig.resolve("HalfCheetah-v5")
    assert cheetah.rollout_schedule == (20, 150, 1, 1) and cheetah.gradient_steps == 40
    assert cheetah.sac.target_entropy == -3.0
    inv = mb.MBPOConfig.resolve("InvertedPendulum-v5")
    assert inv.epoch_length == 250 and inv.rollout_schedule == (1, 15, 1, 1)
    assert (
        inv.gradient_steps == 10 and inv.sac.target_entropy == -0.05 and inv.learning_starts == 500
    )


def test_checkpoint_round_trip(tmp_path):
    agent = small_mbpo()
    agent.learn(60)
    agent.save(tmp_path / "mbpo.pt")
    loaded = mb.load(tmp_path / "mbpo.pt")
    assert isinstance(loaded, mb.MBPO) and loaded.trained
    assert len(loaded.model_buffer) == len(agent.model_buffer) > 0
    obs = np.array([0.3, -0.9, 0.5], dtype=np.float32)
    np.testing.assert_array_equal(agent.act(obs), loaded.act(obs))
    x = torch.randn(5, 3), torch.randn(5, 1)
    torch.testing.assert_close(
        agent.model.predict(*x).next_obs_mean, loaded.model.predict(*x).next_obs_mean
    )
    agent.learn(10)
    loaded.learn(10)
    for a, b in zip(agent.sac.critic.parameters(), loaded.sac.critic.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_phase_timer_splits_the_time_of_model_rollouts_and_sac():
    agent = small_mbpo(log_every=20)
    rows = []

    class Rows(mb.Callback):
        def on_train(self, state, scalars):
            rows.append(scalars)

    agent.learn(60, callback=Rows())
    assert len(rows) == 3 and "time/sac_s" not in rows[1]  # nothing before learning_starts
    last = rows[-1]
    assert last["time/model_calls"] == 1 and last["time/sac_calls"] == 11  # steps 50-60
    for phase in ("model", "rollout", "sac"):
        assert last[f"time/{phase}_s"] > 0 and last[f"time/{phase}_cpu_s"] >= 0
    assert last["rollout_length"] == 1


@pytest.mark.slow
def test_mbpo_learns_pendulum_in_1500_steps():
    """The tuned Pendulum preset; SAC alone is near -1200 (random) at 1,500 steps."""
    agent = mb.MBPO("Pendulum-v1", seed=0, eval_episodes=0)
    agent.learn(1500)
    stats = agent.evaluate(episodes=10)
    assert stats["return_mean"] > -400, stats
