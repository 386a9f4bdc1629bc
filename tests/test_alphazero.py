"""AlphaZero and the mcts agent: self-play data, learning, checkpoints, the CLI verbs."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import modelbased as mb
from modelbased.agents.arena import builtin_player, play_games
from modelbased.cli import main
from modelbased.core.errors import UnsupportedSpaceError
from modelbased.envs.games import TicTacToe
from modelbased.runs import write_config

CLI = [sys.executable, "-m", "modelbased"]
TINY = {
    "parallel_games": 8,
    "search.num_simulations": 8,
    "eval_simulations": 8,
    "updates_per_iteration": 2,
    "batch_size": 32,
    "eval_episodes": 1,
    "eval_every": 50,
}


def run(*args, check=True, **kw):
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, **kw)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_self_play_positions_and_targets():
    agent = mb.AlphaZero("modelbased/TicTacToe-v0", seed=0, **TINY)
    states, pis, z, results, lengths = agent.self_play(agent.net)
    g = agent.game
    assert len(states) == lengths.sum() and len(results) == 8
    assert np.allclose(pis.sum(axis=1), 1) and (pis[~g.legal(states)] == 0).all()
    # rows come move by move; z is the final result for the player to move
    assert set(np.unique(np.abs(z))) <= {0.0, 1.0}
    assert (states[:8] == 0).all() and np.array_equal(z[:8], results)
    assert np.array_equal(z[8:16], -results)  # the second player moves at ply 1
    assert (g.to_move(states[8:16]) == -1).all()
    s, p, zz = agent.augment(states, pis, z)
    assert len(s) == 8 * len(states) and np.array_equal(zz[: len(z)], z)


def test_learn_reports_through_callbacks_and_round_trips(tmp_path):
    agent = mb.AlphaZero("modelbased/TicTacToe-v0", seed=0, **TINY)
    log = mb.EpisodeLog()
    agent.learn(60, callback=log)
    assert agent.loop.env_steps >= 60 and agent.iteration >= 1
    assert len(log.returns) == agent.loop.episodes and sum(log.lengths) == agent.loop.env_steps
    agent.save(tmp_path / "az.pt")
    again = mb.load(str(tmp_path / "az.pt"))
    assert isinstance(again, mb.AlphaZero) and again.iteration == agent.iteration
    for a, b in zip(agent.best.parameters(), again.best.parameters(), strict=True):
        assert torch.equal(a, b)
    assert len(again.replay) == len(agent.replay)
    obs, info = again.env.reset(seed=0)
    assert info["action_mask"][again.act(obs)]


class Scalars(mb.Callback):
    def __init__(self):
        self.rows = []

    def on_train(self, state, scalars):
        self.rows.append(scalars)


@pytest.mark.parametrize("threshold", [0.01, 0.99])
def test_gating_replaces_the_best_network_only_when_beaten(threshold):
    agent = mb.AlphaZero(
        "modelbased/TicTacToe-v0",
        seed=0,
        gating=True,
        gating_games=4,
        gating_threshold=threshold,
        **TINY,
    )
    before = [p.detach().clone() for p in agent.best.parameters()]
    log = Scalars()
    agent.learn(1, callback=log)
    row = log.rows[-1]
    assert 0 <= row["gating_score"] <= 1
    kept = all(torch.equal(a, b) for a, b in zip(before, agent.best.parameters(), strict=True))
    assert kept == (row["gating_accepted"] == 0)
    assert (row["gating_accepted"] == 1) == (row["gating_score"] >= threshold)


def test_agents_refuse_non_game_envs():
    with pytest.raises(UnsupportedSpaceError, match="two-player board games"):
        mb.AlphaZero("CartPole-v1")
    with pytest.raises(UnsupportedSpaceError, match="two-player"):
        mb.MCTSAgent("Pendulum-v1")


def test_training_reduces_the_loss_and_beats_random():
    agent = mb.AlphaZero(
        "modelbased/TicTacToe-v0",
        seed=0,
        parallel_games=32,
        search=dict(num_simulations=16),
        updates_per_iteration=20,
    )
    first = None
    for _ in range(4):
        agent.learn(1)  # one self-play iteration each
        states, pis, z = agent.replay.sample(512, np.random.default_rng(0))
        with torch.no_grad():
            from modelbased.models.policy_value import alphazero_loss

            loss, _ = alphazero_loss(
                agent.net,
                torch.from_numpy(agent.game.encode(states)),
                torch.from_numpy(pis),
                torch.from_numpy(z),
            )
        first = float(loss) if first is None else first
    assert float(loss) < first
    g = TicTacToe()
    table = play_games(g, agent.player(), builtin_player("random", g), 10, np.random.default_rng(0))
    assert table["total"]["losses"] <= 1


@pytest.mark.slow
def test_alphazero_never_loses_to_minimax_at_tictactoe():
    """The must-show figure at a small budget: 100 games, 50 with each colour."""
    agent = mb.AlphaZero("modelbased/TicTacToe-v0", seed=0)
    agent.learn(20_000)
    g = TicTacToe()
    table = play_games(
        g, agent.player(), builtin_player("minimax", g), 100, np.random.default_rng(0)
    )
    assert table["total"]["losses"] == 0, table


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("az") / "run"
    sets = [x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]
    run("train", "alphazero", "--steps", "40", "--out", str(out), "--quiet", *sets)
    return out


def test_train_writes_a_normal_run_dir(run_dir):
    for name in ("config.yaml", "eval.csv", "episodes.csv", "train.csv", "checkpoint.pt"):
        assert (run_dir / name).is_file(), name
    assert "policy_loss" in (run_dir / "train.csv").read_text().splitlines()[0]


def test_arena_json_and_table(run_dir, capsys):
    proc = run("arena", str(run_dir), "random", "--games", "4", "--json")
    out = json.loads(proc.stdout)
    assert out["games"] == 4 and out["wins"] + out["draws"] + out["losses"] == 4
    assert out["first"]["games"] == 2 and out["second"]["games"] == 2
    assert (
        main(
            ["arena", "alphabeta:2", "random", "--games", "2", "--env", "modelbased/ConnectFour-v0"]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "A first" in table and "A second" in table and "total" in table


def test_arena_simulations_sets_the_run_dir_players_search_budget(run_dir):
    from modelbased.games_cli import load_game_agent

    assert load_game_agent(str(run_dir), 7).config.eval_simulations == 7
    proc = run("arena", str(run_dir), "random", "--games", "2", "--simulations", "3", "--json")
    assert json.loads(proc.stdout)["games"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bogus", "random"], "unknown player 'bogus'"),
        (["minimax", "random", "--env", "modelbased/ConnectFour-v0"], "tic-tac-toe only"),
        (["mcts:x", "random"], "bad mcts simulations"),
        (["random", "random", "--env", "Pendulum-v1"], "not a two-player game"),
        (["random", "random", "--games", "0"], "--games must be positive"),
        (["random", "random", "--simulations", "0"], "--simulations must be positive"),
    ],
)
def test_arena_bad_input_is_one_line_exit_2(args, message, capsys):
    assert main(["arena", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_play_refuses_illegal_input_and_exits_on_eof(run_dir):
    proc = run("play", str(run_dir), input="5\n5\nten\n0\n1\n")
    out = proc.stdout
    assert "cell 5 is taken" in out and "'ten' is not a cell number" in out
    assert "there is no cell 0" in out and "alphazero plays" in out
    assert out.rstrip().endswith("bye") or "game over" in out
    assert "Traceback" not in proc.stderr


def test_play_a_whole_game_as_second_player(run_dir):
    moves = "".join(f"{c}\n" for c in range(1, 10))  # tries every cell in turn; taken ones refused
    proc = run("play", str(run_dir), "--second", input=moves * 2)
    assert "game over" in proc.stdout


def test_play_rejects_non_game_runs(tmp_path, capsys):
    out = tmp_path / "dyna"
    agent = mb.DynaQ("modelbased/DynaMaze-v0")
    write_config(out, agent, 10)
    agent.save(out / "checkpoint.pt")
    assert main(["play", str(out)]) == 2
    assert "plays no board game" in capsys.readouterr().err


def test_mcts_agent_trains_into_a_run_dir(tmp_path, capsys):
    out = tmp_path / "mcts"
    assert (
        main(
            [
                "train",
                "mcts",
                "--steps",
                "10",
                "--out",
                str(out),
                "--quiet",
                "--set",
                "search.num_simulations=20",
                "--set",
                "eval_episodes=1",
            ]
        )
        == 0
    )
    assert (out / "checkpoint.pt").is_file() and (out / "episodes.csv").is_file()
    capsys.readouterr()
    assert main(["arena", str(out), "random", "--games", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["games"] == 2
