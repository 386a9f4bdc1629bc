"""Run directories: what ``modelbased train`` writes, as a callback set handed to ``agent.learn``.

    runs/<algo>-<env>-<YYYYmmdd-HHMMSS>/
        config.yaml     resolved config, algorithm, env id, seed, total steps, package version
        eval.csv        env_steps,wall_time_s,return_mean,return_std,episodes,length_mean,
                        policy_ready (1: the policy acted from what was learned; 0: before)
        episodes.csv    env_steps,episode,return,length,wall_time_s
        train.csv       env_steps,wall_time_s, then the agent's own scalars
        tb/             TensorBoard events of the same scalars
        checkpoint.pt   the latest agent, written atomically
        curve.png       eval return and episode length vs env steps (modelbased.plots),
                        refreshed at each evaluation

:class:`RunRecorder` knows nothing of the algorithm: it records whatever the agent reports
through the callback interface. On resume, rows past the checkpoint are dropped (they are
recomputed identically) and TensorBoard purges its events past that step.
"""

from __future__ import annotations

import csv
import datetime
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from modelbased.core.agent import Agent
from modelbased.core.callbacks import Callback
from modelbased.core.checkpoint import safe_load
from modelbased.core.config import read_yaml
from modelbased.core.errors import CheckpointError, OutputError
from modelbased.core.loop import LoopState
from modelbased.core.version import package_version
from modelbased.plots import RunCurve, XAxis, check_output, curve_figure, save_figure

EVAL_COLUMNS = [
    "env_steps",
    "wall_time_s",
    "return_mean",
    "return_std",
    "episodes",
    "length_mean",
    "policy_ready",
]
EPISODE_COLUMNS = ["env_steps", "episode", "return", "length", "wall_time_s"]
CSV_FILES = ("eval.csv", "episodes.csv", "train.csv")


def default_run_dir(algo: str, env_id: str, root: str | Path = "runs") -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    env = re.sub(r"[^A-Za-z0-9_.-]+", "_", env_id)
    return Path(root) / f"{algo}-{env}-{stamp}"


def make_run_dir(run_dir: Path) -> None:
    """Create ``run_dir`` with its parents; an :class:`OutputError` of one line when it is a
    file, lies below one, or cannot be created or written (read-only, no permission)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise OutputError(f"cannot use {run_dir} as a run directory: it is a file")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create run directory {run_dir}: {exc.strerror or exc}") from None
    if not os.access(run_dir, os.W_OK):
        raise OutputError(f"cannot write in run directory {run_dir}: permission denied")


def write_config(run_dir: Path, agent: Agent, total_steps: int) -> None:
    make_run_dir(run_dir)
    data = {
        "algo": agent.algo,
        "env_id": agent.env_id,
        "seed": agent.seed,
        "total_steps": int(total_steps),
        "version": package_version(),
        "config": agent.config.to_dict(),
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's ``config.yaml``; a missing or unreadable one is a :class:`CheckpointError`."""
    path = Path(run_dir) / "config.yaml"
    if not Path(run_dir).is_dir():
        raise CheckpointError(f"run directory {run_dir} does not exist")
    if not path.is_file():
        raise CheckpointError(f"{run_dir} has no config.yaml: not a modelbased run directory")
    data = read_yaml(path, CheckpointError, "run config")
    if not (
        isinstance(data, dict)
        and isinstance(data.get("algo"), str)
        and isinstance(data.get("env_id"), str)
        and isinstance(data.get("config"), dict)
        and type(data.get("total_steps", 0)) is int
    ):
        raise CheckpointError(f"{path} is not a modelbased run config (damaged or foreign)")
    return data


def load_run(run_dir: str | Path, device: str = "auto") -> Agent:
    """The agent of a run directory, from its ``checkpoint.pt``, on ``device``; a checkpoint of
    another algorithm or env than the run's ``config.yaml`` is a :class:`CheckpointError`."""
    from modelbased.core.registry import agent_class

    info = read_config(run_dir)
    path = Path(run_dir) / "checkpoint.pt"
    data = safe_load(path)
    for key in ("algo", "env_id"):
        if data.get(key) != info[key]:
            raise CheckpointError(
                f"{path} holds a {data.get(key)!r} checkpoint but {run_dir} is a {info[key]!r} "
                f"run ({key}); it belongs to another run"
            )
    return agent_class(info["algo"]).from_checkpoint(data, device=device)


def truncate_after(run_dir: Path, env_steps: int) -> None:
    """Drop CSV rows recorded after ``env_steps`` (work a resumed run will redo)."""
    for name in CSV_FILES:
        path = run_dir / name
        if not path.is_file():
            continue
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            continue
        kept = [rows[0]] + [r for r in rows[1:] if r and int(float(r[0])) <= env_steps]
        with path.open("w", newline="") as f:
            csv.writer(f).writerows(kept)


class _CsvLog:
    """Append rows to a CSV file; the header is fixed by the file or by the first row."""

    def __init__(self, path: Path, columns: list[str] | None = None) -> None:
        self.path = path
        self.columns = columns
        if path.is_file() and path.stat().st_size > 0:
            with path.open(newline="") as f:
                self.columns = next(csv.reader(f))
            self.file = path.open("a", newline="")
        else:
            self.file = path.open("w", newline="")
            if columns:
                csv.writer(self.file).writerow(columns)

    def write(self, row: dict[str, Any]) -> None:
        if self.columns is None:
            self.columns = list(row)
            csv.writer(self.file).writerow(self.columns)
        new = [k for k in row if k not in self.columns]
        if new:  # an agent reported a new scalar: widen the header, keep the rows
            self._widen(new)
        csv.writer(self.file).writerow([_fmt(row.get(c, "")) for c in self.columns])
        self.file.flush()

    def _widen(self, new: list[str]) -> None:
        self.file.close()
        with self.path.open(newline="") as f:
            rows = list(csv.reader(f))[1:]
        self.columns = [*self.columns, *new]
        with self.path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(self.columns)
            writer.writerows(r + [""] * len(new) for r in rows)
        self.file = self.path.open("a", newline="")

    def close(self) -> None:
        self.file.close()


def _fmt(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


class RunRecorder(Callback):
    """Writes a run directory for any agent; use as a context manager or call :meth:`close`."""

    def __init__(self, run_dir: str | Path, tensorboard: bool = True, plot: bool = True) -> None:
        self.run_dir = Path(run_dir)
        make_run_dir(self.run_dir)
        self.tensorboard, self.plot = tensorboard, plot
        self._logs: dict[str, _CsvLog] = {}
        self._tb: Any = None

    def on_learn_start(self, agent: Agent, total_steps: int) -> None:
        step = agent.loop.env_steps
        if step > 0:
            truncate_after(self.run_dir, step)
        self._logs = {
            "eval": _CsvLog(self.run_dir / "eval.csv", EVAL_COLUMNS),
            "episodes": _CsvLog(self.run_dir / "episodes.csv", EPISODE_COLUMNS),
            "train": _CsvLog(self.run_dir / "train.csv"),
        }
        if self.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(
                str(self.run_dir / "tb"), purge_step=step + 1 if step else None
            )

    def on_eval(self, state: LoopState, stats: dict[str, Any]) -> None:
        row = {"env_steps": state.env_steps, "wall_time_s": state.wall_time_s} | {
            k: stats[k] for k in EVAL_COLUMNS[2:6]
        }
        row["policy_ready"] = int(bool(stats.get("policy_ready", True)))
        self._logs["eval"].write(row)
        self._scalars("eval", state.env_steps, {k: stats[k] for k in EVAL_COLUMNS[2:4]})
        if self.plot:
            plot_runs([self.run_dir], self.run_dir / "curve.png")

    def on_episode(self, state: LoopState, ret: float, length: int) -> None:
        self._logs["episodes"].write(
            {
                "env_steps": state.env_steps,
                "episode": state.episodes,
                "return": float(ret),
                "length": length,
                "wall_time_s": state.wall_time_s,
            }
        )
        self._scalars("episode", state.env_steps, {"return": ret, "length": length})

    def on_train(self, state: LoopState, scalars: dict[str, float]) -> None:
        self._logs["train"].write(
            {"env_steps": state.env_steps, "wall_time_s": state.wall_time_s} | scalars
        )
        self._scalars("train", state.env_steps, scalars)

    def on_checkpoint(self, agent: Agent) -> None:
        agent.save(self.run_dir / "checkpoint.pt")

    def on_learn_end(self, agent: Agent) -> None:
        agent.save(self.run_dir / "checkpoint.pt")

    def _scalars(self, group: str, step: int, values: dict[str, float]) -> None:
        if self._tb is not None:
            for key, value in values.items():
                self._tb.add_scalar(f"{group}/{key}", float(value), step)

    def close(self) -> None:
        for log in self._logs.values():
            log.close()
        if self._tb is not None:
            self._tb.close()

    def __enter__(self) -> RunRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as f:
            return list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CheckpointError(f"{path} is unreadable: {exc}") from exc


def _column(
    path: Path, rows: list[dict[str, str]], key: str, default: float | None = None
) -> np.ndarray:
    """Column ``key`` as floats; empty or absent cells are ``default`` (``None``: an error)."""
    out = []
    for i, row in enumerate(rows, start=2):
        cell = row.get(key)
        if cell in (None, "") and default is not None:
            out.append(default)
            continue
        try:
            out.append(float({"true": 1, "false": 0}.get(str(cell).lower(), cell)))
        except (TypeError, ValueError):
            raise CheckpointError(
                f"{path} line {i}: {key}={cell!r} is not a number; is it a modelbased eval.csv?"
            ) from None
    return np.array(out, dtype=float)


def read_eval(run_dir: str | Path) -> dict[str, np.ndarray]:
    """A run's ``eval.csv`` as arrays: ``env_steps``, ``wall_time_s``, ``return_mean``,
    ``return_std``, ``length_mean`` (NaN where not recorded) and bool ``policy_ready`` (True
    where not recorded: runs written before the column). A missing run directory, a missing,
    malformed or empty ``eval.csv`` is a :class:`CheckpointError`."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory {run_dir} does not exist")
    path = run_dir / "eval.csv"
    if not path.is_file():
        raise CheckpointError(f"{run_dir} has no eval.csv (not a run directory, or not started)")
    rows = _read_csv(path)
    if not rows:
        raise CheckpointError(f"{path} has no evaluations yet")
    data = {k: _column(path, rows, k) for k in EVAL_COLUMNS[:4]}
    data["length_mean"] = _column(path, rows, "length_mean", np.nan)
    data["policy_ready"] = _column(path, rows, "policy_ready", 1.0) != 0
    return data


def read_episodes(run_dir: str | Path) -> dict[str, np.ndarray]:
    """A run's ``episodes.csv`` as arrays ``env_steps``, ``length``, ``wall_time_s`` (empty when
    the file is missing)."""
    path = Path(run_dir) / "episodes.csv"
    rows = _read_csv(path) if path.is_file() else []
    return {k: _column(path, rows, k) for k in ("env_steps", "length", "wall_time_s")}


def read_run(run_dir: str | Path) -> RunCurve:
    """The curves of a run directory, with its algorithm, env id and config when its
    ``config.yaml`` is readable (runs are grouped by them)."""
    evals = read_eval(run_dir)
    try:
        info = read_config(run_dir)
    except CheckpointError:
        info = {}
    return RunCurve(
        name=Path(run_dir).resolve().name,
        evals=evals,
        episodes=read_episodes(run_dir),
        algo=info.get("algo"),
        env_id=info.get("env_id"),
        config=info.get("config"),
    )


def plot_runs(run_dirs: list[str | Path], out: str | Path, x: XAxis = "steps") -> Path:
    """Draw the learning curves of ``run_dirs`` into ``out`` (see :mod:`modelbased.plots`):
    return and episode length against env steps (``x="steps"``) or wall-clock time
    (``"wall"``), runs of one configuration as their median with the interquartile range; the
    same directory given twice is drawn once. Bad run dirs are a :class:`CheckpointError`, an
    unwritable ``out`` an :class:`~modelbased.core.errors.OutputError`."""
    check_output(Path(out))
    unique = list(dict.fromkeys(Path(d).resolve() for d in run_dirs))
    fig = curve_figure([read_run(d) for d in unique], x)
    return save_figure(fig, out)
