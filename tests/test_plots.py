"""Learning-curve plots: two panels, unready evaluations marked and kept off the y-range, runs of
one configuration as their median, --x wall, and one-line errors for bad input."""

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from modelbased.cli import main
from modelbased.plots import curve_figure, group_runs, group_series, y_limits
from modelbased.runs import EVAL_COLUMNS, RunRecorder, plot_runs, read_eval, read_run


def make_run(
    path: Path,
    evals: list[tuple],
    episodes: list[tuple] = (),
    seed: int = 0,
    config: dict | None = None,
    algo: str = "dyna-q",
    columns: list[str] = EVAL_COLUMNS,
) -> Path:
    """A run directory by hand: ``evals`` rows in ``columns`` order after env_steps,
    ``episodes`` rows of (env_steps, length, wall_time_s)."""
    path.mkdir(parents=True)
    info = {
        "algo": algo,
        "env_id": "modelbased/DynaMaze-v0",
        "seed": seed,
        "total_steps": 3000,
        "version": "0",
        "config": config or {"gamma": 0.95, "planning_steps": 5},
    }
    (path / "config.yaml").write_text(yaml.safe_dump(info))
    with (path / "eval.csv").open("w", newline="") as f:
        csv.writer(f).writerows([columns, *evals])
    with (path / "episodes.csv").open("w", newline="") as f:
        rows = [(s, k + 1, -1.0, n, w) for k, (s, n, w) in enumerate(episodes)]
        csv.writer(f).writerows(
            [["env_steps", "episode", "return", "length", "wall_time_s"], *rows]
        )
    return path


def maze_run(path: Path, seed: int = 0, lengths=(900, 600, 300, 14), **kw) -> Path:
    """A run whose return is 1 at every evaluation and whose episode length falls."""
    evals = [(500 * (i + 1), 0.5 * (i + 1), 1, 0, 5, n, 1) for i, n in enumerate(lengths)]
    episodes = [(700, 700, 0.7), (750, 50, 0.75), (800, 50, 0.8), (1500, 14, 1.5)]
    return make_run(path, evals, episodes, seed=seed, **kw)


def cliff_run(path: Path) -> Path:
    """Value iteration with a learned model: three random-policy evaluations, then -13."""
    evals = [
        (1000, 0.1, -8154, 0, 1, 927, 0),
        (2000, 0.2, -378657, 0, 1, 36216, 0),
        (3000, 0.3, -14, 0, 1, 14, 0),  # inside the ready range: hollow, not clipped
        (4000, 0.4, -13, 0, 1, 13, 1),
        (5000, 0.5, -13, 0, 1, 13, 1),
    ]
    episodes = [(3500, 3500, 0.35), (4013, 13, 0.41), (4026, 13, 0.42)]
    return make_run(path, evals, episodes, algo="value-iteration")


def test_two_panels_return_and_length(tmp_path):
    fig = curve_figure([read_run(maze_run(tmp_path / "run"))])
    ret, length = fig.axes
    assert ret.get_ylabel() == "eval return" and length.get_ylabel() == "episode length (steps)"
    assert length.get_xlabel() == "env steps"
    solid = [line for line in length.lines if line.get_linewidth() == 1.8]
    assert list(solid[0].get_ydata()) == [900, 600, 300, 14]  # the learning the return hides
    training = [line for line in length.lines if line.get_linewidth() == 0.8]
    assert list(training[0].get_ydata()) == [700, 50, 50, 14]
    assert length.get_ylim()[0] == 0 and length.get_ylim()[1] > 900
    assert "dyna-q run (1 run); band: ± eval std" in [t.get_text() for t in ret.get_legend().texts]


def test_policy_ready_column_written_and_read(tmp_path):
    from modelbased.agents.dynamic_programming import ValueIteration

    agent = ValueIteration(
        "FrozenLake-v1", model="learned", model_steps=200, eval_every=100, eval_episodes=2
    )
    assert not agent.policy_ready
    with RunRecorder(tmp_path / "vi", tensorboard=False) as recorder:
        agent.learn(400, callback=recorder)
    assert agent.policy_ready
    with (tmp_path / "vi" / "eval.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][:5] == ["env_steps", "wall_time_s", "return_mean", "return_std", "episodes"]
    assert rows[0][5:] == ["length_mean", "policy_ready"]
    assert [r[-1] for r in rows[1:]] == ["0", "1", "1", "1"]  # it plans at step 200
    assert read_eval(tmp_path / "vi")["policy_ready"].tolist() == [False, True, True, True]
    assert (tmp_path / "vi" / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_old_eval_csv_reads_as_all_ready(tmp_path):
    old = make_run(
        tmp_path / "old", [(500, 0.1, 1, 0, 5), (1000, 0.2, 1, 0, 5)], columns=EVAL_COLUMNS[:5]
    )
    data = read_eval(old)
    assert data["policy_ready"].tolist() == [True, True]
    assert np.isnan(data["length_mean"]).all()
    assert plot_runs([old], tmp_path / "old.png").is_file()


def test_unready_evaluations_marked_and_kept_off_the_y_range(tmp_path):
    fig = curve_figure([read_run(cliff_run(tmp_path / "cliff"))])
    ret, length = fig.axes
    lo, hi = ret.get_ylim()
    assert -20 < lo < -14 and -13 < hi < -10  # from the ready points (and the in-range one)
    hollow = [line for line in ret.lines if line.get_markerfacecolor() == "white"]
    assert {line.get_marker() for line in hollow} == {"o", "v"}
    clipped = next(line for line in hollow if line.get_marker() == "v")
    assert list(clipped.get_ydata()) == [lo, lo]  # on the axis edge
    notes = [t.get_text() for t in ret.texts]
    assert notes == ["\u25bd 2 not-ready evaluations below, lowest -378,657"]
    assert length.get_ylim()[1] < 20  # the 3500-step training episode started before ready
    assert any("not-ready" in t.get_text() for t in length.texts)
    legend = [t.get_text() for t in ret.get_legend().texts]
    assert "policy not ready" in legend
    spans = [p for p in ret.patches if p.get_facecolor()[:3] == pytest.approx((0.88,) * 3)]
    assert len(spans) == 1


def test_y_limits_use_every_point_when_none_is_ready(tmp_path):
    evals = [(1000, 0.1, -500, 0, 1, 50, 0), (2000, 0.2, -100, 0, 1, 10, 0)]
    series = group_series([read_run(make_run(tmp_path / "r", evals))])
    lo, hi = y_limits([series["return"]])
    assert lo < -500 and hi > -100


def test_three_seeds_of_one_configuration_give_one_median_line(tmp_path):
    runs = [
        maze_run(tmp_path / f"maze-s{seed}", seed=seed, lengths=lengths)
        for seed, lengths in enumerate(
            [(900, 600, 300, 14), (500, 400, 100, 16), (700, 200, 50, 14)]
        )
    ]
    other = maze_run(tmp_path / "other", config={"gamma": 0.9, "planning_steps": 5})
    curves = [read_run(r) for r in [*runs, other]]
    groups = group_runs(curves)
    assert [len(g) for g in groups] == [3, 1]
    length = group_series(groups[0])["length"]
    assert length.x.tolist() == [500, 1000, 1500, 2000]  # shared eval steps: nothing interpolated
    assert length.y.tolist() == [700, 400, 100, 14]
    assert length.lo.tolist() == [600, 300, 75, 14] and length.hi.tolist() == [800, 500, 200, 15]
    fig = curve_figure(curves)
    labels = [t.get_text() for t in fig.axes[0].get_legend().texts]
    assert labels == [
        "dyna-q maze-s* (3 runs); median, band: interquartile range over runs",
        "dyna-q other (1 run); band: ± eval std",
    ]
    medians = [line for line in fig.axes[1].lines if line.get_linewidth() == 1.8]
    assert len(medians) == 2  # one line per group, not per run


def test_x_wall(tmp_path):
    runs = [maze_run(tmp_path / f"s{seed}", seed=seed) for seed in (0, 1)]
    with (runs[1] / "eval.csv").open() as f:  # the second run is slower
        text = f.read().replace(",0.5,", ",0.75,")
    (runs[1] / "eval.csv").write_text(text)
    ret = group_series([read_run(r) for r in runs], x="wall")["return"]
    assert ret.x.tolist() == [0.75, 1.0, 1.5, 2.0]  # the union where both runs have data
    fig = curve_figure([read_run(runs[0])], x="wall")
    assert fig.axes[1].get_xlabel() == "wall-clock time (s)"
    out = tmp_path / "wall.png"
    assert main(["plot", str(runs[0]), str(runs[1]), "--x", "wall", "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_same_run_dir_twice_is_one_run(tmp_path):
    run = maze_run(tmp_path / "run")
    fig_path = plot_runs([run, tmp_path / "." / "run"], tmp_path / "c.png")
    assert fig_path.is_file()


def bad_inputs(tmp_path: Path) -> dict[str, list[str]]:
    good = maze_run(tmp_path / "good")
    (tmp_path / "no-eval").mkdir()
    header_only = make_run(tmp_path / "header-only", [])
    empty = make_run(tmp_path / "empty", [])
    (empty / "eval.csv").write_text("")
    garbled = make_run(tmp_path / "garbled", [("x", 1, 1, 0, 5, 14, 1)])
    png = str(tmp_path / "c.png")
    return {
        "does not exist": [str(tmp_path / "missing"), "--out", png],
        "has no eval.csv": [str(tmp_path / "no-eval"), "--out", png],
        "has no evaluations": [str(header_only), "--out", png],
        "no evaluations yet": [str(empty), "--out", png],
        "is not a number": [str(garbled), "--out", png],
        "nowhere does not exist": [str(good), "--out", str(tmp_path / "nowhere" / "c.png")],
        "it is a folder": [str(good), "--out", str(tmp_path)],
        "unknown image format '.xyz'": [str(good), "--out", str(tmp_path / "c.xyz")],
        "no file extension": [str(good), "--out", str(tmp_path / "curves")],
        "good/config.yaml is not a folder": [
            str(good),
            "--out",
            str(good / "config.yaml" / "c.png"),
        ],
        "invalid choice": [str(good), "--x", "episodes", "--out", png],
    }


def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys):
    for expected, args in bad_inputs(tmp_path).items():
        assert main(["plot", *args]) == 2, expected
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("modelbased: error: "), err
        assert expected in err, err
    assert not (tmp_path / "c.png").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_out_folder_exits_2(tmp_path, capsys):
    good = maze_run(tmp_path / "good")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        assert main(["plot", str(good), "--out", str(locked / "c.png")]) == 2
    finally:
        locked.chmod(0o700)
    assert "not writable" in capsys.readouterr().err


def test_a_failed_write_exits_2_and_leaves_no_temp_file(tmp_path, capsys, monkeypatch):
    from matplotlib.figure import Figure

    def refuse(self, path, **kw):
        Path(path).write_bytes(b"partial")
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Figure, "savefig", refuse)
    good = maze_run(tmp_path / "good")
    assert main(["plot", str(good), "--out", str(tmp_path / "c.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "c.png: Permission denied" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good"]


def test_a_resumed_old_run_reads_its_rows_before_the_column_as_ready(tmp_path):
    rows = [(500, 0.1, 1, 0, 5, 14, ""), (1000, 0.2, 1, 0, 5, 14, ""), (1500, 0.3, 1, 0, 5, 14, 0)]
    run = make_run(tmp_path / "resumed", rows)
    assert read_eval(run)["policy_ready"].tolist() == [True, True, False]
