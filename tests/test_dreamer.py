"""Dreamer's pieces: symlog/two-hot, KL balancing and free bits, straight-through samples, the
percentile return scale, lambda-returns, sequence replay boundaries, the world-model loss on a
toy sequence, version presets; a slow learning test."""

import numpy as np
import pytest
import torch

import modelbased as mb
from modelbased.core.errors import ConfigError
from modelbased.data.sequence_replay import ReplayRatio, SequenceReplay
from modelbased.models.dreamer_behavior import PercentileNormalizer, lambda_returns
from modelbased.models.rssm import RSSM, RSSMConfig, kl_divergence, kl_loss
from modelbased.models.rssm_world_model import WorldModel, WorldModelConfig
from modelbased.models.support import Support, symexp, symlog


# -- symlog and two-hot -----
def test_symlog_symexp_round_trip():
    x = torch.cat([torch.linspace(-1e4, 1e4, 1001), torch.tensor([0.0, 1e-6, -1e-6])])
    torch.testing.assert_close(symexp(symlog(x)), x, rtol=1e-5, atol=1e-5)
    assert symlog(torch.tensor(np.e - 1)).item() == pytest.approx(1.0)


def test_two_hot_round_trip_and_mass():
    support = Support.from_range(255, 20.0, "symlog")  # DreamerV3's bins
    bins = torch.linspace(-20.0, 20.0, 255)
    x = torch.tensor([-3000.0, -5.5, -1.0, 0.0, 0.3, 7.25, 123.0, 1e5])
    probs = support.encode(x)
    torch.testing.assert_close(probs.sum(-1), torch.ones(len(x)))
    assert ((probs > 0).sum(-1) <= 2).all()
    torch.testing.assert_close(symexp((probs * bins).sum(-1)), x, rtol=1e-4, atol=1e-4)
    # the logits of a two-hot target decode to nearly it (softmax of log-probs)
    logits = torch.log(probs + 1e-12)
    torch.testing.assert_close(support.logits_to_scalar(logits), x, rtol=1e-3, atol=1e-3)
    # beyond the ends (symlog 25 > 20): clipped to the last bins
    far = support.encode(symexp(torch.tensor([25.0, -25.0])))
    assert far[0, -1] == 1 and far[1, 0] == 1


# -- KL balancing and free bits -----
def categorical(probs):
    return torch.log(torch.tensor(probs, dtype=torch.float32))[None, None]  # [1, S=1, C]


def test_kl_of_hand_made_categoricals():
    q, p = [0.7, 0.2, 0.1], [0.2, 0.5, 0.3]
    want = sum(a * np.log(a / b) for a, b in zip(q, p, strict=True))
    got = kl_divergence(categorical(q), categorical(p), classes=3)
    assert got.item() == pytest.approx(want, rel=1e-5)


def test_kl_of_hand_made_gaussians():
    post = torch.tensor([[[0.5, -1.0], [1.0, 0.5]]])  # [1, 2, S=2]: mean, std
    prior = torch.tensor([[[0.0, 0.0], [2.0, 1.0]]])
    want = torch.distributions.kl_divergence(
        torch.distributions.Normal(post[:, 0], post[:, 1]),
        torch.distributions.Normal(prior[:, 0], prior[:, 1]),
    ).sum(-1)
    torch.testing.assert_close(kl_divergence(post, prior, classes=0), want)


def test_kl_balancing_splits_the_gradient_by_dyn_and_rep():
    q = categorical([0.7, 0.2, 0.1]).requires_grad_()
    p = categorical([0.2, 0.5, 0.3]).requires_grad_()
    loss, kl = kl_loss(q, p, 3, dyn=0.5, rep=0.1, free=0.0)
    plain = kl_divergence(q, p, 3)
    assert loss.item() == pytest.approx(0.6 * plain.item(), rel=1e-5)
    gq, gp = torch.autograd.grad(loss, [q, p])
    ref_q, ref_p = torch.autograd.grad(plain.sum(), [q, p])
    torch.testing.assert_close(gq, 0.1 * ref_q)  # representation: rep
    torch.testing.assert_close(gp, 0.5 * ref_p)  # dynamics: dyn


def test_free_bits_clip_each_term_and_stop_its_gradient():
    close = categorical([0.34, 0.33, 0.33]).requires_grad_()
    prior = categorical([0.33, 0.33, 0.34]).requires_grad_()
    loss, kl = kl_loss(close, prior, 3, dyn=0.5, rep=0.1, free=1.0)
    assert kl.item() < 1e-3
    assert loss.item() == pytest.approx(0.6)  # both terms at the floor of 1 nat
    gq, gp = torch.autograd.grad(loss, [close, prior])
    assert gq.abs().max() == 0 and gp.abs().max() == 0
    # per element (V3) vs on the batch mean (V2): one element above, one below the floor
    far = torch.stack([categorical([0.98, 0.01, 0.01]), categorical([0.34, 0.33, 0.33])])[:, 0]
    base = torch.stack([categorical([0.01, 0.01, 0.98]), categorical([0.33, 0.33, 0.34])])[:, 0]
    kls = kl_divergence(far, base, 3)
    assert kls[0] > 1 > kls[1]
    per_step, _ = kl_loss(far, base, 3, 1.0, 0.0, 1.0)
    averaged, _ = kl_loss(far, base, 3, 1.0, 0.0, 1.0, free_average=True)
    assert per_step.item() == pytest.approx((kls[0].item() + 1.0) / 2, rel=1e-5)
    assert averaged.item() == pytest.approx(max(kls.mean().item(), 1.0), rel=1e-5)


# -- straight-through samples -----
def test_straight_through_samples_are_one_hot_and_pass_gradients():
    rssm = RSSM(RSSMConfig(deter=8, hidden=8, stoch=4, classes=5), action_dim=1, embed_dim=3)
    logits = torch.randn(6, 4 * 5, requires_grad=True)
    stats = rssm.stats(logits)
    z = rssm.sample(stats, torch.rand(6, 4))
    onehot = z.detach().unflatten(-1, (4, 5))
    torch.testing.assert_close(onehot.sum(-1), torch.ones(6, 4))  # one-hot up to rounding
    assert ((onehot - onehot.round()).abs() < 1e-6).all()
    weights = torch.randn(20)
    (grad,) = torch.autograd.grad((z * weights).sum(), logits)
    assert grad.abs().sum() > 0  # the gradient of the probabilities passes through the sample


def test_categorical_samples_follow_the_mixed_probabilities():
    rssm = RSSM(RSSMConfig(deter=8, hidden=8, stoch=1, classes=4, unimix=0.2), 1, 3)
    stats = rssm.stats(torch.tensor([[10.0, 0.0, 0.0, 0.0]]).expand(20000, 4))
    z = rssm.sample(stats, torch.rand(20000, 1, generator=torch.Generator().manual_seed(0)))
    freq = z.detach().mean(0)
    want = 0.8 * torch.softmax(torch.tensor([10.0, 0, 0, 0]), 0) + 0.05
    torch.testing.assert_close(freq, want, atol=0.01, rtol=0)


# -- behaviour -----
def test_percentile_normalizer_tracks_the_5_95_range_with_an_ema():
    norm = PercentileNormalizer(decay=0.9)
    x = torch.arange(101, dtype=torch.float32)  # 5th percentile 5, 95th 95
    offset, scale = norm.update(x)
    assert offset.item() == pytest.approx(5.0) and scale.item() == pytest.approx(90.0)
    offset, scale = norm.update(x * 0.01)  # range 0.9: the EMA moves a tenth of the way
    assert offset.item() == pytest.approx(0.9 * 5 + 0.1 * 0.05)
    assert scale.item() == pytest.approx(0.9 * 90 + 0.1 * 0.9)
    small = PercentileNormalizer(decay=0.0)
    assert small.update(torch.rand(100) * 0.1)[1].item() == 1.0  # max(1, S)


def test_lambda_returns_match_their_recursion():
    g = torch.Generator().manual_seed(0)
    H, N, gamma, lam = 5, 3, 0.9, 0.8
    reward, cont = torch.randn(H, N, generator=g), (torch.rand(H, N, generator=g) > 0.2).float()
    value = torch.randn(H + 1, N, generator=g)
    got = lambda_returns(reward, cont, value, gamma, lam)
    for n in range(N):
        nxt = value[H, n].item()
        for t in reversed(range(H)):
            nxt = reward[t, n] + gamma * cont[t, n] * ((1 - lam) * value[t + 1, n] + lam * nxt)
            assert got[t, n].item() == pytest.approx(float(nxt), rel=1e-5, abs=1e-6)
    # lambda = 1 with continues 1 is the discounted sum plus the bootstrap
    ones = torch.ones(H, N)
    mc = lambda_returns(reward, ones, value, gamma, 1.0)[0]
    want = sum(gamma**t * reward[t] for t in range(H)) + gamma**H * value[H]
    torch.testing.assert_close(mc, want)


# -- sequence replay -----
def fill(replay, lengths, rng):
    """Episodes of the given lengths; obs = [episode id, step in episode]."""
    for ep, length in enumerate(lengths):
        replay.add(np.array([ep, 0], np.float32), np.zeros(1, np.float32), 0.0, True, False)
        for t in range(1, length + 1):
            done = t == length and rng.random() < 0.5
            replay.add(np.array([ep, t], np.float32), np.ones(1, np.float32), 1.0, False, done)


@pytest.mark.parametrize("capacity", [50, 1000])
def test_replay_never_joins_two_episodes_unflagged(capacity):
    rng = np.random.default_rng(0)
    replay = SequenceReplay(capacity, (2,), 1)
    fill(replay, rng.integers(1, 30, size=60), rng)
    batch = replay.sample(500, 16, rng)
    obs, first = batch["obs"], batch["is_first"]
    assert first[:, 0].all()
    ep, step = obs[..., 0], obs[..., 1]
    new_episode = ep[:, 1:] != ep[:, :-1]
    assert (first[:, 1:] == new_episode).all()  # flagged exactly where an episode starts
    assert (step[:, 1:][~new_episode] == step[:, :-1][~new_episode] + 1).all()  # in order
    assert (ep[:, 1:] >= ep[:, :-1]).all()  # never across the ring's seam
    assert (batch["action"][step == 0] == 0).all()  # an episode's first step: no action in


def test_replay_state_dict_round_trip_and_ratio():
    rng = np.random.default_rng(1)
    replay = SequenceReplay(40, (2,), 1)
    fill(replay, [30, 25], rng)
    copy = SequenceReplay(40, (2,), 1)
    copy.load_state_dict(replay.state_dict())
    a, b = (
        replay.sample(8, 5, np.random.default_rng(3)),
        copy.sample(8, 5, np.random.default_rng(3)),
    )
    assert all(np.array_equal(a[k], b[k]) for k in a)
    ratio = ReplayRatio(512, 16 * 64)  # half an update per env step
    assert [ratio.due() for _ in range(4)] == [0, 1, 0, 1]
    ratio = ReplayRatio(2048, 1024)
    assert ratio.due(3) == 6


# -- the world model -----
def test_world_model_loss_falls_on_a_toy_sequence():
    torch.manual_seed(0)
    cfg = WorldModelConfig(deter=32, hidden=32, layers=1, stoch=4, classes=4, lr=3e-3)
    model = WorldModel(cfg, "xs", (3,), 1)
    T = 16
    t = torch.arange(T, dtype=torch.float32)
    obs = torch.stack([torch.sin(0.3 * t), torch.cos(0.3 * t), 0.1 * t], -1)[None].repeat(4, 1, 1)
    batch = {
        "obs": obs,
        "action": torch.ones(4, T, 1),
        "reward": torch.sin(0.3 * t)[None].repeat(4, 1),
        "is_first": torch.zeros(4, T, dtype=torch.bool),
        "is_terminal": torch.zeros(4, T, dtype=torch.bool),
    }
    batch["is_first"][:, 0] = True
    opt = torch.optim.Adam(model.parameters(), cfg.lr)
    first = None
    for _ in range(100):
        loss, _, scalars = model.loss(batch, model.rssm.noise((T, 4), None, "cpu"))
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first or {k: v.item() for k, v in scalars.items()}
    last = {k: v.item() for k, v in scalars.items()}
    assert last["recon"] < 0.2 * first["recon"]
    assert last["reward_error"] < 0.5 * first["reward_error"]
    assert last["model_loss"] < 0.5 * first["model_loss"]


# -- configs -----
def test_versions_are_presets_of_one_config():
    v1 = mb.DreamerConfig.resolve("Pendulum-v1", {"version": "1"})
    v2 = mb.DreamerConfig.resolve("Pendulum-v1", {"version": 2})
    v3 = mb.DreamerConfig.resolve("Pendulum-v1", {})
    assert v1.model.classes == 0 and v2.model.classes == v3.model.classes > 0
    assert (v2.model.kl_dyn, v2.model.kl_rep) == (0.8, 0.2)
    assert (v3.model.kl_dyn, v3.model.kl_rep) == (0.5, 0.1)
    assert v3.behavior.normalize_returns and not v2.behavior.normalize_returns
    assert v2.behavior.critic_target == "slow" and v3.behavior.critic_head == "twohot"
    assert v1.model.deter == v3.model.deter  # the env preset's sizes stay
    over = mb.DreamerConfig.resolve("Pendulum-v1", {"version": 1, "model.free_bits": 0.5})
    assert over.model.free_bits == 0.5  # the user's overrides come last
    with pytest.raises(ConfigError, match="version"):
        mb.DreamerConfig.resolve(None, {"version": 4})


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_dreamer_trains_saves_and_loads_on_discrete_and_continuous(env_id, tmp_path):
    tiny = {
        "model": {"deter": 16, "hidden": 16, "stoch": 4, "classes": 4},
        "batch_size": 4,
        "seq_len": 8,
        "replay_ratio": 32,
        "learning_starts": 30,
        "eval_episodes": 1,
        "eval_every": 60,
    }
    agent = mb.Dreamer(env_id, tiny, seed=0, device="cpu").learn(60)
    assert agent.updates == 31  # one per env step from step 30 to 60 (32 / (4 * 8))
    agent.save(tmp_path / "d.pt")
    loaded = mb.load(str(tmp_path / "d.pt"))
    obs, _ = loaded.env.reset(seed=0)
    assert loaded.env.action_space.contains(loaded.act(obs))
    assert loaded.updates == agent.updates and len(loaded.replay) == len(agent.replay)


@pytest.mark.slow
def test_dreamer_v3_learns_pendulum_on_a_small_budget():
    """A random policy scores about -1200 on Pendulum-v1; the V3 preset (seed 0) evaluated
    -235 / -165 / -186 at 4k / 5k / 6k env steps in benchmarks/dreamer.py's run of the same
    training (evaluations do not touch training's random streams). About 25 CPU minutes."""
    agent = mb.Dreamer("Pendulum-v1", seed=0, device="cpu", eval_episodes=0).learn(5000)
    assert agent.evaluate(10)["return_mean"] > -600


# -- PlaNet, pixels -----
def test_planet_plans_with_cem_over_the_learned_reward():
    """With a reward head that pays for a positive action (through the model's latent), the
    planned first action is positive; evaluation randomness comes from its rng alone."""
    agent = mb.PlaNet(
        "Pendulum-v1",
        {"model": {"deter": 8, "hidden": 8, "stoch": 4}, "horizon": 3, "eval_episodes": 0},
        seed=0,
        device="cpu",
    )
    rssm, reward = agent.model.rssm, agent.model.reward
    with torch.no_grad():  # prior mean = the action in every latent, reward = its sum
        for p in [*rssm.parameters(), *reward.parameters()]:
            p.zero_()
        rssm.img_in[0].weight[:, -1] = 1.0  # hidden units = the action (layer norm off below)
        rssm.img_in[1] = torch.nn.Identity()
        rssm.img_in[2] = torch.nn.Identity()
        rssm.gru.norm = torch.nn.Identity()
        rssm.gru.linear.weight[:8, :8] = 0.0
        rssm.gru.linear.weight[8:16, :8] = torch.eye(8) * 5  # candidate = tanh(5 action)
        rssm.gru.linear.weight[16:24] = 0.0
    reward.mean = lambda out: out  # noqa: E731
    reward.forward = lambda feat: feat[:, :8].sum(-1)  # noqa: E731
    state = rssm.initial(1, "cpu")
    action = agent.plan(state, torch.Generator().manual_seed(0))
    assert action.item() > 0.5
    obs, _ = agent.env.reset(seed=0)
    a1 = agent.policy(obs, True, np.random.default_rng(5))
    agent.reset_policy()
    a2 = agent.policy(obs, True, np.random.default_rng(5))
    assert np.array_equal(a1, a2)


@pytest.mark.parametrize(
    "env_id", ["modelbased/PixelPendulum-v0", "modelbased/PixelCartPoleSwingUp-v0"]
)
def test_pixel_tasks_are_64x64_rgb_and_train_with_an_open_loop_grid(env_id, tmp_path):
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    env = gym.make(env_id)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert len(np.unique(obs.reshape(-1, 3), axis=0)) >= 3  # background, pole and more drawn
    repeated = gym.make(env_id, action_repeat=4)
    repeated.reset(seed=0)
    steps = 0
    while True:
        steps += 1
        *_, terminated, truncated, _ = repeated.step(repeated.action_space.sample())
        if terminated or truncated:
            break
    assert steps == 50  # 200 env steps in blocks of 4
    tiny = {
        "model": {"deter": 16, "hidden": 16, "stoch": 4, "classes": 4, "cnn_depth": 4},
        "batch_size": 2,
        "seq_len": 8,
        "replay_ratio": 8,
        "learning_starts": 30,
        "eval_episodes": 0,
    }
    agent = mb.Dreamer(env_id, tiny, seed=0, device="cpu").learn(40)
    assert agent.updates > 0
    path = agent.open_loop_grid(tmp_path / "open_loop.png", context=5, horizon=30)
    image = __import__("matplotlib.pyplot").pyplot.imread(path)
    assert image.shape[0] == 3 * 66 and image.shape[1] == 35 * 66


@pytest.mark.slow
def test_compiled_imagination_step_equals_the_eager_one():
    """``behavior.compile`` runs the same step under torch.compile: same rollout, same grads."""
    from modelbased.models.rssm import Latent

    cfg = {"model": {"deter": 16, "hidden": 16, "stoch": 4, "classes": 4}, "eval_episodes": 0}
    agent = mb.Dreamer("Pendulum-v1", cfg, seed=0, device="cpu")
    compiled = mb.Dreamer(
        "Pendulum-v1", cfg | {"behavior": {"compile": True}}, seed=0, device="cpu"
    )
    compiled.model.load_state_dict(agent.model.state_dict())
    compiled.behavior.load_state_dict(agent.behavior.state_dict())
    start = Latent(torch.randn(32, 16), torch.rand(32, 16))
    outs = []
    for a in (agent, compiled):
        feats, actions = a.behavior.imagine(a.model, start, torch.Generator().manual_seed(1))
        (grad,) = torch.autograd.grad(feats.square().sum(), a.behavior.actor.net[0][0].weight)
        outs.append((feats, actions, grad))
    for x, y in zip(*outs, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5)
