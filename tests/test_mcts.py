"""Batched MCTS: a hand-computed tree, the compiled kernels against their Python source, tactics,
legality, batching, tree reuse, temperature."""

import copy

import numpy as np
import pytest

from modelbased.agents.arena import builtin_player, play_games, pure_mcts_player
from modelbased.core.errors import ConfigError
from modelbased.envs.games import ConnectFour, TicTacToe
from modelbased.envs.games.players import tictactoe_action_values
from modelbased.planning import mcts_kernels
from modelbased.planning.game_model import GameModel, random_playout
from modelbased.planning.mcts import MCTS, MCTSConfig, RecurrentOutput, RootOutput, visit_policy


class BinaryTreeModel:
    """States are ints; action a leads from s to 2s + a + 1; fixed prior, table values."""

    num_actions = 2
    values = {0: 0.0, 1: 0.5, 2: 0.9, 3: 0.2, 4: 0.7, 5: 0.1, 6: 0.3}

    def __init__(self):
        self.calls = 0

    def predict(self, states):
        self.calls += 1
        prior = np.tile([0.6, 0.4], (len(states), 1))
        return prior, np.array([self.values[int(s)] for s in states])

    def root_fn(self, states):
        return RootOutput(states, *self.predict(states), np.ones((len(states), 2), bool))

    def recurrent_fn(self, states, actions):
        nxt, n = 2 * states + actions + 1, len(states)
        reward, terminal, legal = np.zeros(n), np.zeros(n, bool), np.ones((n, 2), bool)
        return RecurrentOutput(nxt, reward, terminal, *self.predict(nxt), legal)


# Three PUCT simulations by hand, c(N) = 1 (c_base -> inf), Q in [0, 1] as is, one player:
#  1. root N=1: a0 0 + 0.6*1/1 = 0.6 > a1 0.4          -> expand s1 (v 0.5); root value 0.25
#  2. root N=2: a0 0.5 + 0.6*1.414/2 = 0.924 > a1 0.25 + 0.4*1.414 = 0.816; at s1 (fpu 0.5):
#     a0 0.5 + 0.6 = 1.1 > a1 0.9                      -> expand s3 (v 0.2); Q(root, a0) 0.35
#  3. root N=3: a0 0.35 + 0.6*1.732/3 = 0.696 < a1 0.2333 + 0.4*1.732 = 0.926 -> expand s2 (0.9)
HAND_TREE = {
    "states": [0, 1, 3, 2],
    "children": [[1, 3], [2, -1], [-1, -1], [-1, -1]],
    "child_visits": [[2, 1], [1, 0], [0, 0], [0, 0]],
    "child_q": [[0.35, 0.9], [0.2, 0.0], [0.0, 0.0], [0.0, 0.0]],
    "node_visits": [4, 2, 1, 1],
    "node_value": [0.4, 0.35, 0.2, 0.9],
}


def test_tiny_tree_matches_the_hand_computed_one():
    model = BinaryTreeModel()
    config = MCTSConfig(
        num_simulations=3, c_puct=1.0, c_base=1e12, two_player=False, value_bounds=(0.0, 1.0)
    )
    tree = MCTS(model, config).search(np.array([0]), np.random.default_rng(0))
    assert tree.num_nodes[0] == 4
    for name, expected in HAND_TREE.items():
        got = getattr(tree, name)[0, :4]
        np.testing.assert_allclose(got, np.array(expected), atol=1e-5, err_msg=name)
    assert model.calls == 4  # the root, then one batched call per simulation


class RewardChain:
    """One player, rewards on every edge, a legal-move mask, episodes that end past state 300."""

    num_actions = 3

    def predict(self, s):
        prior = np.stack([(s * k + 5) % 7 + 1.0 for k in (1, 2, 3)], axis=1)
        legal = np.ones((len(s), 3), bool)
        legal[s % 5 == 4, 2] = False
        return prior, np.sin(s * 0.37), legal

    def root_fn(self, s):
        prior, value, legal = self.predict(s)
        return RootOutput(s, prior, value, legal)

    def recurrent_fn(self, s, a):
        nxt = s * 3 + a + 1
        reward = (nxt * 7919) % 13 / 13.0 - 0.3
        prior, value, legal = self.predict(nxt)
        return RecurrentOutput(nxt, reward, nxt > 300, prior, value, legal)


def linear_predictor(game, seed):
    """A fixed random linear policy-value function of the board (a stand-in network)."""
    r = np.random.default_rng(seed)
    w, v = r.normal(size=(game.cells, game.num_actions)), r.normal(size=game.cells) * 0.3

    def predict(boards):
        x = boards.reshape(len(boards), -1).astype(np.float64)
        p = np.exp(x @ w - (x @ w).max(axis=1, keepdims=True))
        return (p / p.sum(axis=1, keepdims=True)).astype(np.float32), np.tanh(x @ v)

    return predict


def interpret_kernels(patch):
    """Run the search's numba kernels as their own Python source (``py_func``); numba's
    generator then becomes NumPy's global legacy one, the same Mersenne Twister stream."""
    k = mcts_kernels
    kernels = (
        "_descend _take_edge _normalise puct_score uct_score _expand _set_masked_prior _backup"
    )
    gumbel = "_select_gumbel sigma_completed_q log_prior _gumbel_root_action"
    gumbel += " _gumbel_interior_action _gumbel_scores"
    for name in [*kernels.split(), *gumbel.split(), "seed_kernels", "playouts", "all_equal"]:
        patch.setattr(k, name, getattr(k, name).py_func)
    patch.setitem(k._SELECT, "puct", k._select_puct.py_func)
    patch.setitem(k._SELECT, "uct", k._select_uct.py_func)
    patch.setattr("modelbased.planning.mcts.seed_kernels", k.seed_kernels)
    patch.setattr("modelbased.planning.game_model.playouts", k.playouts)


ONE_PLAYER = {"two_player": False, "gamma": 0.9}
SEARCHES = {
    "ttt-uct-playouts": (TicTacToe(), None, MCTSConfig(25, rule="uct")),
    "c4-puct-noise": (ConnectFour(), 7, MCTSConfig(20, dirichlet_fraction=0.25)),
    "c4-puct-min-max": (ConnectFour(), 8, MCTSConfig(20, value_bounds=None)),
    "chain-puct": (None, None, MCTSConfig(30, value_bounds=None, **ONE_PLAYER)),
    "chain-uct": (None, None, MCTSConfig(30, rule="uct", value_bounds=(-2, 2), **ONE_PLAYER)),
    "c4-gumbel": (ConnectFour(), 9, MCTSConfig(20, root="gumbel", max_considered_actions=4)),
    "chain-gumbel": (None, None, MCTSConfig(30, root="gumbel", value_bounds=None, **ONE_PLAYER)),
}


def search_and_reuse(game, predictor_seed, config):
    """Trees after a search, after a move (unvisited root actions in even rows), and after a
    second search of the reused trees."""
    rng = np.random.default_rng(3)
    if game is None:
        model, roots = RewardChain(), np.array([0, 1, 2, 3, 7, 11])
    else:
        predict = None if predictor_seed is None else linear_predictor(game, predictor_seed)
        model, roots = GameModel(game, predict, rng), game.initial(6)
    search = MCTS(model, config)
    first = search.search(roots, rng)
    _, actions = MCTS.policy(first, 1.0, rng)
    for b in range(0, len(actions), 2):
        unvisited = np.flatnonzero(first.legal[b, 0] & (first.root_visits()[b] == 0))
        actions[b] = unvisited[0] if len(unvisited) else actions[b]
    moved = search.advance(first, actions)
    return first, moved, search.search(copy.deepcopy(moved), rng)


@pytest.mark.parametrize("name", SEARCHES)
def test_compiled_kernels_match_their_python_source(name, monkeypatch):
    """The compiled search (numba's typing and casts) is the plain reading of its source."""
    compiled = search_and_reuse(*SEARCHES[name])
    state = np.random.get_state()
    with monkeypatch.context() as patch:
        interpret_kernels(patch)
        interpreted = search_and_reuse(*SEARCHES[name])
    np.random.set_state(state)
    for stage, a, b in zip(("search", "advance", "reuse"), compiled, interpreted, strict=True):
        for field in a._fields:
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field), f"{stage} {field}")


def test_one_model_call_per_simulation_for_the_whole_batch():
    model = BinaryTreeModel()
    MCTS(model, MCTSConfig(num_simulations=5, two_player=False, value_bounds=None)).search(
        np.zeros(16, dtype=np.int64), np.random.default_rng(0)
    )
    assert model.calls == 6


def test_two_player_values_are_negated_on_the_way_up():
    g = TicTacToe()
    # X to move wins at once with cell 2: the edge's Q is +1 for X, and stays so
    board = np.array([[1, 1, 0], [-1, -1, 0], [0, 0, 0]], np.int8)[None]
    mcts = MCTS(GameModel(g, rng=np.random.default_rng(0)), MCTSConfig(200, rule="uct"))
    tree = mcts.search(board, np.random.default_rng(0))
    assert tree.child_q[0, 0, 2] == pytest.approx(1.0)
    assert np.argmax(tree.root_visits()[0]) == 2
    # moves that neither win nor block let O win at 5: negative for X
    assert (tree.child_q[0, 0, [6, 7, 8]] < 0).all() and tree.child_q[0, 0, 5] < 1


def good_moves(board):
    values = tictactoe_action_values(np.asarray(board, np.int8))
    return set(np.flatnonzero(values == values.max()).tolist()), values.max()


def tactical_positions(n, seed):
    """Reachable tic-tac-toe positions where some moves win (or draw) and others do not."""
    g, rng, out = TicTacToe(), np.random.default_rng(seed), []
    while len(out) < n:
        boards = g.initial(1)
        for _ in range(rng.integers(2, 6)):
            legal = np.flatnonzero(g.legal(boards)[0])
            if len(legal) == 0:
                break
            boards, _, done = g.step(boards, np.array([rng.choice(legal)]))
            if done[0]:
                break
        if g.outcome(boards)[0][0]:
            continue
        good, best = good_moves(boards[0])
        values = tictactoe_action_values(boards[0])
        if len(good) < np.isfinite(values).sum():  # a real choice: some moves are worse
            out.append((boards[0], good, best))
    return out


@pytest.mark.parametrize("rule", ["uct", "puct"])
def test_search_finds_forced_wins_and_avoids_forced_losses(rule):
    g = TicTacToe()
    positions = tactical_positions(12, seed=1)
    boards = np.stack([p[0] for p in positions])
    model = GameModel(g, rng=np.random.default_rng(0))
    config = MCTSConfig(num_simulations=2000, rule=rule, c_puct=2.0)
    tree = MCTS(model, config).search(boards, np.random.default_rng(0))
    _, actions = MCTS.policy(tree, 0.0, np.random.default_rng(0))
    for (board, good, best), action in zip(positions, actions, strict=True):
        assert action in good, (g.render(board), best, good, action, tree.root_visits())


def connect_four(moves):
    g = ConnectFour()
    boards = g.initial(1)
    for a in moves:
        boards, _, _ = g.step(boards, np.array([a]))
    return boards


@pytest.mark.parametrize(
    ("moves", "expected"),
    [([0, 6, 1, 6, 2, 5], 3), ([0, 6, 1, 6, 2], 3), ([3, 3, 4, 4, 2], 1), ([6, 0, 6, 0, 6], 6)],
)
def test_pure_mcts_wins_and_blocks_in_connect_four(moves, expected):
    """Win in one, block a horizontal three, block an open two-sided three, block a column."""
    player = pure_mcts_player(ConnectFour(), 600, seed=0)
    rng = np.random.default_rng(0)
    boards = connect_four(moves)
    if moves == [3, 3, 4, 4, 2]:  # X threatens both 1 and 5: O blocks one, either is right
        assert player(boards, rng)[0] in (1, 5)
    else:
        assert player(boards, rng)[0] == expected


def test_never_selects_an_illegal_action():
    rng = np.random.default_rng(0)
    for game in (TicTacToe(), ConnectFour()):
        boards = game.initial(32)
        for _ in range(game.num_actions * 3):
            legal = game.legal(boards)
            live = legal.any(axis=1)
            if not live.any():
                break

            # an adversarial prior: all mass on the (often illegal) action 0
            def predict(states, n=game.num_actions):
                prior = np.zeros((len(states), n))
                prior[:, 0] = 1.0
                return prior, np.zeros(len(states))

            mcts = MCTS(GameModel(game, predict), MCTSConfig(30, dirichlet_fraction=0.5))
            tree = mcts.search(boards[live], rng)
            _, actions = MCTS.policy(tree, 1.0, rng)
            assert legal[live][np.arange(live.sum()), actions].all()
            assert (tree.root_visits()[~legal[live]] == 0).all()
            assert (tree.child_visits[~tree.legal] == 0).all()  # at every node
            nxt, _, _ = game.step(boards[live], actions)
            boards[live] = nxt
            boards = boards[~game.outcome(boards)[0]]


def test_subtree_reuse_keeps_the_statistics():
    g = TicTacToe()
    rng = np.random.default_rng(0)
    mcts = MCTS(GameModel(g, rng=rng), MCTSConfig(300, rule="uct"))
    tree = mcts.search(g.initial(4), rng)
    actions = np.array([4, 0, 8, 2])
    child = tree.children[np.arange(4), 0, actions]
    expected_visits = tree.node_visits[np.arange(4), child]
    reused = mcts.advance(tree, actions)
    np.testing.assert_array_equal(reused.node_visits[:, 0], expected_visits)
    np.testing.assert_array_equal(reused.states[:, 0], g.step(g.initial(4), actions)[0])
    # the kept subtree is consistent: every child's parent points back
    for b in range(4):
        n = reused.num_nodes[b]
        kids = reused.children[b, :n]
        for parent, action in zip(*np.nonzero(kids >= 0), strict=True):
            assert reused.parent[b, kids[parent, action]] == parent
        assert (reused.children[b, :n] < n).all()
        assert reused.node_visits[b, 0] == reused.child_visits[b, 0].sum() + 1
    more = mcts.search(reused, rng)
    np.testing.assert_array_equal(more.node_visits[:, 0], expected_visits + 300)


def test_advance_to_an_unexpanded_child_starts_a_fresh_root():
    g = TicTacToe()
    rng = np.random.default_rng(0)
    mcts = MCTS(GameModel(g, rng=rng), MCTSConfig(3, rule="uct"))
    tree = mcts.search(g.initial(1), rng)
    unvisited = int(np.flatnonzero(tree.root_visits()[0] == 0)[0])
    fresh = mcts.advance(tree, np.array([unvisited]))
    assert fresh.num_nodes[0] == 1 and fresh.child_visits[0, 0].sum() == 0
    assert fresh.node_visits[0, 0] == 1  # evaluated at once by recurrent_fn
    np.testing.assert_array_equal(fresh.states[0, 0], g.step(g.initial(1), [unvisited])[0][0])
    assert mcts.search(fresh, rng).node_visits[0, 0] == 4


def test_dirichlet_noise_only_touches_the_root_prior_of_legal_moves():
    g = TicTacToe()
    board = np.array([[1, -1, 0], [0, 0, 0], [0, 0, 0]], np.int8)[None]
    mcts = MCTS(GameModel(g, rng=np.random.default_rng(0)), MCTSConfig(10, dirichlet_fraction=0.25))
    tree = MCTS(mcts.model, MCTSConfig(1)).search(board, np.random.default_rng(0))
    noisy = mcts._root_prior(tree, np.random.default_rng(1))
    assert noisy[0, :2].sum() == 0 and noisy[0].sum() == pytest.approx(1.0)
    assert not np.allclose(noisy, tree.prior[:, 0])


def test_min_max_normalisation_also_finds_the_win():
    g = TicTacToe()
    board = np.array([[1, 1, 0], [-1, -1, 0], [0, 0, 0]], np.int8)[None]
    mcts = MCTS(GameModel(g, rng=np.random.default_rng(0)), MCTSConfig(100, value_bounds=None))
    tree = mcts.search(board, np.random.default_rng(0))
    assert np.argmax(tree.root_visits()[0]) == 2
    assert tree.qmin[0] == pytest.approx(-1.0) and tree.qmax[0] == pytest.approx(1.0)


def test_visit_policy_temperature():
    visits = np.array([[10, 30, 0, 60], [5, 5, 0, 0]])
    pi, _ = visit_policy(visits, 1.0)
    np.testing.assert_allclose(pi[0], [0.1, 0.3, 0.0, 0.6], atol=1e-6)
    pi, actions = visit_policy(visits, 0.0, np.random.default_rng(0))
    assert actions[0] == 3 and set(np.flatnonzero(pi[1])) == {0, 1}
    pi, _ = visit_policy(visits, 0.5)
    np.testing.assert_allclose(pi[0], np.array([1, 9, 0, 36]) / 46, atol=1e-6)
    _, sampled = visit_policy(np.tile([0, 1, 0, 3], (2000, 1)), 1.0, np.random.default_rng(0))
    assert set(sampled) == {1, 3} and 0.7 < (sampled == 3).mean() < 0.8


def test_search_rejects_finished_games_and_bad_configs():
    g = TicTacToe()
    board = np.array([[1, 1, 1], [-1, -1, 0], [0, 0, 0]], np.int8) * -1  # O to move, X won
    with pytest.raises(ValueError, match="no legal action"):
        MCTS(GameModel(g)).search(board[None], np.random.default_rng(0))
    with pytest.raises(ConfigError, match="num_simulations"):
        MCTSConfig(num_simulations=0)
    with pytest.raises(ConfigError, match="rule"):
        MCTSConfig(rule="gumbel")


def test_searching_on_after_the_game_ends_is_an_error():
    g = TicTacToe()
    board = np.array([[1, 1, 0], [-1, -1, 0], [0, 0, 0]], np.int8)[None]
    search = MCTS(GameModel(g, rng=np.random.default_rng(0)), MCTSConfig(20, rule="uct"))
    tree = search.advance(search.search(board, np.random.default_rng(0)), np.array([2]))  # wins
    assert tree.num_nodes[0] == 1 and tree.terminal[0, 0]
    with pytest.raises(ValueError, match="no legal action"):
        search.search(tree, np.random.default_rng(0))


def test_random_playout_values():
    g = TicTacToe()
    won = np.array([[1, 1, 0], [-1, -1, -1], [1, 0, 0]], np.int8)[None]  # mover already lost
    assert random_playout(g, won, np.random.default_rng(0))[0] == -1
    values = random_playout(g, g.initial(2000), np.random.default_rng(0))
    assert set(np.unique(values)) <= {-1.0, 0.0, 1.0}
    assert 0.2 < values.mean() < 0.4  # random play favours the first player (about 0.29)


def test_pure_mcts_1000_never_loses_to_random():
    g = TicTacToe()
    mcts, rand = builtin_player("mcts:1000", g), builtin_player("random", g)
    table = play_games(g, mcts, rand, 10, np.random.default_rng(0))
    assert table["total"]["losses"] == 0 and table["total"]["wins"] >= 7


@pytest.mark.slow
def test_pure_mcts_1000_never_loses_to_random_in_100_games():
    g = TicTacToe()
    mcts, rand = builtin_player("mcts:1000", g), builtin_player("random", g)
    table = play_games(g, mcts, rand, 100, np.random.default_rng(1))
    assert table["total"]["losses"] == 0
