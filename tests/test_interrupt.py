"""Interrupts lose nothing: SIGINT/SIGTERM stop training at a safe point with a checkpoint of
everything learned, resume continues exactly (stops on an episode boundary), periodic
wall-clock checkpoints, and run dirs refuse checkpoints of another algorithm."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from test_act_after_load import BRIEF

import modelbased as mb
from modelbased.cli import main
from modelbased.core.callbacks import Callback
from modelbased.core.checkpoint import safe_load, to_saveable
from modelbased.core.interrupt import TrainingInterrupted

CLI = [sys.executable, "-m", "modelbased"]
# agents whose consistent points are the ends of rounds of parallel episodes (MuZero): a stop
# at one episode's end is inside a round, so their resume keeps everything but is not exact
ROUNDS = {"muzero"}
SHORT = {"Pendulum-v1": 20}  # episode length for the test, so stops fall on episode ends
TABULAR = ("q-learning", "dyna-q", "dyna-q-plus", "prioritized-sweeping")
# enough steps for a few episodes (self-play iterations)
STEPS = {"alphazero": 40, "mcts": 12, "value-iteration": 300} | dict.fromkeys(TABULAR, 300)
# model refits before and after the stop, so a refit continued from a checkpoint is compared
REFITS = {
    "pets": {"random_steps": 10, "train_every": 10},
    "mpc": {"random_steps": 10, "train_every": 10},
    "mbpo": {"learning_starts": 10, "model_train_every": 10},
}


def make(algo: str):
    env_id, steps, overrides = BRIEF[algo]
    steps = STEPS.get(algo, steps)
    env_id = "FrozenLake-v1" if algo in TABULAR else env_id  # short episodes
    env = gym.make(env_id, max_episode_steps=SHORT[env_id]) if env_id in SHORT else env_id
    config = {"eval_every": max(steps // 2, 1), "eval_episodes": 1} | overrides
    config |= REFITS.get(algo, {})
    return env, steps, config


def same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


class Record(Callback):
    """Eval returns; the last checkpoint asked for (saved to ``path``); optionally a signal to
    ourselves at the first episode end."""

    def __init__(self, path: Path, signum: int | None = None) -> None:
        self.path, self.signum, self.evals = path, signum, []

    def on_episode(self, state, ret, length):
        if self.signum is not None:
            os.kill(os.getpid(), self.signum)
            self.signum = None

    def on_eval(self, state, stats):
        self.evals.append((state.env_steps, stats["return_mean"]))

    def on_checkpoint(self, agent):
        agent.save(self.path)


@pytest.mark.parametrize("algo", sorted(BRIEF))
def test_signal_at_an_episode_end_resumes_exactly(algo, tmp_path):
    env, steps, config = make(algo)
    cls = mb.ALGORITHMS[algo]
    whole = Record(tmp_path / "whole.pt")
    reference = cls(env, config, seed=3, device="cpu").learn(steps, callback=whole)

    env, _, _ = make(algo)
    first = Record(tmp_path / "cut.pt", signal.SIGINT)
    cut = cls(env, config, seed=3, device="cpu")
    with pytest.raises(TrainingInterrupted) as stop:
        cut.learn(steps, callback=first)
    assert stop.value.saved and stop.value.exit_code == 130 and first.signum is None
    saved = safe_load(tmp_path / "cut.pt")  # nothing learned before the stop is lost
    for key in ("agent", "loop", "rng", "env_state"):
        assert same(saved[key], to_saveable(cut.checkpoint()[key])), key
    env, _, _ = make(algo)
    resumed = cls.load(tmp_path / "cut.pt", env=env, device="cpu")
    assert 0 < resumed.loop.env_steps < steps
    rest = Record(tmp_path / "rest.pt")
    resumed.learn(steps - resumed.loop.env_steps, callback=rest)
    assert resumed.loop.env_steps >= steps
    if algo in ROUNDS:  # one episode's end lies inside a round: the documented inexact case
        return

    assert first.evals + rest.evals == whole.evals
    got, want = resumed.checkpoint(), reference.checkpoint()
    for key in ("agent", "rng", "env_state"):
        assert same(got[key], want[key]), key
    assert resumed.loop.env_steps == reference.loop.env_steps >= steps  # self-play overshoots
    assert resumed.loop.episodes == reference.loop.episodes


def test_signal_during_an_evaluation_redoes_it_on_resume(tmp_path):
    config = {"eval_every": 400, "eval_episodes": 3}
    whole = Record(tmp_path / "whole.pt")
    mb.DynaQ("modelbased/DynaMaze-v0", config, seed=1).learn(800, callback=whole)

    agent = mb.DynaQ("modelbased/DynaMaze-v0", config, seed=1)
    policy, calls = agent.policy, []

    def policy_that_signals(obs, deterministic, rng):  # during the second evaluation
        calls.append(deterministic)
        if len(calls) == 1 and agent.loop.env_steps == 800:
            os.kill(os.getpid(), signal.SIGTERM)
        if agent.loop.env_steps < 800:
            calls.clear()
        return policy(obs, deterministic, rng)

    agent.policy = policy_that_signals
    first = Record(tmp_path / "cut.pt")
    with pytest.raises(TrainingInterrupted) as stop:
        agent.learn(800, callback=first)
    assert stop.value.exit_code == 143
    resumed = mb.DynaQ.load(tmp_path / "cut.pt")
    assert resumed.loop.env_steps == 800 and resumed.loop.eval_pending
    rest = Record(tmp_path / "rest.pt")
    resumed.learn(0, callback=rest)
    assert first.evals + rest.evals == whole.evals
    assert not resumed.loop.eval_pending


def test_checkpoints_by_wall_clock(tmp_path):
    config = {"checkpoint_every": 10**9, "checkpoint_minutes": 1e-9}
    rec = Record(tmp_path / "c.pt")
    mb.QLearning("FrozenLake-v1", config).learn(300, callback=rec)
    assert mb.QLearning.load(rec.path).loop.last_checkpoint_step > 0
    with pytest.raises(mb.ConfigError, match="checkpoint_minutes"):
        mb.QLearning("modelbased/DynaMaze-v0", checkpoint_minutes=-1)


def wait_for_rows(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, proc.communicate()
        if path.is_file() and path.read_text().count("\n") >= 2:
            return
        time.sleep(0.05)
    raise AssertionError(f"no rows in {path}")


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_cli_stops_on_a_signal_and_resumes(signum, code, tmp_path):
    out = tmp_path / "run"
    train = ["train", "dyna-q", "--steps", "4000", "--seed", "0", "--out", str(out)]
    proc = subprocess.Popen(
        [*CLI, *train, "--set", "planning_steps=30", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_rows(out / "episodes.csv", proc)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == code, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and f"resume with: modelbased train dyna-q --resume {out}" in lines[0]
    agent = mb.DynaQ.load(out / "checkpoint.pt")
    assert 0 < agent.loop.env_steps < 4000 and stdout == ""
    assert f"at {agent.loop.env_steps} steps" in lines[0]
    resumed = subprocess.run(
        [*CLI, "train", "dyna-q", "--resume", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "4000 steps" in resumed.stdout
    assert mb.DynaQ.load(out / "checkpoint.pt").loop.env_steps == 4000


def test_a_foreign_checkpoint_is_refused(tmp_path, capsys):
    runs = {}
    for algo in ("q-learning", "dyna-q"):
        runs[algo] = tmp_path / algo
        assert main(["train", algo, "--steps", "200", "--out", str(runs[algo]), "--quiet"]) == 0
    shutil.copy(runs["q-learning"] / "checkpoint.pt", runs["dyna-q"] / "checkpoint.pt")
    capsys.readouterr()
    for argv in (
        ["eval", str(runs["dyna-q"])],
        ["train", "dyna-q", "--resume", str(runs["dyna-q"])],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "'q-learning'" in err and "dyna-q" in err, err
