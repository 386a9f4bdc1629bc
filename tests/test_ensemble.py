"""The PETS/MBPO dynamics ensemble: batched layers, normalization, training on a known linear
system, early stopping and elites, uncertainty, checkpoints and bad data; the trainer's
contract (reproducible fits, public model interface only) and device/dtype hygiene."""

import itertools
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

import modelbased
from modelbased.core.errors import CheckpointError, ConfigError, DataError, TrainingDivergedError
from modelbased.data.replay import ReplayBuffer
from modelbased.diagnostics.model_error import Rollouts, kstep_nmse, one_step_report, segments
from modelbased.models.ensemble import EnsembleConfig, EnsembleModel, Prediction
from modelbased.models.ensemble_training import read_transitions, row_keys, split_holdout
from modelbased.models.layers import EnsembleLinear, ensemble_mlp
from modelbased.models.model_env import PROPAGATIONS, ModelEnv
from modelbased.models.normalizer import Normalizer
from modelbased.models.value import ValueFunction

A = np.array([[0.9, 0.1, 0.0], [0.0, 0.8, 0.2], [0.1, 0.0, 0.7]])
B = np.array([[0.5], [0.0], [-0.3]])
SIGMA = 0.05  # noise std of next_obs and reward
SMALL = dict(ensemble_size=5, elites=3, hidden=64, layers=2, weight_decay=(2.5e-5, 5e-5, 1e-4))


def linear_system(n: int, seed: int) -> dict[str, np.ndarray]:
    """s' = A s + B a + noise, r = s_0 - a / 2 + noise; 3-dim obs, 1-dim action."""
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(n, 3))
    a = rng.uniform(-1, 1, size=(n, 1))
    s2 = s @ A.T + a @ B.T + SIGMA * rng.normal(size=(n, 3))
    r = s[:, 0] - 0.5 * a[:, 0] + SIGMA * rng.normal(size=n)
    return {
        "obs": s.astype(np.float32),
        "action": a.astype(np.float32),
        "reward": r.astype(np.float32),
        "next_obs": s2.astype(np.float32),
        "terminated": np.zeros(n, dtype=bool),
        "truncated": np.zeros(n, dtype=bool),
    }


def fresh_rows(n: int = 2000) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    d = linear_system(n, seed=99)
    true_next = torch.as_tensor(d["obs"] @ A.T + d["action"] @ B.T, dtype=torch.float32)
    return torch.as_tensor(d["obs"]), torch.as_tensor(d["action"]), true_next


def fitted(config: EnsembleConfig, seed: int = 0, n: int = 3000):
    model = EnsembleModel(3, 1, config, seed=seed)
    history: list[list[float]] = []
    report = model.fit(
        linear_system(n, seed=1),
        rng=np.random.default_rng(seed),
        callback=lambda epoch, train, holdout: history.append(holdout),
    )
    return model, report, history


@pytest.fixture(scope="module")
def probabilistic():
    torch.set_num_threads(1)
    return fitted(EnsembleConfig(**SMALL, patience=20))


@pytest.fixture(scope="module")
def default_patience():
    torch.set_num_threads(1)
    return fitted(EnsembleConfig(**SMALL))


# ---------------------------------------------------------------------------- layers
def test_ensemble_linear_equals_per_member_linear():
    torch.manual_seed(0)
    layer = EnsembleLinear(4, 5, 3)
    x = torch.randn(4, 10, 5)
    out = layer(x)
    assert out.shape == (4, 10, 3)
    for e in range(4):
        ref = F.linear(x[e], layer.weight[e].T, layer.bias[e, 0])
        torch.testing.assert_close(out[e], ref)
    shared = torch.randn(10, 5)  # [B, in] goes to every member
    out2 = layer(shared)
    assert out2.shape == (4, 10, 3)
    for e in range(4):
        torch.testing.assert_close(out2[e], F.linear(shared, layer.weight[e].T, layer.bias[e, 0]))


def test_ensemble_linear_init_is_per_member():
    torch.manual_seed(0)
    uniform = EnsembleLinear(3, 100, 50, init="linear")
    bound = 1 / np.sqrt(100)
    assert uniform.weight.abs().max() <= bound and uniform.bias.abs().max() <= bound
    assert not torch.equal(uniform.weight[0], uniform.weight[1])
    normal = EnsembleLinear(3, 100, 50, init="truncated_normal")
    assert normal.weight.abs().max() <= 2 * 0.5 * bound + 1e-6
    assert torch.count_nonzero(normal.bias) == 0


def test_ensemble_mlp_chunked_inference_matches_autograd_path():
    torch.manual_seed(0)
    net = ensemble_mlp(4, 6, hidden=512, layers=2, ensemble_size=2)  # chunks of 1024 rows
    x = torch.randn(2, 3000, 4)
    with_grad = net(x)
    with torch.inference_mode():
        chunked = net(x)
        shared = net(x[0])
    assert with_grad.shape == chunked.shape == (2, 3000, 6)
    torch.testing.assert_close(chunked, with_grad.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(shared[0], chunked[0], rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------- normalizer
def test_normalizer_fit_and_round_trip():
    torch.manual_seed(0)
    x = torch.randn(500, 3) * torch.tensor([10.0, 0.1, 1.0]) + torch.tensor([5.0, -2.0, 0.0])
    norm = Normalizer(3)
    norm.fit(x)
    torch.testing.assert_close(norm.mean, x.mean(0))
    torch.testing.assert_close(norm.std, x.std(0, correction=0))
    z = norm.normalize(x)
    torch.testing.assert_close(z.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(0, correction=0), torch.ones(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(norm.denormalize(z), x, atol=1e-5, rtol=1e-6)
    assert set(norm.state_dict()) == {"mean", "std"}


def test_normalizer_constant_feature_is_only_centred():
    x = torch.stack([torch.randn(100), torch.full((100,), 3.0)], dim=1)
    norm = Normalizer(2)
    norm.fit(x)
    assert norm.std[1] == 1.0 and norm.mean[1] == 3.0
    assert torch.isfinite(norm.normalize(x + 1.0)).all()


# ---------------------------------------------------------------------------- learning
def test_nll_decreases_and_linear_system_is_recovered(probabilistic):
    model, report, _ = probabilistic
    assert report.train_loss[-1] < report.train_loss[0] - 2.0
    obs, action, true_next = fresh_rows()
    with torch.no_grad():
        u = model.uncertainty(obs, action)
    noisy_next = torch.as_tensor(linear_system(2000, seed=99)["next_obs"])
    mse = (u["mean"][:, :3] - noisy_next).square().mean().item()
    assert mse < 2 * SIGMA**2
    assert (u["mean"][:, :3] - true_next).square().mean().item() < 0.2 * SIGMA**2
    aleatoric = u["aleatoric"][:, :3].mean(0)
    assert ((aleatoric > SIGMA**2 / 2) & (aleatoric < 2 * SIGMA**2)).all(), aleatoric


def test_forward_shapes_and_per_member_inputs(probabilistic):
    model, _, _ = probabilistic
    obs, action, _ = fresh_rows(8)
    with torch.no_grad():
        mean, logvar = model(obs, action)
        assert mean.shape == logvar.shape == (5, 8, 4)  # 3 obs deltas + reward
        per_member = obs.expand(5, 8, 3) + torch.arange(5.0).view(5, 1, 1)
        mean3, _ = model(per_member, action)
        for e in range(5):
            torch.testing.assert_close(mean3[e], model(per_member[e], action)[0][e])
        pred = model.predict(per_member, action)
    assert isinstance(pred, Prediction)
    assert pred.next_obs_mean.shape == pred.next_obs_var.shape == (5, 8, 3)
    assert pred.reward_mean.shape == pred.reward_var.shape == (5, 8)
    assert pred.termination_logit is None


def test_logvar_bounded_far_out_of_distribution(probabilistic):
    model, _, _ = probabilistic
    obs, action, _ = fresh_rows(256)
    with torch.no_grad():
        _, logvar = model(100 * obs, 100 * action)
    lo, hi = model.min_logvar.detach(), model.max_logvar.detach()
    slack = 1e-3  # the soft bounds overshoot by at most log1p(exp(min - max))
    assert torch.isfinite(logvar).all()
    assert (logvar >= lo - slack).all() and (logvar <= hi + slack).all()


def test_absolute_dims_recover_the_system():
    config = EnsembleConfig(**SMALL, patience=20, absolute_dims=(0, 2))
    model, report, _ = fitted(config)
    obs, action, true_next = fresh_rows()
    with torch.no_grad():
        u = model.uncertainty(obs, action)
    noisy_next = torch.as_tensor(linear_system(2000, seed=99)["next_obs"])
    assert (u["mean"][:, :3] - noisy_next).square().mean().item() < 2 * SIGMA**2
    # absolute dims are normalized with the statistics of next_obs, the others of the delta
    d = linear_system(3000, seed=1)
    assert abs(model.target_normalizer.std[0] - d["next_obs"][:, 0].std()) < 0.1
    assert model.target_normalizer.std[1] < 0.7 * d["next_obs"][:, 1].std()


def test_deterministic_model_trains_with_mse():
    model, report, _ = fitted(EnsembleConfig(**SMALL, probabilistic=False))
    assert model.max_logvar is None and min(report.train_loss) >= 0
    assert report.train_loss[-1] < 0.1 * report.train_loss[0]
    obs, action, true_next = fresh_rows()
    with torch.no_grad():
        pred = model.predict(obs, action)
        _, logvar = model(obs, action)
        next_obs, reward, _ = model.sample(obs, action, generator=torch.Generator().manual_seed(0))
    assert torch.count_nonzero(pred.next_obs_var) == 0 and torch.count_nonzero(pred.reward_var) == 0
    assert torch.count_nonzero(logvar) == 0
    assert torch.equal(next_obs, pred.next_obs_mean) and torch.equal(reward, pred.reward_mean)
    assert (pred.next_obs_mean.mean(0) - true_next).square().mean().item() < 0.2 * SIGMA**2


# ---------------------------------------------------------------------------- early stopping
def test_early_stopping_restores_best_weights_per_member(default_patience):
    model, report, history = default_patience
    assert report.stopped_early and report.epochs < model.config.max_epochs
    assert report.epochs == len(history) == len(report.train_loss) == len(report.holdout_loss)
    best = np.min(np.array(history), axis=0)
    np.testing.assert_allclose(report.holdout_mse, best, rtol=1e-6)
    # MBPO's rule replayed on the recorded losses: an epoch is progress if some member beats
    # its last progress value by >= 1%; training stops after `patience` epochs without
    anchor, since, stop = np.full(5, np.inf), 0, None
    for epoch, losses in enumerate(history, start=1):
        progress = np.array(losses) <= 0.99 * anchor
        anchor = np.where(progress, losses, anchor)
        since = 0 if progress.any() else since + 1
        if since >= model.config.patience:
            stop = epoch
            break
    assert stop == report.epochs


def test_elites_are_best_members_sorted(default_patience):
    model, report, _ = default_patience
    order = np.argsort(report.holdout_mse)[: model.config.elites]
    assert report.elites == order.tolist() == model.elites.tolist()
    assert model.elites.dtype == torch.long


def test_callback_can_stop_training():
    model = EnsembleModel(3, 1, EnsembleConfig(**SMALL), seed=0)
    report = model.fit(linear_system(500, seed=1), callback=lambda epoch, *_: epoch >= 3)
    assert report.epochs == 3 and report.stopped_early


# ---------------------------------------------------------------------------- uncertainty
def test_uncertainty_decomposition_by_hand(probabilistic):
    model, _, _ = probabilistic
    obs, action, _ = fresh_rows(64)
    with torch.no_grad():
        pred = model.predict(obs, action)
        means = torch.cat([pred.next_obs_mean, pred.reward_mean[..., None]], -1).double()
        variances = torch.cat([pred.next_obs_var, pred.reward_var[..., None]], -1).double()
        for members, idx in (("elites", model.elites), ("all", torch.arange(5))):
            u = model.uncertainty(obs, action, members=members)
            m, v = means[idx], variances[idx]
            k = len(idx)
            mixture_mean = m.sum(0) / k
            spread = ((m - mixture_mean) ** 2).sum(0) / k
            torch.testing.assert_close(u["mean"].double(), mixture_mean, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(u["aleatoric"].double(), v.sum(0) / k, rtol=1e-5, atol=1e-9)
            torch.testing.assert_close(u["epistemic"].double(), spread, rtol=1e-4, atol=1e-9)
            assert u["epistemic"].shape == (64, 4)
    with pytest.raises(ValueError, match="members"):
        model.uncertainty(obs, action, members="best")


def test_sample_noise_and_reproducibility(probabilistic):
    model, _, _ = probabilistic
    obs, action, _ = fresh_rows(4000)
    with torch.no_grad():
        pred = model.predict(obs, action)
        a = model.sample(obs, action, generator=torch.Generator().manual_seed(3))
        b = model.sample(obs, action, generator=torch.Generator().manual_seed(3))
        mean_only = model.sample(obs, action, deterministic=True)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    next_obs, reward, terminated = a
    assert next_obs.shape == (5, 4000, 3) and reward.shape == (5, 4000)
    assert terminated.dtype == torch.bool and not terminated.any()
    z = (next_obs - pred.next_obs_mean) / pred.next_obs_var.sqrt()
    assert abs(z.mean().item()) < 0.05 and abs(z.var().item() - 1) < 0.05
    torch.testing.assert_close(mean_only[0], pred.next_obs_mean)


# ---------------------------------------------------------------------------- files
def test_save_load_round_trip(probabilistic, tmp_path):
    model, _, _ = probabilistic
    path = tmp_path / "model.pt"
    model.save(path)
    raw = torch.load(path, weights_only=True)
    assert raw["obs_dim"] == 3 and "input_normalizer.mean" in raw["state_dict"]
    loaded = EnsembleModel.load(path)
    assert loaded.config == model.config and torch.equal(loaded.elites, model.elites)
    obs, action, _ = fresh_rows(32)
    with torch.no_grad():
        p1, p2 = model.predict(obs, action), loaded.predict(obs, action)
    for name in ("next_obs_mean", "next_obs_var", "reward_mean", "reward_var"):
        assert torch.equal(getattr(p1, name), getattr(p2, name)), name


def test_corrupt_checkpoint_raises(probabilistic, tmp_path):
    model, _, _ = probabilistic
    path = tmp_path / "model.pt"
    model.save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupt"):
        EnsembleModel.load(path)
    torch.save({"something": "else"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError):
        EnsembleModel.load(tmp_path / "other.pt")
    with pytest.raises(CheckpointError):
        EnsembleModel.load(tmp_path / "missing.pt")


# ---------------------------------------------------------------------------- bad data
@pytest.fixture(scope="module")
def tiny_trained():
    torch.set_num_threads(1)
    model = EnsembleModel(3, 1, EnsembleConfig(**SMALL), seed=0)
    model.fit(linear_system(300, seed=1), max_epochs=2)
    return model


@pytest.mark.parametrize("field", ["obs", "action", "reward", "next_obs"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_data_raises_and_keeps_weights(tiny_trained, field, bad):
    model = tiny_trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = linear_system(1000, seed=2)
    data[field][[3, 17]] = bad
    kind = "NaN" if np.isnan(bad) else "inf"
    with pytest.raises(DataError, match=f"{field} contains {kind} at 2 of 1000 rows"):
        model.fit(data)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_diverging_training_restores_weights():
    model = EnsembleModel(3, 1, EnsembleConfig(**{**SMALL, "ensemble_size": 3}, lr=1e8), seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(TrainingDivergedError, match="restored"):
        model.fit(linear_system(500, seed=1), max_epochs=5)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_misshapen_data_names_the_field(tiny_trained):
    data = linear_system(100, seed=2)
    data["next_obs"] = data["next_obs"][:, :2]
    with pytest.raises(DataError, match="next_obs"):
        tiny_trained.fit(data)
    with pytest.raises(DataError, match="reward"):
        tiny_trained.fit({k: v for k, v in linear_system(100, seed=2).items() if k != "reward"})


def test_fit_accepts_buffer_like_and_batch_objects():
    data = linear_system(400, seed=1)
    batch = SimpleNamespace(**data)
    buffer = SimpleNamespace(all=lambda: batch, __len__=lambda: 400)
    a = EnsembleModel(3, 1, EnsembleConfig(**SMALL), seed=0)
    b = EnsembleModel(3, 1, EnsembleConfig(**SMALL), seed=0)
    ra = a.fit(buffer, rng=np.random.default_rng(0), max_epochs=3)
    rb = b.fit(batch, rng=np.random.default_rng(0), max_epochs=3)
    assert ra.train_loss == rb.train_loss
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))


# ---------------------------------------------------------------------------- termination, actions
def test_learned_termination_classifies_held_out_rows():
    config = EnsembleConfig(**SMALL, learn_termination=True, max_epochs=40)
    data = linear_system(3000, seed=1)
    data["terminated"] = data["obs"][:, 0] > 0.5
    model = EnsembleModel(3, 1, config, seed=0)
    model.fit(data, rng=np.random.default_rng(0))
    test = linear_system(2000, seed=99)
    truth = torch.as_tensor(test["obs"][:, 0] > 0.5)
    with torch.no_grad():
        _, _, terminated = model.sample(test["obs"], test["action"])
        logit = model.predict(test["obs"], test["action"]).termination_logit
    assert logit.shape == (5, 2000)
    accuracy = (terminated[model.elites] == truth).float().mean().item()
    assert accuracy >= 0.95, accuracy


def test_integer_actions_are_one_hot():
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(600, 2)).astype(np.float32)
    action = rng.integers(0, 3, size=600)
    next_obs = obs + np.eye(3, 2, dtype=np.float32)[action]
    data = {"obs": obs, "action": action, "reward": np.zeros(600), "next_obs": next_obs}
    model = EnsembleModel(2, 3, EnsembleConfig(**SMALL), seed=0)
    model.fit(data, max_epochs=2)
    with torch.no_grad():
        by_index = model.predict(obs[:5], torch.as_tensor(action[:5]))
        by_one_hot = model.predict(obs[:5], torch.eye(3)[action[:5]])
    assert torch.equal(by_index.next_obs_mean, by_one_hot.next_obs_mean)


# ---------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"elites": 9}, "elites"),
        ({"weight_decay": (1e-4, 1e-4)}, "weight_decay"),
        ({"activation": "sigmoidish"}, "activation"),
        ({"holdout_fraction": 1.0}, "holdout_fraction"),
        ({"ensemble_size": 2.5}, "ensemble_size"),
        ({"min_logvar": 1.0}, "min_logvar"),
    ],
)
def test_config_errors_name_the_key(changes, key):
    with pytest.raises(ConfigError, match=key):
        EnsembleConfig(**changes)


def test_config_round_trip_and_model_checks():
    config = EnsembleConfig(layers=2, weight_decay=1e-4, absolute_dims=[1])
    assert config.weight_decay == (1e-4,) and config.layer_weight_decay == (1e-4,) * 3
    assert EnsembleConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="hiden=3 is not a config key"):
        EnsembleConfig.from_dict({"hiden": 3})
    with pytest.raises(ConfigError, match="absolute_dims"):
        EnsembleModel(1, 1, config)


def test_an_epoch_on_tiny_data_is_at_least_min_epoch_updates():
    """On 100 rows (about 80 for training, batch 256) an epoch is 20 updates (21 when the
    passes do not divide evenly into batches), not one."""
    config = EnsembleConfig(**SMALL, max_epochs=3, patience=10)
    model = EnsembleModel(3, 1, config, seed=0)
    report = model.fit(linear_system(100, seed=1))
    (steps,) = {float(s["step"]) for s in model.optimizer.state.values()}
    per_epoch = config.min_epoch_updates
    assert report.epochs == 3 and 3 * per_epoch <= steps <= 3 * (per_epoch + 1)
    big = EnsembleModel(3, 1, EnsembleConfig(**SMALL, max_epochs=1, batch_size=32), seed=0)
    data = linear_system(2000, seed=1)
    big.fit(data)  # about 1600 training rows: one pass, about 50 updates
    train, _ = split_holdout(row_keys(read_transitions(big, data)), 0.2)
    updates = float(math.ceil(len(train) / 32))
    assert 1500 < len(train) < 1700
    assert {float(s["step"]) for s in big.optimizer.state.values()} == {updates}


# ---------------------------------------------------------------------------- trainer contract
FIT_CASES = {
    "probabilistic": {},
    "deterministic_termination": {"probabilistic": False, "learn_termination": True},
    "no_bootstrap_no_reward": {"bootstrap": False, "learn_reward": False, "calibrate": False},
}


def fit_twice(config: EnsembleConfig, fit=None) -> tuple[list, list]:
    """Fit, then refit on other rows (the optimizer carried over); states and reports."""
    model = EnsembleModel(3, 1, config, seed=0)
    fit = fit or (lambda m, data, **kw: m.fit(data, **kw))
    data = linear_system(400, seed=1)
    data["terminated"] = data["obs"][:, 0] > 0.8
    states, reports = [], []
    for rows, seed in ((data, 0), ({k: v[:300] for k, v in data.items()}, 1)):
        report = fit(model, rows, rng=np.random.default_rng(seed), max_epochs=4)
        states.append({k: v.clone() for k, v in model.state_dict().items()})
        reports.append({k: v for k, v in vars(report).items() if k != "seconds"})
    return states, reports


@pytest.mark.parametrize("case", list(FIT_CASES))
def test_fit_with_the_same_seed_is_bit_for_bit_identical(case):
    config = EnsembleConfig(**SMALL, **FIT_CASES[case])
    (states_a, reports_a), (states_b, reports_b) = fit_twice(config), fit_twice(config)
    assert reports_a == reports_b
    for a, b in zip(states_a, states_b, strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)


class PublicOnly:
    """The model with every underscore attribute hidden: what the trainer may touch."""

    def __init__(self, model: EnsembleModel) -> None:
        object.__setattr__(self, "model", model)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(f"the trainer reached for {name}")
        return getattr(self.model, name)

    def __setattr__(self, name: str, value) -> None:
        if name.startswith("_"):
            raise AttributeError(f"the trainer set {name}")
        setattr(self.model, name, value)


def test_the_trainer_uses_only_the_public_model_interface():
    from modelbased.models import ensemble_training

    config = EnsembleConfig(**SMALL, learn_termination=True)
    via_proxy = fit_twice(
        config, lambda m, d, **kw: ensemble_training.fit_ensemble(PublicOnly(m), d, **kw)
    )
    assert via_proxy[1] == fit_twice(config)[1]
    source = Path(ensemble_training.__file__).read_text()
    assert "models.ensemble import" not in source  # the dependency goes one way


def test_float64_model_fits_predicts_and_rolls_out_in_float64():
    model = EnsembleModel(3, 1, EnsembleConfig(**SMALL, learn_termination=True), seed=0).double()
    report = model.fit(linear_system(300, seed=1), max_epochs=2)  # float32 data
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert model.log_var_scale.dtype == torch.float64 and len(report.elites) == 3
    obs, action, _ = fresh_rows(8)  # float32 inputs are cast to the model's dtype
    with torch.no_grad():
        pred = model.predict(obs, action)
        next_obs, reward, _ = model.sample(obs, action)
    assert pred.next_obs_mean.dtype == pred.reward_var.dtype == next_obs.dtype == torch.float64
    for propagation in PROPAGATIONS:
        env = ModelEnv(model, propagation=propagation, generator=torch.Generator().manual_seed(0))
        out = env.rollout_actions(obs, action.view(8, 1, 1).expand(8, 3, 1), 2)
        returns = env.evaluate_action_sequences(obs, torch.zeros(8, 2, 3, 1), 2)
        assert out["obs"][1:].dtype == out["reward"].dtype == returns.dtype == torch.float64


TENSOR_FACTORIES = (
    torch.zeros,
    torch.ones,
    torch.full,
    torch.empty,
    torch.arange,
    torch.eye,
    torch.linspace,
    torch.rand,
    torch.randn,
    torch.randint,
    torch.randperm,
    torch.tensor,
    torch.as_tensor,
)


class FactoryAudit(TorchFunctionMode):
    """Records tensor factories called from the package's own code without a ``device=``."""

    def __init__(self) -> None:
        super().__init__()
        self.calls, self.without_device = 0, []
        self.package = str(Path(modelbased.__file__).parent)
        self.torch = str(Path(torch.__file__).parent)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in TENSOR_FACTORIES:
            frame = sys._getframe(1)
            while frame is not None and frame.f_code.co_filename.startswith(self.torch):
                frame = frame.f_back
            if frame is not None and frame.f_code.co_filename.startswith(self.package):
                self.calls += 1
                if kwargs.get("device") is None:
                    where = Path(frame.f_code.co_filename).relative_to(self.package)
                    self.without_device.append(f"{where}:{frame.f_lineno} {func.__name__}")
        return func(*args, **kwargs)


def test_tensors_made_in_fit_rollouts_and_diagnostics_name_their_device():
    """With no accelerator here, device-cleanliness is checked at the source: every tensor the
    package makes on these paths (after the modules are built) is made on a named device."""
    data = linear_system(300, seed=1)
    data["terminated"] = data["obs"][:, 0] > 1.0
    buffer = ReplayBuffer(300, (3,), (1,))
    buffer.add_batch(**data)
    config = EnsembleConfig(**SMALL, learn_termination=True, max_epochs=2)
    model = EnsembleModel(3, 1, config, seed=0)
    value = ValueFunction(3, hidden=16)
    obs = torch.as_tensor(data["obs"][:4])
    with FactoryAudit() as audit:
        model.fit(buffer)
        model.fit(buffer, max_epochs=1)
        for propagation, elites_only in itertools.product(PROPAGATIONS, (False, True)):
            gen = torch.Generator().manual_seed(0)
            env = ModelEnv(model, propagation=propagation, generator=gen, elites_only=elites_only)
            sequences = torch.zeros(4, 3, 2, 1)
            env.evaluate_action_sequences(obs, sequences, 3, 0.9, lambda s: s[:, 0], 0.1)
            env.rollout_policy(obs, lambda s: s[:, :1], 2)
            env.members()
            unseeded = ModelEnv(model, propagation=propagation)
            unseeded.rollout_actions(obs, torch.zeros(4, 2, 1), 2)
        one_step_report(model, buffer.all())
        rollouts = Rollouts(buffer, np.zeros(300, dtype=np.int64))
        seg_obs, seg_actions = segments(rollouts, 5, 10, np.random.default_rng(0))
        kstep_nmse(model, seg_obs, seg_actions, "tsinf")
        value.fit(buffer, 3, np.random.default_rng(0))
    assert audit.calls > 100
    assert audit.without_device == []
