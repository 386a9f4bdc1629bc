"""Progress that fits where it runs: plain lines without a terminal (per evaluation and per N
seconds), a bar on one, both following the true step count between callbacks."""

import io
import re
import subprocess
import sys
import time

import modelbased as mb
from modelbased.progress import Progress

LINE = re.compile(
    r"^q-learning FrozenLake-v1: step (\d+)/3000 \(\d+%\), \d+ episodes, last eval \S+, "
    r"\S+ steps/s, ETA \S+$"
)


def test_plain_lines_without_a_terminal(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "modelbased", "train", "q-learning", "--env", "FrozenLake-v1"]
        + ["--steps", "3000", "--set", "eval_every=1000", "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert [int(LINE.match(line).group(1)) for line in lines] == [1000, 2000, 3000], lines
    assert "3000 steps" in proc.stdout


def slow_step_at(agent, step: int, seconds: float, seen: list) -> None:
    """Make ``observe`` pause at ``step`` (no callback falls there) and record what shows."""
    observe = agent.observe

    def pausing(*args):
        observe(*args)
        if agent.loop.env_steps == step:
            time.sleep(seconds)
            seen.append(True)

    agent.observe = pausing


def test_bar_follows_the_true_step_count():
    agent = mb.QLearning("modelbased/DynaMaze-v0", eval_every=1000, log_every=1000)
    progress = Progress(stream=io.StringIO(), tty=True)
    seen: list = []
    slow_step_at(agent, 120, 0.8, seen)
    observe = agent.observe

    def check(*args):
        observe(*args)
        if seen and len(seen) == 1:
            seen.append(progress.bar.tasks[0].completed)

    agent.observe = check
    agent.learn(150, callback=progress)
    assert seen[1] == 120 and agent.loop.episodes == 0  # no callback at 120
    progress.close()


def test_plain_line_every_n_seconds():
    stream = io.StringIO()
    agent = mb.QLearning("modelbased/DynaMaze-v0", eval_every=1000, log_every=1000)
    slow_step_at(agent, 120, 0.8, [])
    progress = Progress(stream=stream, tty=False, every_s=0.3)
    agent.learn(150, callback=progress)
    progress.close()
    steps = re.findall(r"step (\d+)/150", stream.getvalue())
    assert "120" in steps and steps[-1] == "150", stream.getvalue()


def test_quiet_shows_nothing():
    stream = io.StringIO()
    progress = Progress(quiet=True, stream=stream, tty=False, every_s=0)
    mb.QLearning("FrozenLake-v1").learn(200, callback=progress)
    progress.close()
    assert stream.getvalue() == ""
