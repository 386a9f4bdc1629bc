"""Sweeps: spec parsing and one-line errors, a trial's runs continuing from their checkpoints,
the sweep plot (all without Ray); a real Ray Tune sweep, interrupted and continued, and an
Optuna search (slow, with the `[sweep]` extra)."""

import builtins
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from modelbased.cli import main
from modelbased.core.callbacks import Callback
from modelbased.runs import RunRecorder, read_eval, write_config
from modelbased.stats import bootstrap_band, bootstrap_ci, iqm
from modelbased.sweep import (
    SweepError,
    SweepSpec,
    check_spec,
    label,
    open_sweep_dir,
    parse_grid,
    parse_seeds,
    run_seed,
    run_trial,
    summarize,
)

FAST = {"eval_every": 100, "eval_episodes": 2}


def spec(**kw) -> SweepSpec:
    base = {"algo": "q-learning", "env_id": "FrozenLake-v1", "seeds": (0, 1), "steps": 300}
    return SweepSpec(**(base | {"settings": dict(FAST)} | kw))


def test_seeds_and_grid_parse():
    assert parse_seeds("0-3") == (0, 1, 2, 3)
    assert parse_seeds("0,3,5") == (0, 3, 5)
    assert parse_seeds("0-2,1,7") == (0, 1, 2, 7)
    for bad in ("3-1", "a", "", "1-", "-2"):
        with pytest.raises(SweepError, match="--seeds"):
            parse_seeds(bad)
    assert parse_grid(["epsilon=0.1,0.2", "gamma=0.9"]) == {
        "epsilon": ["0.1", "0.2"],
        "gamma": ["0.9"],
    }
    for bad in (["epsilon"], ["=1"], ["epsilon=1,"], ["a=1", "a=2"]):
        with pytest.raises(SweepError):
            parse_grid(bad)


def test_spec_errors_name_the_key_before_anything_starts():
    with pytest.raises(Exception, match="epsilon"):
        check_spec(spec(grid={"epsilon": ["0.1", "2.0"]}))  # 2.0 is out of range
    with pytest.raises(Exception, match="nosuchkey"):
        check_spec(spec(grid={"nosuchkey": ["1"]}))
    with pytest.raises(SweepError, match="needs --search optuna"):
        check_spec(spec(grid={"epsilon": ["0.1:0.3"]}))
    with pytest.raises(SweepError, match="--trials"):
        check_spec(spec(search="optuna", grid={"epsilon": ["0.1:0.3"]}))
    with pytest.raises(SweepError, match="LO < HI"):
        check_spec(spec(search="optuna", trials=2, grid={"epsilon": ["0.3:0.1"]}))
    check_spec(spec(search="optuna", trials=2, grid={"epsilon": ["0.01:0.3:log"]}))
    with pytest.raises(SweepError, match="--metric"):
        check_spec(spec(metric="auc"))


def test_labels_are_directory_safe_and_short():
    assert label({}) == "default"
    assert label({"epsilon": "0.1", "model.hidden": 64}) == "epsilon=0.1,model.hidden=64"
    assert "/" not in label({"a": "x/y"})
    long = label({f"key{i}": "v" * 10 for i in range(10)})
    assert len(long) <= 80 and long != label({f"key{i}": "w" * 10 for i in range(10)})


@pytest.mark.parametrize(
    "argv",
    [
        ["sweep", "q-learning", "--env", "FrozenLake-v1", "--seeds", "3-1"],
        ["sweep", "q-learning", "--env", "FrozenLake-v1", "--grid", "epsilon"],
        ["sweep", "q-learning", "--env", "FrozenLake-v1", "--grid", "epsilon=5"],
        ["sweep", "q-learning", "--env", "FrozenLake-v1", "--jobs", "0"],
        ["sweep", "q-learning", "--env", "FrozenLake-v1", "--search", "optuna"],
        ["sweep", "nosuchalgo", "--env", "FrozenLake-v1"],
        ["sweep", "q-learning", "--env", "FrozenLake-v1", "--steps", "0"],
    ],
)
def test_bad_sweep_input_is_one_line_and_exit_2(argv, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("modelbased: error:") and len(err) <= 2  # + the sweep dir line
    assert not (tmp_path / "s").exists()


def test_without_ray_one_line_names_the_extra(monkeypatch, capsys, tmp_path):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    argv = ["sweep", "q-learning", "--env", "FrozenLake-v1", "--out", str(tmp_path / "s")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "modelbased: error: sweeps need Ray Tune and Optuna: pip install " + (
        "modelbased[sweep]"
    )


def test_a_sweep_dir_is_refused_for_another_sweep(tmp_path):
    open_sweep_dir(tmp_path / "s", spec())
    open_sweep_dir(tmp_path / "s", spec())  # the same sweep again: continue
    with pytest.raises(SweepError, match="another sweep"):
        open_sweep_dir(tmp_path / "s", spec(steps=400))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x").write_text("")
    with pytest.raises(Exception, match="not empty"):
        open_sweep_dir(tmp_path / "other", spec())


def test_an_unfinished_run_continues_and_a_finished_trial_is_not_run_again(tmp_path):
    import modelbased as mb

    # an earlier attempt killed after a checkpoint past step 150: a copy of its run dir then
    cut, full = tmp_path / "cut", tmp_path / "full"
    settings = {**FAST, "epsilon": 0.2, "checkpoint_every": 50}
    agent = mb.QLearning("FrozenLake-v1", settings, seed=1, device="cpu")
    full.mkdir()
    write_config(full, agent, 300)

    class CopyOnce(Callback):
        def on_checkpoint(self, agent):
            if agent.loop.env_steps >= 150 and not cut.exists():
                shutil.copytree(full, cut)

    with RunRecorder(full, plot=False) as rec:
        agent.learn(300, callback=[rec, CopyOnce()])
    assert cut.exists() and 150 <= mb.load(cut / "checkpoint.pt").loop.env_steps < 300
    s = spec(settings={**FAST, "checkpoint_every": 50})
    whole = run_seed(s, {"epsilon": 0.2}, 1, tmp_path / "whole")
    again = run_seed(s, {"epsilon": 0.2}, 1, cut)
    assert again["final_return"] == whole["final_return"]
    assert (read_eval(cut)["return_mean"] == read_eval(tmp_path / "whole")["return_mean"]).all()
    # a run dir without a checkpoint (killed before its first one) starts afresh
    bare = tmp_path / "bare"
    bare.mkdir()
    write_config(bare, agent, 300)
    (bare / "eval.csv").write_text("garbage\n")
    assert run_seed(s, {"epsilon": 0.2}, 1, bare)["final_return"] == whole["final_return"]

    out = tmp_path / "sweep"
    open_sweep_dir(out, s)
    first = run_trial(s, out, "t", {"epsilon": 0.2}, [0, 1])
    stamp = (out / "runs" / "epsilon=0.2-s0" / "eval.csv").stat().st_mtime_ns
    assert run_trial(s, out, "t", {"epsilon": 0.2}, [0, 1], proposed=True) == first
    assert (out / "runs" / "epsilon=0.2-s0" / "eval.csv").stat().st_mtime_ns == stamp
    rows = summarize(out)
    assert rows[0]["config"] == "epsilon=0.2" and rows[0]["seeds"] == 2
    assert (out / "summary.csv").read_text().startswith("config,seeds,median")


def test_plot_of_a_sweep_dir(tmp_path, capsys):
    s = spec(seeds=(0, 1, 2))
    out = tmp_path / "sweep"
    open_sweep_dir(out, s)
    for eps in (0.1, 0.5):
        run_trial(s, out, f"e{eps}", {"epsilon": eps}, [0, 1, 2])
    png = tmp_path / "sweep.png"
    assert main(["plot", str(out), "--out", str(png)]) == 0
    assert png.stat().st_size > 10_000
    assert main(["plot", str(out), str(out / "runs" / "epsilon=0.1-s0")]) == 2
    assert "not both" in capsys.readouterr().err


def test_bootstrap_band_matches_the_scalar_interval():
    import numpy as np

    x = np.array([[1.0, 5.0], [2.0, 3.0], [9.0, 4.0], [4.0, 4.0]])
    lo, hi = bootstrap_band(x, "iqm", resamples=500)
    for t in range(2):
        assert (lo[t], hi[t]) == bootstrap_ci(list(x[:, t]), "iqm", resamples=500)
        assert lo[t] <= iqm(list(x[:, t])) <= hi[t]


CLI = [sys.executable, "-m", "modelbased"]
GRID = ["q-learning", "--env", "FrozenLake-v1", "--steps", "3000", "--seeds", "0-1"]
GRID += ["--grid", "epsilon=0.1,0.3", "--set", "eval_every=500", "--set", "eval_episodes=5"]
GRID += ["--set", "checkpoint_every=200", "--jobs", "2"]


@pytest.mark.slow
def test_ray_sweep_interrupted_and_started_again(tmp_path):
    pytest.importorskip("ray")
    pytest.importorskip("optuna")
    out = tmp_path / "s"
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [*CLI, "sweep", *GRID, "--out", str(out)],
        env=env,
        text=True,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    end = time.monotonic() + 300
    while time.monotonic() < end and not list((out / "runs").glob("*/checkpoint.pt")):
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode in (0, 130), stderr
    started = {p.parent.name for p in (out / "runs").glob("*/checkpoint.pt")}
    assert started
    done = subprocess.run(
        [*CLI, "sweep", *GRID, "--out", str(out)],
        env=env,
        text=True,
        capture_output=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "epsilon=0.1" in done.stdout and "epsilon=0.3" in done.stdout
    for run in (out / "runs").iterdir():  # continued runs equal runs made in one go
        seed, eps = int(run.name[-1]), run.name.split(",")[0].split("=")[1].split("-")[0]
        ref = tmp_path / f"ref-{run.name}"
        subprocess.run(
            [
                *CLI,
                "train",
                "q-learning",
                "--env",
                "FrozenLake-v1",
                "--steps",
                "3000",
                "--seed",
                str(seed),
                "--set",
                f"epsilon={eps}",
                "--set",
                "eval_every=500",
                "--set",
                "eval_episodes=5",
                "--set",
                "checkpoint_every=200",
                "--out",
                str(ref),
                "--quiet",
            ],
            env=env,
            check=True,
            timeout=300,
        )
        assert list(read_eval(run)["return_mean"]) == list(read_eval(ref)["return_mean"])
    again = subprocess.run(
        [*CLI, "sweep", *GRID, "--out", str(out)],
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert again.returncode == 0 and "2 seeds" in again.stdout  # nothing left: no Ray started
    assert main(["eval", str(out / "runs" / "epsilon=0.1-s0"), "--episodes", "2"]) == 0


@pytest.mark.slow
def test_optuna_search_runs_its_trials(tmp_path):
    pytest.importorskip("ray")
    pytest.importorskip("optuna")
    out = tmp_path / "o"
    argv = [
        "sweep",
        "q-learning",
        "--env",
        "FrozenLake-v1",
        "--steps",
        "300",
        "--seeds",
        "0-1",
        "--grid",
        "epsilon=0.05:0.5:log",
        "--grid",
        "gamma=0.9,0.99",
        "--search",
        "optuna",
        "--trials",
        "3",
        "--set",
        "eval_every=100",
        "--set",
        "eval_episodes=2",
        "--jobs",
        "2",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    trials = list((out / "trials").glob("*.json"))
    assert 1 <= len(trials) <= 3  # Optuna may propose a configuration twice: trained once
    assert len(list((out / "runs").iterdir())) == 2 * len(trials)
    assert main(argv) == 0  # all done: nothing runs again
