"""Every CLI failure is one line with exit 2 (file-system errors included), and the API raises
the project's own exceptions for bad arguments."""

import os
import stat
from pathlib import Path

import numpy as np
import pytest

import modelbased as mb
from modelbased import cli
from modelbased.cli import main
from modelbased.core.checkpoint import shorten

TRAIN = ["train", "q-learning", "--env", "FrozenLake-v1", "--steps", "20", "--quiet"]


def one_error_line(capsys, argv, *words) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("modelbased: error: "), err
    for word in words:
        assert word in err, err
    return err


def test_out_at_or_below_a_file(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    one_error_line(capsys, [*TRAIN, "--out", str(afile)], "it is a file")
    one_error_line(capsys, [*TRAIN, "--out", str(afile / "run")], "Not a directory")
    assert afile.read_text() == "x"


def test_read_only_output_location(tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as root: permissions do not stop writes (see the /sys case)")
        one_error_line(capsys, [*TRAIN, "--out", str(ro / "run")], "Permission denied")
        monkeypatch.chdir(ro)  # the default runs/ in a read-only working directory
        one_error_line(capsys, TRAIN, "runs")
    finally:
        ro.chmod(stat.S_IRWXU)


def test_unwritable_file_system(capsys):
    """/sys refuses new files even to root: the read-only case that root cannot bypass."""
    target = Path("/sys/modelbased-test-run")
    if not Path("/sys").is_dir() or not _refuses(target):
        pytest.skip("no file system here that refuses writes to this user")
    one_error_line(capsys, [*TRAIN, "--out", str(target)], "cannot create run directory")


def _refuses(path: Path) -> bool:
    try:
        path.mkdir()
    except OSError:
        return True
    path.rmdir()
    return False


def test_bad_yaml_and_empty_config(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\nb: {")
    one_error_line(capsys, [*TRAIN, "--config", str(bad)], "line 2, column 2")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert main([*TRAIN, "--config", str(empty), "--out", str(tmp_path / "run")]) == 0
    (tmp_path / "run" / "config.yaml").write_text("algo: [\n  x: 1\n")
    one_error_line(capsys, ["eval", str(tmp_path / "run")], "config.yaml is not valid YAML")
    (tmp_path / "run" / "config.yaml").write_text("algo: 3\n")
    one_error_line(capsys, ["eval", str(tmp_path / "run")], "not a modelbased run config")
    (tmp_path / "run" / "config.yaml").write_text(
        "algo: q-learning\nenv_id: FrozenLake-v1\nconfig: {}\n"
    )
    resume = ["train", "q-learning", "--resume", str(tmp_path / "run")]
    one_error_line(capsys, resume, "has no total_steps")


def test_deprecated_env_is_one_line(capsys):
    one_error_line(capsys, ["train", "q-learning", "--env", "Taxi-v3"], "Taxi-v4")


def test_checkpoint_errors_are_cut_at_words(tmp_path, capsys):
    assert shorten("word " * 50, 40).endswith("word ...")
    run = tmp_path / "run"
    assert main([*TRAIN, "--out", str(run)]) == 0
    (run / "checkpoint.pt").write_bytes(b"PK\x03\x04" + b"junk " * 100)
    err = one_error_line(capsys, ["eval", str(run)], "is corrupt or not a modelbased checkpoint")
    assert err.rstrip().endswith(")")


def test_api_raises_project_errors():
    agent = mb.QLearning("FrozenLake-v1")
    for episodes in (0, -1, 2.5, True):
        with pytest.raises(mb.ConfigError, match="episodes"):
            agent.evaluate(episodes)
    for obs in (10**6, -1, "a", np.zeros(2)):
        with pytest.raises(mb.DataError, match="obs"):
            agent.act(obs)
    assert agent.act(np.int64(3)) in range(4)
    with pytest.raises(mb.ConfigError, match="seed"):
        mb.QLearning("FrozenLake-v1", seed="x")
    with pytest.raises(mb.ConfigError, match="total_steps"):
        agent.learn("10")
    sac = mb.SAC("Pendulum-v1")
    with pytest.raises(mb.DataError, match=r"shape \(5,\)"):
        sac.act(np.zeros(5))
    assert sac.act([0.0, 1.0, 0.0]).shape == (1,)  # any real dtype, lists too


def test_ctrl_c_outside_training_is_one_line(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "list", interrupted)
    assert main(["list"]) == 130
    assert capsys.readouterr().err == "modelbased: interrupted\n"
