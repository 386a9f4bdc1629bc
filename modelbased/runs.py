"""Run directories: what ``modelbased train`` writes, as a callback set handed to ``agent.learn``.

    runs/<algo>-<env>-<YYYYmmdd-HHMMSS>/
        config.yaml     resolved config, algorithm, env id, seed, total steps, package version
        eval.csv        env_steps,wall_time_s,return_mean,return_std,episodes[,length_mean]
        episodes.csv    env_steps,episode,return,length,wall_time_s
        train.csv       env_steps,wall_time_s, then the agent's own scalars
        tb/             TensorBoard events of the same scalars
        checkpoint.pt   the latest agent, written atomically
        curve.png       eval return vs env steps, refreshed at each evaluation

:class:`RunRecorder` knows nothing of the algorithm: it records whatever the agent reports
through the callback interface. On resume, rows past the checkpoint are dropped (they are
recomputed identically) and TensorBoard purges its events past that step.
"""

from __future__ import annotations

import csv
import datetime
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import yaml  # noqa: E402

from modelbased.core.agent import Agent  # noqa: E402
from modelbased.core.callbacks import Callback  # noqa: E402
from modelbased.core.errors import CheckpointError  # noqa: E402
from modelbased.core.loop import LoopState  # noqa: E402
from modelbased.core.version import package_version  # noqa: E402

EVAL_COLUMNS = ["env_steps", "wall_time_s", "return_mean", "return_std", "episodes", "length_mean"]
EPISODE_COLUMNS = ["env_steps", "episode", "return", "length", "wall_time_s"]
CSV_FILES = ("eval.csv", "episodes.csv", "train.csv")


def default_run_dir(algo: str, env_id: str, root: str | Path = "runs") -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    env = re.sub(r"[^A-Za-z0-9_.-]+", "_", env_id)
    return Path(root) / f"{algo}-{env}-{stamp}"


def write_config(run_dir: Path, agent: Agent, total_steps: int) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
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
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CheckpointError(f"{path} is missing or unreadable: {exc}") from exc
    if not isinstance(data, dict) or not {"algo", "env_id", "config"} <= set(data):
        raise CheckpointError(f"{path} is not a modelbased run config")
    return data


def load_run(run_dir: str | Path, device: str = "auto") -> Agent:
    """The agent of a run directory, from its ``checkpoint.pt``, on ``device``."""
    read_config(run_dir)
    return Agent.load(Path(run_dir) / "checkpoint.pt", device=device)


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
        self.run_dir.mkdir(parents=True, exist_ok=True)
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
            k: stats[k] for k in EVAL_COLUMNS[2:]
        }
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


def read_eval(run_dir: str | Path) -> dict[str, list[float]]:
    path = Path(run_dir) / "eval.csv"
    if not path.is_file():
        raise CheckpointError(f"{run_dir} has no eval.csv")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows] for k in ("env_steps", "return_mean", "return_std")}


def plot_runs(run_dirs: list[Path], out: str | Path) -> Path:
    """Eval return (mean ± std over evaluation episodes) vs env steps, one line per run."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for run_dir in run_dirs:
        data = read_eval(run_dir)
        try:
            label = f"{read_config(run_dir)['algo']} ({Path(run_dir).name})"
        except CheckpointError:
            label = Path(run_dir).name
        x, y, s = data["env_steps"], data["return_mean"], data["return_std"]
        ax.plot(x, y, marker="o" if len(x) < 30 else None, label=label)
        ax.fill_between(
            x,
            [a - b for a, b in zip(y, s, strict=True)],
            [a + b for a, b in zip(y, s, strict=True)],
            alpha=0.2,
        )
    ax.set_xlabel("env steps")
    ax.set_ylabel("eval return")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(out)
    return out
