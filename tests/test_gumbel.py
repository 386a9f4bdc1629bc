"""Gumbel MuZero's root selection (Danihelka et al. 2022): the sequential-halving schedule, a
hand-made bandit whose best arm is found and whose improved policy is computed by hand, v_mix
for unvisited arms, the config's checks, and small budgets on a game position."""

import numpy as np
import pytest

from modelbased.core.errors import ConfigError
from modelbased.envs.games import TicTacToe
from modelbased.planning.game_model import GameModel
from modelbased.planning.mcts import MCTS, MCTSConfig, RecurrentOutput, RootOutput
from modelbased.planning.mcts_kernels import considered_visits


def test_sequential_halving_schedule_by_hand():
    # 4 arms, 8 simulations: log2(4) = 2 phases; 4 arms x 1 visit, then 2 arms x 2 visits
    assert considered_visits(4, 8)[4].tolist() == [0, 0, 0, 0, 1, 1, 2, 2]
    # 1 arm: every simulation visits it again
    assert considered_visits(4, 5)[1].tolist() == [0, 1, 2, 3, 4]
    # 2 arms, 6 simulations: one phase of 3 visits each
    assert considered_visits(2, 6)[2].tolist() == [0, 0, 1, 1, 2, 2]
    # fewer simulations than arms: the first n arms are tried once
    assert considered_visits(16, 4)[16].tolist() == [0, 0, 0, 0]


class Bandit:
    """One decision: arm ``a`` pays ``rewards[a]`` and ends the episode; the prior and the
    root's value are fixed."""

    def __init__(self, rewards, prior, root_value=0.0):
        self.rewards = np.asarray(rewards, np.float64)
        self.prior = np.asarray(prior, np.float64)
        self.num_actions = len(rewards)
        self.root_value = root_value

    def root_fn(self, obs):
        n = len(obs)
        prior = np.tile(self.prior, (n, 1))
        legal = np.ones((n, self.num_actions), bool)
        return RootOutput(obs, prior, np.full(n, self.root_value), legal)

    def recurrent_fn(self, states, actions):
        n = len(states)
        return RecurrentOutput(
            states + 1,
            self.rewards[actions],
            np.ones(n, bool),
            np.tile(self.prior, (n, 1)),
            np.zeros(n),
            np.ones((n, self.num_actions), bool),
        )


ONE_PLAYER = {"two_player": False, "value_bounds": None, "root": "gumbel"}


REWARDS = [0.1, 0.5, 0.9, 0.3, 0.2, 0.7, 0.0, 0.4]


def bandit_decision(roots, temperature, sims=32):
    config = MCTSConfig(num_simulations=sims, max_considered_actions=8, **ONE_PLAYER)
    search = MCTS(Bandit(REWARDS, np.full(8, 1 / 8)), config)
    return search.decide(np.zeros(roots, np.int64), np.random.default_rng(0), temperature)


def test_without_noise_sequential_halving_picks_the_best_arm():
    for sims in (8, 16, 32):
        assert (bandit_decision(3, 0.0, sims).actions == 2).all()


def test_improved_policy_is_the_hand_computed_one():
    out = bandit_decision(3, 1.0)
    visits = out.tree.root_visits()
    assert (visits > 0).all()  # 8 arms considered, each visited
    # every arm visited: completed Q = Q = the reward; sigma = (50 + max N) * 0.1 * rescaled Q
    q = np.asarray(REWARDS)
    for b in range(3):
        sigma = (50 + visits[b].max()) * 0.1 * (q - q.min()) / (q.max() - q.min())
        logits = np.log(1 / 8) + sigma
        expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        np.testing.assert_allclose(out.target[b], expected, rtol=1e-5)


def test_with_noise_actions_follow_the_improved_policy():
    # Gumbel-max: the noisy winner of sequential halving is a sample of the improved policy
    out = bandit_decision(2000, 1.0)
    freq = np.bincount(out.actions, minlength=8) / 2000
    np.testing.assert_allclose(freq, out.target[0], atol=0.03)
    assert np.argmax(freq) == 2


def test_unvisited_arms_take_the_mixed_value():
    # 4 arms, 2 simulations, 2 considered: two arms stay unvisited and take v_mix
    rewards, prior = [1.0, -1.0, 0.5, 0.0], np.array([0.4, 0.3, 0.2, 0.1])
    config = MCTSConfig(num_simulations=2, max_considered_actions=2, gumbel_scale=0.0, **ONE_PLAYER)
    out = MCTS(Bandit(rewards, prior, root_value=0.25), config).decide(
        np.zeros(1, np.int64), np.random.default_rng(0), temperature=0.0
    )
    visits = out.tree.root_visits()[0]
    assert visits.tolist() == [1, 1, 0, 0]  # no noise: the two largest priors
    # v_mix = (v + sum N * sum_visited(p q) / sum_visited(p)) / (1 + sum N)
    v_mix = (0.25 + 2 * (0.4 * 1.0 + 0.3 * -1.0) / 0.7) / 3
    completed = np.array([1.0, -1.0, v_mix, v_mix])
    sigma = (50 + 1) * 0.1 * (completed - completed.min()) / (completed.max() - completed.min())
    logits = np.log(prior) + sigma
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(out.target[0], expected, rtol=1e-5)
    assert out.actions[0] == 0


def test_small_budgets_find_the_winning_move():
    g = TicTacToe()
    # X to move wins at once with cell 2; O threatens 5
    board = np.array([[1, 1, 0], [-1, -1, 0], [0, 0, 0]], np.int8)[None]
    for sims in (2, 4, 8):
        config = MCTSConfig(num_simulations=sims, root="gumbel")
        model = GameModel(g, rng=np.random.default_rng(0))
        wins = [
            MCTS(model, config).decide(board, np.random.default_rng(s), 0.0).actions[0] == 2
            for s in range(10)
        ]
        assert sum(wins) >= 9, (sims, wins)


def test_gumbel_refuses_dirichlet_noise_and_bad_values():
    with pytest.raises(ConfigError, match="dirichlet_fraction"):
        MCTSConfig(root="gumbel", dirichlet_fraction=0.25)
    with pytest.raises(ConfigError, match="max_considered_actions"):
        MCTSConfig(root="gumbel", max_considered_actions=0)
    with pytest.raises(ConfigError, match="root"):
        MCTSConfig.from_dict({"root": "sampled"})


def test_alphazero_self_plays_with_gumbel_roots():
    import modelbased as mb

    search = {"root": "gumbel", "num_simulations": 4, "dirichlet_fraction": 0.0}
    agent = mb.AlphaZero(
        "modelbased/TicTacToe-v0", seed=0, parallel_games=8, search=search, eval_simulations=4
    )
    states, pis, _, _, lengths = agent.self_play(agent.net)
    g = agent.game
    assert len(states) == lengths.sum()
    # improved-policy targets: distributions over the legal moves, not visit counts of 4
    assert np.allclose(pis.sum(axis=1), 1) and (pis[~g.legal(states)] == 0).all()
    assert (pis[g.legal(states)] > 0).all()
    assert agent.act(g.initial(1)[0], deterministic=True) in range(9)
