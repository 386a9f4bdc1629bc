"""MuZero's loop honours interrupts like the shared loop: a stop signal ends the round after
the current batched step, an evaluation due then is left pending and done first on resume, and
checkpoints come by wall clock as well as by steps, at the ends of rounds."""

import os
import signal

import pytest
from test_act_after_load import BRIEF

import modelbased as mb
from modelbased.core.callbacks import Callback
from modelbased.core.interrupt import TrainingInterrupted

ENV, _, SMALL = BRIEF["muzero"]


class Record(Callback):
    def __init__(self, path):
        self.path, self.evals, self.checkpoints = path, [], []

    def on_eval(self, state, stats):
        self.evals.append(state.env_steps)

    def on_checkpoint(self, agent):
        self.checkpoints.append(agent.loop.env_steps)
        agent.save(self.path)


def test_a_signal_stops_after_the_current_step_and_leaves_the_due_evaluation_pending(tmp_path):
    config = SMALL | {"eval_every": 10, "eval_episodes": 1, "log_every": 10_000}
    agent = mb.MuZero(ENV, config, seed=0, device="cpu")
    train_step, sent = agent.train_step, []

    def signalling_train_step():  # in the first training step (learning starts at step 20)
        if not sent and agent.loop.env_steps >= 10:
            sent.append(agent.loop.env_steps)
            os.kill(os.getpid(), signal.SIGINT)
        train_step()

    agent.train_step = signalling_train_step
    rec = Record(tmp_path / "cut.pt")
    with pytest.raises(TrainingInterrupted) as stop:
        agent.learn(200, callback=rec)
    assert stop.value.saved and sent
    assert agent.loop.env_steps == sent[0]  # no step after the signal's
    # the evaluations before, on schedule; the one due in the signal's step pending
    assert rec.evals == list(range(10, sent[0], 10)) and sent[0] % 10 == 0
    assert agent.loop.eval_pending
    resumed = mb.MuZero.load(tmp_path / "cut.pt", device="cpu")
    assert resumed.loop.eval_pending and resumed.loop.env_steps == sent[0]
    after = Record(tmp_path / "rest.pt")
    resumed.learn(0, callback=after)
    assert after.evals == [sent[0]] and not resumed.loop.eval_pending


def test_checkpoints_by_wall_clock_at_round_ends(tmp_path):
    config = SMALL | {"checkpoint_every": 10**9, "checkpoint_minutes": 1e-9, "eval_episodes": 0}
    agent = mb.MuZero(ENV, config, seed=0, device="cpu")
    rec = Record(tmp_path / "c.pt")
    agent.learn(60, callback=rec)
    assert rec.checkpoints  # by wall clock only: checkpoint_every is out of reach
    assert rec.checkpoints[:-1] == sorted(set(rec.checkpoints[:-1]))
    # each at the end of a round: the saved round count equals the rounds played by then
    loaded = mb.MuZero.load(tmp_path / "c.pt", device="cpu")
    assert loaded.loop.last_checkpoint_step == rec.checkpoints[-1] > 0
