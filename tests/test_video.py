"""Video for any env that renders (toy-text and classic-control through pygame, which the
``[video]`` extra brings), and one clear line, after the evaluation result, for one that does
not."""

import os
import subprocess
import sys

import pytest

import modelbased as mb
from modelbased.cli import main
from modelbased.video import record_video


def test_toy_text_video_through_the_cli(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "q-learning", "--env", "FrozenLake-v1", "--steps", "200", "--quiet"]
    assert main([*argv, "--out", str(run), "--set", "eval_episodes=1"]) == 0
    capsys.readouterr()
    video = tmp_path / "lake.mp4"
    assert main(["eval", str(run), "--episodes", "1", "--video", str(video)]) == 0
    out = capsys.readouterr()
    assert "q-learning on FrozenLake-v1, 1 episodes: return" in out.out
    assert "frames" in out.err and video.stat().st_size > 0


def test_classic_control_video(tmp_path):
    assert record_video(mb.SAC("Pendulum-v1"), tmp_path / "p.mp4", seed=0) == 201


def test_headless_video_prints_nothing_but_its_line(tmp_path):
    """With no display, SDL used to print "error: XDG_RUNTIME_DIR is invalid" on stderr."""
    code = "import modelbased as mb, sys; from modelbased.video import record_video; "
    code += "record_video(mb.SAC('CartPole-v1'), sys.argv[1], seed=0)"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("SDL_VIDEODRIVER", None)
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "c.mp4")], env=env, capture_output=True
    )
    assert done.returncode == 0 and done.stderr.decode() == "", done.stderr.decode()


def test_an_env_that_cannot_render_is_one_line_after_the_result(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "mcts", "--steps", "5", "--quiet", "--set", "eval_episodes=1"]
    assert main([*argv, "--set", "search.num_simulations=4", "--out", str(run)]) == 0
    capsys.readouterr()
    video = tmp_path / "ttt.mp4"
    assert main(["eval", str(run), "--episodes", "1", "--json", "--video", str(video)]) == 2
    out = capsys.readouterr()
    assert out.out.startswith('{"return_mean"')
    assert out.err.count("\n") == 1 and "cannot render frames" in out.err, out.err
    assert not video.exists()


@pytest.mark.parametrize("name", ["v.gif", "missing/v.mp4"])
def test_unwritable_video_paths(tmp_path, name):
    with pytest.raises(mb.OutputError):
        record_video(mb.QLearning("FrozenLake-v1"), tmp_path / name, seed=0)
