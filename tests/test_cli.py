"""The command line end to end, in subprocesses as a user runs it."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

CLI = [sys.executable, "-m", "modelbased"]


def run(*args, check=True, **kw):
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, **kw)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def header(path: Path) -> list[str]:
    with path.open(newline="") as f:
        return next(csv.reader(f))


def rows(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_train_eval_plot_end_to_end(tmp_path):
    out = tmp_path / "run"
    proc = run("train", "dyna-q", "--steps", "3000", "--seed", "0", "--out", str(out), "--quiet")
    assert "final eval return" in proc.stdout and proc.stdout.count("\n") == 1
    for name in (
        "config.yaml",
        "eval.csv",
        "episodes.csv",
        "train.csv",
        "checkpoint.pt",
        "curve.png",
    ):
        assert (out / name).is_file(), name
    assert any((out / "tb").iterdir())
    assert header(out / "eval.csv")[:5] == [
        "env_steps",
        "wall_time_s",
        "return_mean",
        "return_std",
        "episodes",
    ]
    assert [int(r["env_steps"]) for r in rows(out / "eval.csv")] == [500 * k for k in range(1, 7)]
    assert header(out / "episodes.csv") == [
        "env_steps",
        "episode",
        "return",
        "length",
        "wall_time_s",
    ]
    assert len(rows(out / "episodes.csv")) > 10
    assert header(out / "train.csv")[:2] == ["env_steps", "wall_time_s"]
    assert torch.load(out / "checkpoint.pt", weights_only=True)["loop"]["env_steps"] == 3000

    stats = json.loads(run("eval", str(out), "--episodes", "3", "--json").stdout)
    assert set(stats) == {"return_mean", "return_std", "length_mean", "episodes"}
    assert stats["episodes"] == 3 and stats["return_mean"] == 1.0 and stats["length_mean"] == 14

    png = tmp_path / "curves.png"
    run("plot", str(out), str(out), "--out", str(png))
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "dyna-q" in run("list").stdout


def test_same_seed_gives_identical_eval_csv(tmp_path):
    for name in ("a", "b"):
        run(
            "train",
            "dyna-q",
            "--env",
            "FrozenLake-v1",
            "--steps",
            "3000",
            "--seed",
            "5",
            "--set",
            "eval_every=1000",
            "--set",
            "eval_episodes=50",
            "--out",
            str(tmp_path / name),
            "--quiet",
        )
    strip = [
        {k: v for k, v in r.items() if k != "wall_time_s"}
        for r in rows(tmp_path / "a" / "eval.csv")
    ]
    assert strip == [
        {k: v for k, v in r.items() if k != "wall_time_s"}
        for r in rows(tmp_path / "b" / "eval.csv")
    ]


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "nope"], "unknown algorithm 'nope'"),
        (["train", "dyna-q", "--env", "NoSuchEnv-v0"], "unknown environment 'NoSuchEnv-v0'"),
        (["train", "dyna-q", "--env", "Pendulum-v1"], "needs a Discrete observation space"),
        (["train", "dyna-q", "--set", "alhpa=0.1"], "alhpa='0.1' is not a config key"),
        (["train", "dyna-q", "--set", "step_size=high"], "step_size='high' is not a finite"),
        (["train", "dyna-q", "--set", "step_size=5"], "step_size=5.0 must be in (0, 1]"),
        (["train", "dyna-q", "--set", "alpha=0.5"], "alpha='0.5' has moved: set step_size"),
        (["train", "pets", "--set", "hidden=256"], "hidden='256' has moved: set model.hidden"),
        (["train", "pets", "--set", "model.hiden=3"], "model.hiden='3' is not a config key"),
        (["train", "pets", "--set", "planner.kind=x"], "planner.kind='x' must be one of"),
        (["train", "sac", "--device", "tpu"], "device='tpu' is not one of"),
        (["train", "dyna-q", "--set", "alpha"], "--set takes key=value"),
        (["train", "dyna-q", "--steps", "0"], "--steps must be positive"),
        (["train", "dyna-q", "--threads", "0"], "--threads must be >= 1"),
        (["eval", "no/such/run"], "does not exist"),
        (["train", "dyna-q", "--resume", "no/such/run"], "does not exist"),
        (["train"], "required: algo"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, args, message):
    proc = run(*args, check=False, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_corrupt_checkpoint_and_existing_run(tmp_path):
    out = tmp_path / "run"
    run("train", "q-learning", "--steps", "500", "--out", str(out), "--quiet")
    proc = run("train", "q-learning", "--steps", "500", "--out", str(out), check=False)
    assert proc.returncode == 2 and "already holds a run" in proc.stderr
    (out / "checkpoint.pt").write_bytes(b"\x00garbage")
    proc = run("eval", str(out), check=False)
    assert proc.returncode == 2 and "corrupt" in proc.stderr and "Traceback" not in proc.stderr
    assert (out / "eval.csv").is_file()  # nothing written so far is lost


def test_killed_run_resumes_to_the_same_final_evaluation(tmp_path):
    common = [
        "train",
        "dyna-q-plus",
        "--env",
        "modelbased/ShortcutMaze-v0",
        "--steps",
        "40000",
        "--seed",
        "3",
        "--set",
        "checkpoint_every=2000",
        "--quiet",
    ]
    run(*common, "--out", str(tmp_path / "ref"))

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [*CLI, *common, "--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    ckpt = killed / "checkpoint.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    steps_at_kill = torch.load(ckpt, weights_only=True)["loop"]["env_steps"]
    assert 0 < steps_at_kill < 40000, "the run finished before it could be killed"

    run("train", "dyna-q-plus", "--resume", str(killed), "--quiet")

    def evals(d):
        return [(r["env_steps"], r["return_mean"], r["length_mean"]) for r in rows(d / "eval.csv")]

    assert evals(killed) == evals(tmp_path / "ref")
    assert len(evals(killed)) == 80
    ref_eps = [(r["env_steps"], r["length"]) for r in rows(tmp_path / "ref" / "episodes.csv")]
    assert [(r["env_steps"], r["length"]) for r in rows(killed / "episodes.csv")] == ref_eps
    assert "is complete" in run("train", "dyna-q-plus", "--resume", str(killed)).stdout


def test_eval_records_a_video(tmp_path):
    import imageio.v2 as imageio

    out = tmp_path / "run"
    run("train", "dyna-q", "--steps", "3000", "--out", str(out), "--quiet")
    video = tmp_path / "episode.mp4"
    run("eval", str(out), "--episodes", "1", "--video", str(video))
    reader = imageio.get_reader(str(video))
    assert reader.count_frames() == 15  # the start and 14 steps of the shortest path
    assert reader.get_data(0).shape == (6 * 32, 9 * 32, 3)


def test_train_csv_widens_when_an_agent_reports_a_new_scalar(tmp_path):
    from modelbased.runs import _CsvLog

    log = _CsvLog(tmp_path / "train.csv")
    log.write({"env_steps": 100, "loss": 1.0})
    log.write({"env_steps": 200, "loss": 0.5, "plan_s": 0.1})
    log.close()
    assert header(tmp_path / "train.csv") == ["env_steps", "loss", "plan_s"]
    assert [r["plan_s"] for r in rows(tmp_path / "train.csv")] == ["", "0.1"]


def test_nested_config_file_and_dotted_set_reach_the_run_config(tmp_path):
    import yaml

    (tmp_path / "pets.yaml").write_text("model: {hidden: 32, layers: 2}\nplanner: {kind: mppi}\n")
    out = tmp_path / "run"
    run("train", "pets", "--steps", "5", "--out", str(out), "--quiet", "--config",
        str(tmp_path / "pets.yaml"), "--set", "planner.population=20", "--set",
        "eval_episodes=0")  # fmt: skip
    config = yaml.safe_load((out / "config.yaml").read_text())["config"]
    assert (config["model"]["hidden"], config["model"]["layers"]) == (32, 2)
    assert config["model"]["max_epochs"] == 30  # the Pendulum preset's, kept
    assert config["planner"] == {"kind": "mppi", "population": 20, "iterations": 1,
                                 "temperature": 1.0, "sigma": 0.5, "smoothing": 0.0,
                                 "elites": 0, "adapt_std": False, "min_std": 0.05,
                                 "select": "mean"}  # fmt: skip
    listing = run("list", "pets").stdout
    assert "planner:  # the trajectory optimizer" in listing and "presets" in listing
