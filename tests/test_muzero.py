"""MuZero: value transform and supports, unroll targets and masking, the learned-model search
against AlphaZero's on the true rules, resume, two-player self-play, a small learning run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import modelbased as mb
from modelbased.core.callbacks import Callback
from modelbased.core.errors import ConfigError, UnsupportedSpaceError
from modelbased.data.trajectory_replay import TrajectoryReplay
from modelbased.envs.games import TicTacToe
from modelbased.models.muzero_net import (
    Inference,
    MuZeroNet,
    MuZeroNetConfig,
    UnrollBatch,
    muzero_loss,
    scale_gradient,
)
from modelbased.models.support import (
    inverse_value_transform,
    support_to_scalar,
    two_hot,
    value_transform,
)
from modelbased.planning.game_model import GameModel
from modelbased.planning.latent_model import LatentModel
from modelbased.planning.mcts import MCTS, MCTSConfig

TINY = {
    "num_envs": 2,
    "search": {"num_simulations": 4},
    "eval_simulations": 4,
    "learning_starts": 20,
    "batch_size": 8,
    "net": {"hidden": 16, "state_dim": 8, "support_size": 5},
    "eval_episodes": 0,
}


# -- value transform and supports ---------------------------------------------------------------
def test_value_transform_and_its_inverse():
    x = torch.tensor(
        [-1e4, -300.0, -3.0, -0.5, 0.0, 0.25, 1.0, 3.0, 42.0, 500.0, 1e4], dtype=torch.float64
    )
    h = value_transform(x)
    assert torch.allclose(inverse_value_transform(h), x, rtol=1e-9, atol=1e-9)
    # h(3) = sqrt(4) - 1 + 0.003; odd and increasing
    assert h[7].item() == pytest.approx(1.003)
    assert torch.allclose(value_transform(-x), -h)
    assert (h[1:] > h[:-1]).all()


def test_two_hot_round_trip():
    x = torch.tensor([-250.0, -7.3, -1.0, 0.0, 0.4, 1.0, 12.5, 300.0])
    probs = two_hot(x, support_size=20)
    assert probs.shape == (8, 41)
    assert torch.allclose(probs.sum(-1), torch.ones(8))
    assert ((probs > 0).sum(-1) <= 2).all() and (probs >= 0).all()
    assert torch.allclose(support_to_scalar(probs), x, rtol=1e-4, atol=1e-4)
    # beyond the support the scalar is clipped to its end: h^-1(S)
    big = support_to_scalar(two_hot(torch.tensor([1e6]), support_size=2))
    assert big.item() == pytest.approx(inverse_value_transform(torch.tensor(2.0)).item(), rel=1e-5)


# -- unroll targets, absorbing states, the loss ------------------------------------------------
def replay_with_one_episode(sign_game: bool = False) -> TrajectoryReplay:
    """Lane 0 holds one finished episode of 4 steps, rewards 1, 2, 3, 4, root values 10..13."""
    replay = TrajectoryReplay(lanes=2, capacity=16, obs_shape=(3,), num_actions=2)
    for t in range(4):
        pi = np.array([[0.25, 0.75]], np.float32)
        obs = np.full((1, 3), t, np.float32)
        replay.add(
            np.array([0]), obs, np.array([t % 2]), np.array([t + 1.0]), pi, np.array([10.0 + t])
        )
    replay.end_episodes(np.array([0]))
    return replay


def test_unroll_targets_n_step_values_and_masking_past_the_end():
    replay = replay_with_one_episode()
    rng = np.random.default_rng(0)
    gamma, n = 0.5, 2
    out = replay.targets(np.array([0]), np.array([1]), 5, n, gamma, 1.0, rng)
    assert out["actions"].shape == (1, 5) and out["target_policy"].shape == (1, 6, 2)
    # positions 1, 2, 3 are inside; 4.. are past the end (absorbing)
    assert out["policy_mask"][0].tolist() == [1, 1, 1, 0, 0, 0]
    assert out["target_reward"][0].tolist() == [2, 3, 4, 0, 0]
    assert out["actions"][0, :3].tolist() == [1, 0, 1]
    assert ((out["actions"] >= 0) & (out["actions"] < 2)).all()
    # z_1 = r1 + g r2 + g^2 v3;  z_2 = r2 + g r3 (v4 is past the end); z_3 = r3; then 0
    expected = [2 + 0.5 * 3 + 0.25 * 13, 3 + 0.5 * 4, 4, 0, 0, 0]
    assert np.allclose(out["target_value"][0], expected)
    assert np.allclose(out["target_policy"][0, :3], [0.25, 0.75])
    assert (out["target_policy"][0, 3:] == 0).all()


def test_two_player_targets_alternate_sides():
    replay = replay_with_one_episode()
    out = replay.targets(np.array([0]), np.array([0]), 1, 2, 1.0, -1.0, np.random.default_rng(0))
    # z_0 = r0 - r1 + v2 ; z_1 = r1 - r2 + v3
    assert np.allclose(out["target_value"][0], [1 - 2 + 12, 2 - 3 + 13])


def test_open_episodes_are_sampled_only_once_their_targets_are_known():
    replay = TrajectoryReplay(lanes=1, capacity=32, obs_shape=(1,), num_actions=2)
    for _ in range(10):
        replay.add(
            np.array([0]),
            np.zeros((1, 1)),
            np.array([0]),
            np.array([1.0]),
            np.full((1, 2), 0.5),
            np.zeros(1),
        )
    assert replay.known(unroll=3, n_step=3).tolist() == [0, 1, 2, 3]  # t + 6 written
    lanes, times, weights = replay.sample(64, 3, 3, 1.0, 1.0, np.random.default_rng(0))
    assert set(times.tolist()) <= {0, 1, 2, 3} and np.allclose(weights, 1.0)
    replay.update_priorities(np.array([0]), np.array([2]), np.array([100.0]))
    _, times, weights = replay.sample(256, 3, 3, 1.0, 1.0, np.random.default_rng(1))
    assert np.mean(times == 2) > 0.9  # priority 100 against three of 1
    assert weights[times == 2].max() < weights[times != 2].min()  # importance weights undo it


@pytest.mark.parametrize("kind,obs_shape", [("mlp", (4,)), ("resnet", (2, 3, 3))])
def test_unroll_shapes_and_the_loss_ignores_the_policy_past_the_end(kind, obs_shape):
    torch.manual_seed(0)
    actions = 9 if kind == "resnet" else 2
    net = MuZeroNet(
        obs_shape, actions, MuZeroNetConfig(kind=kind, channels=8, blocks=1, support_size=5)
    )
    batch_size, k = 6, 3
    out = net.initial_inference(torch.rand(batch_size, *obs_shape))
    assert out.policy_logits.shape == (batch_size, actions) and out.value_logits.shape == (
        batch_size,
        11,
    )
    assert out.state.min() >= 0 and out.state.max() <= 1  # min-max scaled
    step = net.recurrent_inference(out.state, torch.zeros(batch_size, dtype=torch.long))
    assert step.state.shape == out.state.shape and step.reward_logits.shape == (batch_size, 11)
    mask = torch.ones(batch_size, k + 1)
    mask[:, 2:] = 0
    batch = UnrollBatch(
        obs=torch.rand(batch_size, *obs_shape),
        actions=torch.randint(actions, (batch_size, k)),
        target_value=torch.randn(batch_size, k + 1),
        target_reward=torch.randn(batch_size, k),
        target_policy=torch.softmax(torch.randn(batch_size, k + 1, actions), -1),
        policy_mask=mask,
        weight=torch.ones(batch_size),
    )
    net.eval()  # batch norm on running statistics: the two losses see the same function
    loss, root_logits, parts = muzero_loss(net, batch)
    assert root_logits.shape == (batch_size, 11) and math.isfinite(loss.item())
    changed = batch._replace(target_policy=batch.target_policy.clone())
    changed.target_policy[:, 2:] = torch.softmax(torch.randn(batch_size, k - 1, actions), -1)
    assert torch.allclose(muzero_loss(net, changed)[0], loss)
    loss.backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_gradient_into_the_dynamics_is_halved():
    x = torch.ones(3, requires_grad=True)
    y = scale_gradient(x, 0.5)
    y.sum().backward()
    assert torch.equal(y.detach(), torch.ones(3)) and torch.allclose(x.grad, torch.full((3,), 0.5))


# -- the search over a "learned" model that is the game's rules --------------------------------
def predict(boards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A fixed, deterministic evaluator: prior and value from the board."""
    flat = np.asarray(boards, dtype=np.float64).reshape(len(boards), -1)
    weights = np.linspace(-1.0, 1.0, flat.shape[1])
    prior = np.exp(flat @ np.outer(weights, weights) * 0.5)
    prior /= prior.sum(1, keepdims=True)
    return prior.astype(np.float32), np.tanh(flat @ weights).astype(np.float32)


class RulesNet(torch.nn.Module):
    """Tic-tac-toe's rules behind MuZero's network face: the hidden state is the board, the
    dynamics the rules, rewards and values as two-hot logits over a support."""

    def __init__(self, game: TicTacToe, support: int = 1) -> None:
        super().__init__()
        self.game, self.support = game, support

    def _heads(self, boards: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        prior, value = predict(boards)
        value_logits = torch.log(two_hot(torch.as_tensor(value, dtype=torch.float64), self.support))
        return torch.log(torch.as_tensor(prior, dtype=torch.float64)), value_logits

    def initial_inference(self, planes: torch.Tensor) -> Inference:
        boards = (planes[:, 0] - planes[:, 1]).numpy().astype(np.int8)
        return Inference(torch.as_tensor(boards), *self._heads(boards), None)

    def recurrent_inference(self, state: torch.Tensor, action: torch.Tensor) -> Inference:
        nxt, reward, done = self.game.step(state.numpy(), action.numpy())
        reward_logits = torch.log(
            two_hot(torch.as_tensor(reward, dtype=torch.float64), self.support)
        )
        legal = torch.as_tensor(self.game.legal(nxt))
        return Inference(
            torch.as_tensor(nxt), *self._heads(nxt), reward_logits, legal, torch.as_tensor(done)
        )


@pytest.mark.parametrize("bounds", [(-1.0, 1.0), None])
def test_search_over_the_rules_as_learned_model_matches_alphazero(bounds):
    game = TicTacToe()
    boards = np.zeros((4, 3, 3), np.int8)
    boards[1, 0, 0], boards[1, 1, 1] = 1, -1
    boards[2].flat[[0, 1, 4]] = [-1, -1, 1]  # the mover must block
    boards[3].flat[[0, 4, 8, 2]] = [1, 1, -1, -1]
    config = MCTSConfig(num_simulations=200, value_bounds=bounds, dirichlet_fraction=0.25)
    alphazero = MCTS(GameModel(game, predict), config).search(boards, np.random.default_rng(7))
    latent = LatentModel(RulesNet(game), game.num_actions, game.encode, game.legal)
    muzero = MCTS(latent, config).search(boards, np.random.default_rng(7))
    assert np.array_equal(muzero.root_visits(), alphazero.root_visits())
    assert np.allclose(muzero.root_value(), alphazero.root_value(), atol=1e-5)
    assert muzero.root_visits()[2].argmax() == 2  # the block of the line 0-1-2


# -- the agent ----------------------------------------------------------------------------------
def test_bad_env_and_config_are_precise_errors():
    with pytest.raises(UnsupportedSpaceError, match="Discrete action space; Pendulum-v1"):
        mb.MuZero("Pendulum-v1")
    with pytest.raises(ConfigError, match="search.two_player must be true"):
        mb.MuZero("modelbased/TicTacToe-v0", **{"search.two_player": False})
    with pytest.raises(ConfigError, match="reanalyse_fraction"):
        mb.MuZero("CartPole-v1", reanalyse_fraction=1.5)


def test_discrete_observations_are_one_hot():
    agent = mb.MuZero("FrozenLake-v1", seed=0, **TINY | {"search": {"gamma": 0.95}}).learn(60)
    assert agent.encode(np.array([0, 15])).tolist()[1][15] == 1.0
    assert agent.act(0) in range(4)


class StopAfterCheckpoints(Callback):
    """Saves each requested checkpoint; raises (a kill) after the ``n``-th."""

    def __init__(self, path, n: int) -> None:
        self.path, self.n, self.seen = path, n, 0

    def on_checkpoint(self, agent) -> None:
        agent.save(self.path)
        self.seen += 1
        if self.seen == self.n:
            raise KeyboardInterrupt


def test_killed_run_resumes_exactly(tmp_path):
    settings = TINY | {"checkpoint_every": 1, "reanalyse_fraction": 0.5}
    reference = mb.MuZero("CartPole-v1", seed=3, **settings).learn(300)
    path = tmp_path / "ckpt.pt"
    killed = mb.MuZero("CartPole-v1", seed=3, **settings)
    with pytest.raises(KeyboardInterrupt):
        killed.learn(300, callback=StopAfterCheckpoints(path, 3))
    resumed = mb.load(path)
    assert 0 < resumed.loop.env_steps < 300
    resumed.learn(300 - resumed.loop.env_steps)
    assert resumed.loop.env_steps == reference.loop.env_steps
    for a, b in zip(
        resumed.net.state_dict().values(), reference.net.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    assert np.array_equal(resumed.replay.priority, reference.replay.priority)


def test_tictactoe_self_play_two_player_and_arena(tmp_path):
    from modelbased.agents.arena import play_games
    from modelbased.envs.games import RandomPlayer

    agent = mb.MuZero("modelbased/TicTacToe-v0", seed=0, **TINY | {"num_envs": 4}).learn(60)
    assert agent.loop.episodes >= 4 and agent.replay.end.min() < 10**6
    stored = agent.replay.obs[0, :5]
    assert (np.abs(stored).sum(axis=(1, 2)) == np.arange(5)).all()  # canonical boards by move
    game = agent.game
    table = play_games(game, agent.player(), RandomPlayer(game), 4, np.random.default_rng(0))
    assert table["total"]["games"] == 4
    obs, info = agent.eval_env.reset(seed=0)
    assert info["action_mask"][agent.act(obs)]


@pytest.mark.slow
def test_cartpole_learns_well_beyond_random():
    """The preset on a small budget: random play returns 22; seed 0 evaluated 385 at 4k steps
    when the preset was tuned (c3fe1dd) and 140.7 at 4k, 155.9 at 5k after the search's
    ``decide`` changed its random stream (973a933), so the bar is 100."""
    torch.set_num_threads(1)
    agent = mb.MuZero("CartPole-v1", seed=0, eval_episodes=0)
    agent.learn(4_000)
    assert agent.evaluate(episodes=10, seed=1)["return_mean"] >= 100


def test_gumbel_root_gives_improved_policy_targets():
    search = {"root": "gumbel", "num_simulations": 4, "dirichlet_fraction": 0.0}
    agent = mb.MuZero("CartPole-v1", seed=0, **{**TINY, "search": search})
    mcts = MCTS(agent.model, agent.search_config(True))
    obs = np.zeros((3, 4), np.float32)
    actions, pi, value = agent.self_play(mcts, obs, move=0)
    assert actions.shape == (3,) and value.shape == (3,)
    # improved policy softmax(logits + sigma(completed Q)): positive on both actions, though
    # 4 simulations cannot visit them in proportion
    assert np.allclose(pi.sum(axis=1), 1) and (pi > 0).all()
    agent.learn(64)
    assert agent.act(np.zeros(4, np.float32), deterministic=True) in (0, 1)


@pytest.mark.parametrize("env_id", ["Acrobot-v1", "LunarLander-v3"])
def test_other_single_player_tasks_train_and_evaluate(env_id):
    """Rewards of -1 per step (Acrobot) and of +-100 (LunarLander's landings and crashes) go
    through the value transform and the supports: a short run keeps its losses finite and its
    replay targets inside the supports' range, and evaluates."""
    if env_id.startswith("LunarLander"):
        pytest.importorskip("Box2D", reason="LunarLander needs the [box2d] extra")
    torch.set_num_threads(1)
    agent = mb.MuZero(
        env_id,
        seed=0,
        num_envs=2,
        learning_starts=40,
        eval_simulations=2,
        eval_episodes=0,
        **{"search.num_simulations": 2, "net.hidden": 16, "net.state_dim": 8},
    )
    rows: list[dict[str, float]] = []

    class Rows(Callback):
        def on_train(self, state, scalars):
            rows.append(scalars)

    agent.learn(120, callback=Rows())
    assert sum(r.get("updates", 0) for r in rows) > 0
    assert all(math.isfinite(v) for r in rows for v in r.values())
    assert all(torch.isfinite(p).all() for p in agent.net.parameters())
    stats = agent.evaluate(episodes=1)
    assert math.isfinite(stats["return_mean"]) and stats["length_mean"] >= 1
