"""The compiled small-batch MLP path (models/small_mlp.py) against torch: same outputs, the same
search, and it follows in-place updates and copies of the parameters."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from modelbased.envs.games import ConnectFour
from modelbased.models.muzero_net import MuZeroNet, MuZeroNetConfig
from modelbased.models.policy_value import PolicyValueNet, PolicyValueNetConfig
from modelbased.models.small_mlp import SMALL_BATCH, MLPPlan
from modelbased.planning.game_model import GameModel
from modelbased.planning.latent_model import LatentModel
from modelbased.planning.mcts import MCTS, MCTSConfig


def _net(seed: int = 0) -> PolicyValueNet:
    torch.manual_seed(seed)
    return PolicyValueNet(2, (6, 7), 7, PolicyValueNetConfig("mlp", blocks=3, hidden=64)).eval()


def _planes(batch: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((batch, 2, 6, 7)) < 0.3).astype(np.float32)


@pytest.mark.parametrize("batch", [1, 3, SMALL_BATCH])
def test_predict_matches_torch(batch: int) -> None:
    net, x = _net(), _planes(batch)
    prior, value = net.predict(x)
    assert net._plans is not None  # the compiled path ran
    ref_prior, ref_value = net._predict_torch(x)
    assert prior.shape == ref_prior.shape and value.shape == ref_value.shape
    np.testing.assert_allclose(prior, ref_prior, atol=1e-6)
    np.testing.assert_allclose(value, ref_value, atol=1e-6)


def test_plan_follows_parameter_updates_and_copies() -> None:
    net, x = _net(), _planes(1)
    net.predict(x)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    logits, value = net(torch.from_numpy(x))
    (logits.sum() + value.sum()).backward()
    opt.step()  # in place: the plan's views see it
    np.testing.assert_allclose(net.predict(x)[0], net._predict_torch(x)[0], atol=1e-6)
    twin = copy.deepcopy(net)  # new parameter memory: the copied plan is invalid
    with torch.no_grad():
        twin.policy_head.weight.mul_(3.0)
    np.testing.assert_allclose(twin.predict(x)[0], twin._predict_torch(x)[0], atol=1e-6)
    assert not np.allclose(twin.predict(x)[0], net.predict(x)[0], atol=1e-3)
    net.policy_head.weight = nn.Parameter(net.policy_head.weight.detach() * 2)  # replaced
    np.testing.assert_allclose(net.predict(x)[0], net._predict_torch(x)[0], atol=1e-6)


def test_plan_only_for_plain_mlps() -> None:
    assert MLPPlan.of(nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU())) is not None
    assert MLPPlan.of(nn.Sequential(nn.Linear(4, 3), nn.Tanh())) is None
    assert MLPPlan.of(nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))) is None
    assert MLPPlan.of(nn.Linear(4, 3, bias=False)) is None
    assert MLPPlan.of(nn.Conv2d(2, 2, 3)) is None
    assert MLPPlan.of(nn.Linear(4, 3).double()) is None


def test_batch1_search_matches_torch_network() -> None:
    """The same visit counts and root values with the compiled and the torch forward, on fixed
    positions and seeds (both sides of ``mcts_speed.py``'s connect-four MLP task)."""
    net, game = _net(1), ConnectFour()
    boards = game.initial(1)
    for a in (3, 3, 2, 4):
        boards = game.step(boards, np.array([a]))[0]
    for predict in ("fast", "torch"):
        call = net.predict if predict == "fast" else net._predict_torch
        model = GameModel(game, lambda b, call=call: call(game.encode(b)))
        tree = MCTS(model, MCTSConfig(60)).search(boards, np.random.default_rng(7))
        if predict == "fast":
            visits, values = tree.root_visits().copy(), tree.child_q[:, 0].copy()
        else:
            np.testing.assert_array_equal(tree.root_visits(), visits)
            np.testing.assert_allclose(tree.child_q[:, 0], values, atol=1e-5)
    assert visits.sum() == 60


def _muzero(seed: int = 0) -> MuZeroNet:
    torch.manual_seed(seed)
    net = MuZeroNet((4,), 2, MuZeroNetConfig(state_dim=16, hidden=32, support_size=5)).eval()
    with torch.no_grad():  # non-trivial reward and value heads (they start at zero)
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return net


def _torch_only(net: MuZeroNet) -> LatentModel:
    slow = copy.deepcopy(net)
    slow.small_batch_inference = lambda *args: None  # type: ignore[method-assign]
    return LatentModel(slow, 2, lambda o: o.astype(np.float32))


def test_muzero_small_batch_inference_matches_torch() -> None:
    net = _muzero()
    fast, slow = LatentModel(net, 2, lambda o: o.astype(np.float32)), _torch_only(net)
    obs = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    # rtol: torch evaluates h^-1's sqrt(1 + 4 eps (|y| + 1 + eps)) - 1 in float32 (cancellation,
    # ~1e-4 relative on values of a few units), the compiled loop in float64
    a, b = fast.root_fn(obs), slow.root_fn(obs)
    assert net._plans is not None  # the compiled path ran
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-3, atol=1e-5)
    actions = np.array([0, 1, 1])
    a2, b2 = fast.recurrent_fn(a.state, actions), slow.recurrent_fn(b.state, actions)
    for x, y in zip(a2, b2, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-3, atol=1e-5)
    assert np.abs(b2.reward).max() > 0.01  # the reward head is exercised


def test_muzero_batch1_search_matches_torch_network() -> None:
    net = _muzero(1)
    cfg = MCTSConfig(40, two_player=False, value_bounds=None, gamma=0.997)
    obs = np.random.default_rng(1).normal(size=(1, 4)).astype(np.float32)
    trees = []
    for model in (LatentModel(net, 2, lambda o: o.astype(np.float32)), _torch_only(net)):
        trees.append(MCTS(model, cfg).search(obs, np.random.default_rng(3)))
    np.testing.assert_array_equal(trees[0].root_visits(), trees[1].root_visits())
    q0, q1 = trees[0].child_q[:, 0], trees[1].child_q[:, 0]
    np.testing.assert_allclose(q0, q1, rtol=1e-4)  # h^-1 in float32 (torch) vs float64
