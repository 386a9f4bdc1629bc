"""Two-player games: rules, symmetries, reference players, Gymnasium envs."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from modelbased.core.errors import ConfigError, UnknownNameError
from modelbased.envs.games import (
    AlphaBetaPlayer,
    ConnectFour,
    MinimaxPlayer,
    TicTacToe,
    make_player,
)
from modelbased.envs.games.players import tictactoe_action_values, tictactoe_value


def play(game, actions, batch=1):
    boards = game.initial(batch)
    reward = done = None
    for a in actions:
        boards, reward, done = game.step(boards, np.full(batch, a))
    return boards, reward, done


def test_tictactoe_rules_and_canonical_boards():
    g = TicTacToe()
    boards, reward, done = play(g, [0, 3, 1, 4])
    assert not done[0] and reward[0] == 0
    assert g.to_move(boards)[0] == 1  # X to move after four stones
    assert boards[0, 0, 0] == 1 and boards[0, 1, 0] == -1  # canonical: the mover's stones are +1
    assert g.legal(boards)[0].tolist() == [False, False, True, False, False, True, True, True, True]
    boards, reward, done = g.step(boards, np.array([2]))
    assert reward[0] == 1 and done[0]
    finished, value = g.outcome(boards)
    assert finished[0] and value[0] == -1  # the player to move has lost
    assert not g.legal(boards).any()


def test_tictactoe_draw():
    _, reward, done = play(TicTacToe(), [0, 1, 2, 4, 3, 5, 7, 6, 8])
    assert done[0] and reward[0] == 0


@pytest.mark.parametrize(
    "moves",
    [
        [0, 0, 1, 1, 2, 2, 3],  # horizontal on the bottom row
        [3, 4, 3, 4, 3, 4, 3],  # vertical
        [0, 1, 1, 2, 2, 3, 2, 3, 3, 6, 3],  # diagonal up-right
        [6, 5, 5, 4, 4, 3, 4, 3, 3, 0, 3],  # diagonal up-left
    ],
)
def test_connect_four_wins_in_every_direction(moves):
    g = ConnectFour()
    boards, reward, done = play(g, moves[:-1])
    assert not done[0]
    boards, reward, done = g.step(boards, np.array([moves[-1]]))
    assert reward[0] == 1 and done[0]
    assert g.outcome(boards)[1][0] == -1


def test_connect_four_full_column_is_illegal():
    g = ConnectFour()
    boards, _, _ = play(g, [0] * 6)
    assert not g.legal(boards)[0, 0] and g.legal(boards)[0, 1:].all()


def test_symmetries_preserve_rules():
    rng = np.random.default_rng(0)
    for g, copies in ((TicTacToe(), 8), (ConnectFour(), 2)):
        boards, _, _ = play(g, [1, 2, 0])
        pi = rng.random((1, g.num_actions)).astype(np.float32)
        s, p = g.symmetries(boards, pi)
        assert s.shape == (copies, *g.board_shape) and p.shape == (copies, g.num_actions)
        for probs in p:
            assert sorted(probs.tolist()) == sorted(pi[0].tolist())
        assert np.array_equal(s[0], boards[0])
        _, masks = g.symmetries(boards, g.legal(boards).astype(np.float32))
        assert np.array_equal(masks.astype(bool), g.legal(s))  # moves map with their boards


def test_minimax_value_of_the_empty_board_is_a_draw():
    assert tictactoe_value(np.zeros(9, np.int8).tobytes()) == 0
    values = tictactoe_action_values(np.zeros((3, 3), np.int8))
    assert (values == 0).all()  # every opening move draws with perfect play


def test_minimax_finds_wins_and_blocks():
    rng = np.random.default_rng(0)
    p = MinimaxPlayer(TicTacToe())
    win = np.array([[1, 1, 0], [-1, -1, 0], [0, 0, 0]], np.int8)
    block = np.array([[1, 0, 0], [-1, -1, 0], [1, 0, 0]], np.int8)
    assert p(win[None], rng)[0] == 2
    assert p(block[None], rng)[0] == 5


def test_alphabeta_takes_wins_and_blocks_threats():
    g = ConnectFour()
    rng = np.random.default_rng(0)
    p = AlphaBetaPlayer(g, 4)
    boards, _, _ = play(g, [0, 6, 1, 6, 2])  # O to move: X threatens column 3
    assert p(boards, rng)[0] == 3
    boards, _, _ = play(g, [0, 6, 1, 6, 2, 5])  # X to move wins in column 3
    assert p(boards, rng)[0] == 3


def test_player_names():
    assert make_player("alphabeta:2", ConnectFour()).name == "alphabeta:2"
    with pytest.raises(UnknownNameError, match="unknown player"):
        make_player("perfect", TicTacToe())
    with pytest.raises(UnknownNameError, match="tic-tac-toe only"):
        make_player("minimax", ConnectFour())
    with pytest.raises(UnknownNameError, match="depth"):
        make_player("alphabeta:x", ConnectFour())


@pytest.mark.parametrize("env_id", ["modelbased/TicTacToe-v0", "modelbased/ConnectFour-v0"])
def test_game_envs_pass_check_env(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert obs.dtype == np.int8 and info["action_mask"].any()


def test_game_env_rewards_and_illegal_moves():
    env = gym.make("modelbased/TicTacToe-v0", opponent="random", side="first")
    obs, info = env.reset(seed=0)
    assert (obs == 0).all() and info["agent_first"]
    obs, reward, terminated, _, info = env.step(4)
    assert obs[1, 1] == 1 and (obs == -1).sum() == 1 and not info["action_mask"][4]
    obs, reward, terminated, _, info = env.step(4)  # an occupied cell loses at once
    assert terminated and reward == -1 and info["illegal"]
    with pytest.raises(ConfigError, match="side"):
        gym.make("modelbased/TicTacToe-v0", side="middle")


def test_game_env_against_minimax_never_wins():
    env = gym.make("modelbased/TicTacToe-v0")  # the perfect minimax opponent by default
    rng = np.random.default_rng(0)
    for episode in range(10):
        obs, info = env.reset(seed=episode)
        done, reward = False, 0.0
        while not done:
            action = rng.choice(np.flatnonzero(info["action_mask"]))
            obs, reward, done, _, info = env.step(action)
        assert reward <= 0


def reference_step(game, boards, actions):
    """The rules written plainly (per board, line by line) to check the compiled step against."""
    out, rewards, dones, legals = [], [], [], []
    for board, a in zip(boards.reshape(len(boards), -1), actions, strict=True):
        flat = board.copy()
        if game.columns:
            cell = max(
                r * game.columns + a
                for r in range(game.board_shape[0])
                if flat[r * game.columns + a] == 0
            )
        else:
            cell = a
        flat[cell] = 1
        won = any(all(flat[i] == 1 for i in line) for line in game.lines if cell in line)
        done = won or not (flat == 0).any()
        nxt = -flat
        out.append(nxt)
        rewards.append(float(won))
        dones.append(done)
        legals.append([(not done) and nxt[m] == 0 for m in range(game.num_actions)])
    return np.array(out).reshape(boards.shape), np.array(rewards), np.array(dones), np.array(legals)


@pytest.mark.parametrize("game", [TicTacToe(), ConnectFour()], ids=["ttt", "c4"])
def test_compiled_step_matches_the_rules_written_plainly(game):
    rng = np.random.default_rng(0)
    boards = game.initial(64)
    for _ in range(game.cells):
        live = ~game.outcome(boards)[0]
        if not live.any():
            break
        legal = game.legal(boards[live])
        actions = np.array([rng.choice(np.flatnonzero(row)) for row in legal])
        got = game.step_legal(boards[live], actions)
        want = reference_step(game, boards[live], actions)
        for g, w, name in zip(got, want, ("boards", "reward", "done", "legal"), strict=True):
            np.testing.assert_array_equal(g, w, name)
        np.testing.assert_array_equal(got[3], game.legal(got[0]))  # agrees with legal()
        boards[live] = got[0]
