"""Property-based fuzz of the command line (hypothesis), in process: verbs, flags, ``--set``
values, ``--config`` YAML files, run-dir contents and checkpoint bytes. Whatever the input: exit
code 0 or 2, at most one stderr line on 2, never a traceback, no file outside the command's
output touched, and a checkpoint that loaded before still loads after.

The budget is fixed (``MAX_EXAMPLES``, derandomized) so the default suite stays fast; the number
of cases tried is printed at the end (``pytest -s``) and kept in ``CASES``.
"""

import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelbased.cli import main
from modelbased.core.checkpoint import safe_load
from modelbased.core.errors import CheckpointError

MAX_EXAMPLES = 150
CASES: list[int] = []

ALGOS = ["q-learning", "dyna-q", "value-iteration", "sac", "pets", "nope", "Q-Learning", ""]
# (valid values first: hypothesis draws the first elements most often)
ENVS = ["FrozenLake-v1", "Taxi-v3", "Pendulum-v1", "CliffWalking-v1", "nope-v0", "", "a/b"]
KEYS = ["eval_every", "eval_episodes", "step_size", "gamma", "epsilon", "checkpoint_minutes"]
KEYS += ["log_every", "planning_steps", "model.hidden", "bogus", "a.b", ".", "=", "x=y"]
SMALL = ["2", "10", "0.5", "1", "0", "-1", "3", "nan", "inf", "-inf", "true", "1e-3", "1_0"]
WORDS = ["abc", "", "[1, 2]", "{a: 1}", "null", "~", "é", "1e9x", "\x00", "--x"]
SAFE_TEXT = st.text(max_size=6)  # only for keys where any number is cheap
NUMBERISH = st.sampled_from(SMALL + WORDS)


def paths(ws: Path) -> st.SearchStrategy[str]:
    names = ["out", "run", "out.png", "other", "afile", "afile/sub", "missing/deep", "run/x.png"]
    names += ["out.xyz", "missing/x.png", "afile/x.png", "cfg.yaml", "", "."]
    return st.sampled_from([str(ws / n) if n else "" for n in names])


def set_values() -> st.SearchStrategy[str]:
    cheap = st.sampled_from(["step_size", "gamma", "epsilon", "bogus", "a.b", "model.hidden"])
    return st.one_of(
        st.tuples(st.sampled_from(KEYS), NUMBERISH).map(lambda kv: f"{kv[0]}={kv[1]}"),
        st.tuples(cheap, SAFE_TEXT).map(lambda kv: f"{kv[0]}={kv[1]}"),
        st.sampled_from(["noequals", "=3", " = ", "a==b"]),
    )


def yaml_texts() -> st.SearchStrategy[str]:
    scalars = st.one_of(
        st.integers(-3, 40), st.floats(allow_nan=True), st.text(max_size=5), st.booleans()
    )
    values = st.one_of(scalars, st.lists(scalars, max_size=3), st.none())
    docs = st.one_of(
        st.dictionaries(st.sampled_from(KEYS + ["algo", "config", "total_steps"]), values),
        st.lists(values, max_size=3),
        scalars,
    )
    raw = [
        "",
        "a: [1, 2\nb: {",
        "- - -\n:",
        "key: value: other",
        "\t\tx",
        "!!python/object:os.system",
    ]
    return st.one_of(docs.map(yaml.safe_dump), st.sampled_from(raw), st.text(max_size=40))


@st.composite
def commands(draw, ws: Path) -> list[str]:
    p = paths(ws)
    run = st.one_of(st.sampled_from([str(ws / "run"), str(ws / "other")]), p)  # half real runs
    verb = draw(st.sampled_from(["train", "train", "eval", "plot", "list", "arena", "diagnose"]))
    argv = [verb]
    if verb == "train":
        if draw(st.booleans()):
            argv += ["--resume", draw(run)]
            argv.insert(1, draw(st.sampled_from(["q-learning", *ALGOS])))
        else:
            argv.append(draw(st.sampled_from(ALGOS)))
            steps = ["25", "60", "1", "90", "0", "-1", "x", "1e2"]
            argv += ["--steps", draw(st.sampled_from(steps))]
            if draw(st.booleans()):
                argv += ["--env", draw(st.sampled_from(ENVS))]
            argv += ["--out", draw(p)] if draw(st.integers(0, 4)) else []
        resume = "--resume" in argv  # which takes no settings: mostly none, to get past that
        if not resume or draw(st.integers(0, 4)) == 4:
            for value in draw(st.lists(set_values(), max_size=3)):
                argv += ["--set", value]
            if draw(st.booleans()):
                argv += ["--config", str(ws / "cfg.yaml")]
        extra = [[], ["--quiet"], ["--quiet"], ["--seed", "3"], ["--seed", "x"], ["--threads", "0"]]
        argv += draw(st.sampled_from(extra))
    elif verb == "eval":
        argv.append(draw(run))
        argv += [
            "--episodes",
            draw(st.one_of(st.just("2"), st.sampled_from(["3", "0", "-1", "x"]))),
        ]
        argv += draw(st.sampled_from([[], ["--json"], ["--seed", "7"], ["--device", "tpu"]]))
        argv += ["--video", draw(p) + ".mp4"] if draw(st.integers(0, 5)) == 5 else []
    elif verb == "plot":
        argv += draw(st.lists(run, min_size=1, max_size=3))
        argv += ["--out", draw(p)] if draw(st.booleans()) else []
        argv += draw(st.sampled_from([[], [], ["--x", "wall"], ["--x", "time"]]))
    elif verb == "list":
        argv += draw(st.sampled_from([[], ["pets"], ["nope"], ["mcts", "extra"]]))
    elif verb == "arena":
        players = ["random", "alphabeta:1", "mcts:4", "minimax", "mcts:x", "nope", str(ws / "run")]
        argv += [draw(st.sampled_from(players)), draw(st.sampled_from(players))]
        argv += ["--games", draw(st.one_of(st.just("2"), st.sampled_from(["1", "0", "-3", "x"])))]
        argv += draw(st.sampled_from([[], ["--env", "FrozenLake-v1"], ["--simulations", "0"]]))
    else:  # diagnose: only inputs refused before any fitting, to keep the budget
        argv += ["--env", draw(st.sampled_from(["FrozenLake-v1", "nope-v0", "Taxi-v3"]))]
        argv += draw(st.sampled_from([[], ["--steps", "-5"], ["--set", "hidden=x"]]))
    if draw(st.integers(0, 19)) == 19:
        argv.insert(draw(st.integers(0, len(argv))), draw(st.sampled_from(["--bogus", "-h0", "x"])))
    return argv


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished runs: q-learning (the one fuzzed) and dyna-q (a foreign checkpoint)."""
    root = tmp_path_factory.mktemp("fuzz-runs")
    for algo in ("q-learning", "dyna-q"):
        argv = ["train", algo, "--env", "FrozenLake-v1", "--steps", "120", "--quiet"]
        with contextlib.redirect_stdout(io.StringIO()):
            assert main([*argv, "--out", str(root / algo), "--set", "eval_every=60"]) == 0
    return root


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for path in root.rglob("*"):
        if path.is_file():
            st_ = path.stat()
            out[str(path)] = (st_.st_size, st_.st_mtime_ns)
    return out


def allowed_outputs(argv: list[str], ws: Path) -> list[Path]:
    """What the command may write: train's run dir (``--out``, ``--resume`` or the default
    ``runs/``), plot's ``--out`` (or ``curves.png``), eval's ``--video``, diagnose's ``runs/``."""

    def flag(name: str) -> str | None:
        return argv[argv.index(name) + 1] if name in argv[:-1] else None

    verb = next((a for a in argv if a in ("train", "eval", "plot", "diagnose")), "")
    out = [ws / "runs"] if verb in ("train", "diagnose") else []
    for name in ("--out", "--resume", "--video"):
        if flag(name):
            out.append(Path(flag(name)).absolute())
    if verb == "plot":
        out.append(ws / "curves.png")
    return out


def loads(path: Path) -> bool:
    try:
        safe_load(path)
        return True
    except CheckpointError:
        return False


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def fuzz(runs: Path, data: st.DataObject) -> None:
    """One case: a workspace with two runs, a file and a YAML file, some of them damaged, and
    one command line over it."""
    home, base = os.getcwd(), Path(tempfile.mkdtemp(prefix="fuzz-"))
    ws = base / "ws"
    try:
        ws.mkdir()
        shutil.copytree(runs / "q-learning", ws / "run")
        shutil.copytree(runs / "dyna-q", ws / "other")
        (ws / "afile").write_text("a file\n")
        (ws / "cfg.yaml").write_text(data.draw(yaml_texts(), label="cfg.yaml"))
        good = (ws / "run" / "checkpoint.pt").read_bytes()
        damage = data.draw(st.sampled_from(["", "", "config", "checkpoint", "csv", "all"]))
        if damage in ("config", "all"):
            head = "algo: q-learning\nenv_id: FrozenLake-v1\nconfig: {}\n"
            foreign = st.sampled_from(
                [
                    "algo: dyna-q\nenv_id: x\nconfig: {}\n",
                    head,  # no total_steps
                    head + "total_steps: 5\n",  # a finished run
                    head + "total_steps: 1e3\n",
                    head + "config: {eval_every: 0}\n",
                ]
            )
            text = data.draw(st.one_of(yaml_texts(), foreign), label="run/config.yaml")
            (ws / "run" / "config.yaml").write_text(text)
        if damage in ("checkpoint", "all"):
            ckpt = data.draw(
                st.one_of(
                    st.integers(0, len(good) - 1).map(lambda n: good[:n]),
                    st.binary(max_size=64),
                    st.just((runs / "dyna-q" / "checkpoint.pt").read_bytes()),
                ),
                label="checkpoint bytes",
            )
            (ws / "run" / "checkpoint.pt").write_bytes(ckpt)
        if damage in ("csv", "all"):
            (ws / "run" / "eval.csv").write_text(data.draw(st.text(max_size=30), label="eval.csv"))
        argv = data.draw(commands(ws), label="argv")

        loaded_before = loads(ws / "run" / "checkpoint.pt")
        before = snapshot(ws)
        os.chdir(ws)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        CASES.append(1)
        stderr = err.getvalue()
        assert code in (0, 2), (argv, code, stderr)
        assert "Traceback" not in stderr + out.getvalue(), argv
        if code == 2:
            assert len(stderr.strip().splitlines()) == 1, (argv, stderr)
            assert stderr.startswith("modelbased: error: "), (argv, stderr)
        allowed = allowed_outputs(argv, ws)
        after = snapshot(ws)
        for path in set(before) | set(after):
            if before.get(path) != after.get(path):
                assert any(Path(path).is_relative_to(a) for a in allowed), (argv, path)
        if loaded_before:
            assert loads(ws / "run" / "checkpoint.pt"), argv
    finally:
        os.chdir(home)
        shutil.rmtree(base, ignore_errors=True)


def test_any_input_exits_0_or_2_with_one_line(runs):
    CASES.clear()
    fuzz(runs)
    print(f"\nCLI fuzz: {len(CASES)} cases tried, none failed")
    assert len(CASES) >= MAX_EXAMPLES
