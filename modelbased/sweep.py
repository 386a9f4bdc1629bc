"""Sweeps over seeds and settings on Ray Tune: ``modelbased sweep`` (the optional extra
``[sweep]``).

    SWEEP_DIR/
        sweep.yaml        what was asked: algorithm, env, seeds, steps, fixed settings, grid or
                          search space, metric (a restart must ask the same)
        runs/LABEL-sS/    one ordinary run directory per configuration and seed (eval, plot
                          and ``train --resume`` work on it); LABEL names the configuration
        trials/NAME.json  one per finished trial: its settings and results (what a restart skips)
        summary.csv       per configuration: seeds done, median, IQM and bootstrap 95% interval
                          of the metric over seeds
        ray/              Ray Tune's own experiment files

A grid sweep (``--grid key=v1,v2`` ..., or none: the defaults) is one Tune trial per
configuration and seed, so seeds run in parallel. An Optuna search (``--search optuna --trials
N``) is one trial per configuration, which trains its seeds one after another and reports the
median of the metric over them; Optuna picks the next configuration from the finished ones.
The sweep directory is the truth on restart: finished trials are not started again (their
results are told to Optuna), and an unfinished trial's runs continue from their checkpoints
(or start afresh when none was written yet). Trials run at one torch thread each.

This module works without Ray (spec parsing, trial bodies, reading a sweep directory);
:mod:`modelbased.sweep_tune` drives Ray Tune and imports ``ray`` only when a sweep runs.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import shutil
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelbased.core.config import read_yaml
from modelbased.core.errors import ModelbasedError, OutputError
from modelbased.core.registry import agent_class
from modelbased.runs import make_run_dir, read_config, read_eval
from modelbased.stats import bootstrap_ci, iqm, median

METRICS = ("final_return", "mean_return")  # last evaluation; mean of all evaluations (area)
INSTALL_HINT = "sweeps need Ray Tune and Optuna: pip install modelbased[sweep]"
MAX_LABEL = 80


class SweepError(ModelbasedError):
    """A sweep that cannot run as asked (bad spec, another sweep in the directory, no Ray)."""


class SweepInterrupted(KeyboardInterrupt):
    """The sweep stopped before all its trials finished (Ctrl-C: Ray Tune stops the trials;
    their run dirs keep their last checkpoints)."""

    def __init__(self, unfinished: int) -> None:
        super().__init__(f"{unfinished} trials unfinished")
        self.unfinished = unfinished


# -- what was asked ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepSpec:
    """A sweep as asked on the command line (plain data, stored as ``sweep.yaml``).

    ``grid`` maps config keys to value strings: with ``search="grid"`` every combination is a
    configuration; with ``"optuna"`` a list is a categorical choice and ``"lo:hi"`` (``":log"``
    appended: log-uniform) a range, integer when both ends are."""

    algo: str
    env_id: str
    seeds: tuple[int, ...]
    steps: int
    settings: dict[str, Any] = field(default_factory=dict)  # fixed --set/--config overrides
    grid: dict[str, list[str]] = field(default_factory=dict)
    search: str = "grid"
    trials: int = 0  # Optuna: configurations to try
    metric: str = "final_return"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``sweep.yaml``."""
        out = asdict(self)
        out["seeds"] = list(self.seeds)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(**{**data, "seeds": tuple(data["seeds"])})


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0-9"``, ``"0,3,5"`` or ``"0-3,7"`` -> the seeds in order, each once."""
    seeds: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m or (m[2] is not None and int(m[2]) < int(m[1])):
            raise SweepError(f"--seeds {text!r}: give seeds like 0-9, 0,3,5 or 0-3,7")
        last = int(m[2]) if m[2] is not None else int(m[1])
        seeds += [s for s in range(int(m[1]), last + 1) if s not in seeds]
    return tuple(seeds)


def parse_grid(pairs: Iterable[str]) -> dict[str, list[str]]:
    """``["sac.tau=0.005,0.01", "batch_size=64"]`` -> ``{"sac.tau": ["0.005", "0.01"], ...}``."""
    grid: dict[str, list[str]] = {}
    for pair in pairs:
        key, eq, values = pair.partition("=")
        items = [v.strip() for v in values.split(",")]
        if not eq or not key.strip() or not all(items):
            raise SweepError(f"--grid {pair!r}: give KEY=V1,V2,... (a config key and its values)")
        if key.strip() in grid:
            raise SweepError(f"--grid {key.strip()} is given twice")
        grid[key.strip()] = items
    return grid


def parse_range(values: list[str]) -> tuple[float, float, bool, bool] | None:
    """``["lo:hi"]`` or ``["lo:hi:log"]`` -> (lo, hi, integer, log); ``None`` for a list."""
    if len(values) != 1 or ":" not in values[0]:
        return None
    parts = values[0].split(":")
    log = len(parts) == 3 and parts[2] == "log"
    try:
        lo, hi = float(parts[0]), float(parts[1])
    except (ValueError, IndexError):
        lo = hi = math.nan
    if len(parts) not in (2, 3) or (len(parts) == 3 and not log) or not lo < hi:
        raise SweepError(f"range {values[0]!r}: give LO:HI or LO:HI:log with LO < HI")
    if log and lo <= 0:
        raise SweepError(f"range {values[0]!r}: a log range needs LO > 0")
    integer = all(re.fullmatch(r"[+-]?\d+", p) for p in parts[:2])
    return lo, hi, integer, log


def configurations(spec: SweepSpec) -> list[dict[str, str]]:
    """A grid sweep's configurations: every combination of the grid's values (``[{}]``: none)."""
    keys = list(spec.grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*spec.grid.values())]


def check_spec(spec: SweepSpec) -> None:
    """Raise :class:`SweepError`/:class:`ConfigError` (one line) before anything starts: an
    unknown algorithm, a bad key or value in any configuration, a range outside Optuna."""
    cls = agent_class(spec.algo)
    if spec.steps <= 0:
        raise SweepError(f"--steps must be positive, got {spec.steps}")
    if spec.metric not in METRICS:
        raise SweepError(f"--metric {spec.metric!r}: one of {', '.join(METRICS)}")
    if spec.search == "grid":
        if spec.trials:
            raise SweepError("--trials goes with --search optuna")
        ranged = [k for k, v in spec.grid.items() if parse_range(v) is not None]
        if ranged:
            raise SweepError(f"--grid {ranged[0]}: a LO:HI range needs --search optuna")
        points: list[dict[str, Any]] = list(configurations(spec))
    elif spec.search == "optuna":
        if spec.trials < 1:
            raise SweepError("--search optuna needs --trials N (N >= 1)")
        if not spec.grid:
            raise SweepError("--search optuna needs a search space: --grid KEY=V1,V2 or LO:HI")
        points = []
        for key, values in spec.grid.items():  # each end of each range, each choice
            r = parse_range(values)
            ends: list[Any] = values if r is None else [_number(r[0], r[2]), _number(r[1], r[2])]
            points += [{key: v} for v in ends]
    else:
        raise SweepError(f"--search {spec.search!r}: grid (default) or optuna")
    for point in points:
        cls.Config.resolve(spec.env_id, {**spec.settings, **point})


def _number(value: float, integer: bool) -> int | float:
    return int(round(value)) if integer else float(f"{value:.4g}")


def label(params: dict[str, Any]) -> str:
    """A configuration's directory-safe name: ``key=value`` joined by ``,`` (``default`` for
    none); long ones are cut and end in a hash of the whole."""
    if not params:
        return "default"
    text = ",".join(f"{k}={v}" for k, v in params.items())
    text = re.sub(r"[^A-Za-z0-9_.=,+-]+", "_", text)
    if len(text) > MAX_LABEL:
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        text = f"{text[: MAX_LABEL - 9]}~{digest}"
    return text


# -- the sweep directory ----------------------------------------------------------------------
def open_sweep_dir(out: Path, spec: SweepSpec) -> None:
    """Create ``out`` with ``sweep.yaml``, or check that the sweep already there is the same
    (so starting a sweep again continues it); :class:`SweepError` if it is another."""
    make_run_dir(out)
    path = out / "sweep.yaml"
    if path.is_file():
        old = read_yaml(path, SweepError, "sweep file")
        if old != spec.to_dict():
            raise SweepError(
                f"{out} holds another sweep ({path}); start the same command again to continue "
                "it, or give another --out"
            )
        return
    if any(out.iterdir()):
        raise OutputError(f"{out} is not empty and holds no sweep.yaml: give another --out")
    path.write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))


def read_spec(out: Path) -> SweepSpec:
    """The spec of the sweep directory ``out``."""
    data = read_yaml(out / "sweep.yaml", SweepError, "sweep file")
    try:
        return SweepSpec.from_dict(data)
    except (TypeError, KeyError) as exc:
        raise SweepError(f"{out}/sweep.yaml is not a modelbased sweep file: {exc}") from None


def is_sweep_dir(path: str | Path) -> bool:
    """Whether ``path`` is a sweep directory (holds ``sweep.yaml``)."""
    return (Path(path) / "sweep.yaml").is_file()


def trial_file(out: Path, name: str) -> Path:
    return out / "trials" / f"{name}.json"


def finished_trials(out: Path) -> dict[str, dict[str, Any]]:
    """The finished trials' records by name."""
    folder = out / "trials"
    found = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            found[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a torn write: the trial counts as unfinished and runs again
    return found


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


# -- a trial's body (runs inside a Ray worker, or here) -----------------------------------------
def run_seed(spec: SweepSpec, params: dict[str, Any], seed: int, run_dir: Path) -> dict[str, Any]:
    """Train one run dir to ``spec.steps``: afresh, or continued from its checkpoint when an
    earlier attempt left one; its metrics from ``eval.csv``."""
    import torch

    import modelbased  # noqa: F401  (registers agents and environments in a fresh worker)
    from modelbased.core.errors import CheckpointError
    from modelbased.runs import RunRecorder, load_run, write_config

    torch.set_num_threads(1)
    cls = agent_class(spec.algo)
    try:
        agent = load_run(run_dir, "cpu")
        steps = max(int(read_config(run_dir)["total_steps"]) - agent.loop.env_steps, 0)
    except CheckpointError:  # no run yet, or stopped before its first checkpoint: start over
        if run_dir.exists():
            shutil.rmtree(run_dir)
        agent = cls(spec.env_id, {**spec.settings, **params}, seed=seed, device="cpu")
        steps = spec.steps
        make_run_dir(run_dir)
        write_config(run_dir, agent, steps)
    if steps or agent.loop.eval_pending:
        with RunRecorder(run_dir, plot=False) as recorder:
            agent.learn(steps, callback=recorder)
    return run_metrics(run_dir) | {"seed": seed, "run_dir": str(run_dir)}


def run_metrics(run_dir: Path) -> dict[str, float]:
    """``final_return`` (the last evaluation), ``mean_return`` (the mean of all), ``env_steps``."""
    ev = read_eval(run_dir)
    ret = ev["return_mean"]
    return {
        "final_return": float(ret[-1]),
        "mean_return": float(ret.mean()),
        "env_steps": int(ev["env_steps"][-1]),
    }


def run_trial(
    spec: SweepSpec,
    out: Path,
    name: str,
    params: dict[str, Any],
    seeds: list[int],
    proposed: bool = False,
    extra: dict[str, Any] | None = None,
) -> dict[str, float]:
    """One trial: its seeds one after another; the median of each metric over them, recorded
    in ``trials/NAME.json`` once all are done (``started/NAME.json`` says it began).

    A configuration Optuna proposes again (``proposed``) is not trained twice: a finished one
    reports its record, one that another trial is training now waits for that record. ``extra``
    goes into the record too (the Ray node that ran it)."""
    record = trial_file(out, name)
    if not _claim(out / "started" / f"{name}.json", {"params": params, "seeds": seeds}, proposed):
        while not record.is_file():  # the same configuration is running in another trial
            time.sleep(5.0)
    if record.is_file():
        stored = json.loads(record.read_text())
        return {m: stored[m] for m in METRICS}
    runs = [run_seed(spec, params, s, out / "runs" / f"{label(params)}-s{s}") for s in seeds]
    result = {m: median([r[m] for r in runs]) for m in METRICS}
    _write_json(record, {"params": params, "seeds": seeds, "runs": runs, **result, **(extra or {})})
    return result


def _claim(path: Path, data: dict[str, Any], exclusive: bool) -> bool:
    """Write ``path``; with ``exclusive``, only if no trial wrote it before (False then)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if exclusive:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(data))
        return True
    _write_json(path, data)
    return True


def started_trials(out: Path) -> dict[str, dict[str, Any]]:
    """Trials that began (``started/NAME.json``: params and seeds), finished or not."""
    folder = out / "started"
    return (
        {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
        if folder.is_dir()
        else {}
    )


# -- reading a sweep ----------------------------------------------------------------------------
def sweep_runs(out: Path) -> dict[str, list[Path]]:
    """The sweep's run dirs with evaluations, by configuration label (the run dir name without
    its ``-sS`` seed suffix)."""
    groups: dict[str, list[Path]] = {}
    for run in sorted((out / "runs").glob("*-s*")) if (out / "runs").is_dir() else []:
        if (run / "eval.csv").is_file():
            groups.setdefault(run.name.rsplit("-s", 1)[0], []).append(run)
    return groups


def summarize(out: Path) -> list[dict[str, Any]]:
    """Per configuration: seeds with evaluations, and the median, IQM and bootstrap 95%
    intervals of the metric over them; written to ``summary.csv``, best first."""
    spec = read_spec(out)
    rows: list[dict[str, Any]] = []
    for name, runs in sweep_runs(out).items():
        values = [run_metrics(r)[spec.metric] for r in runs]
        rows.append(
            {
                "config": name,
                "seeds": len(values),
                "median": median(values),
                "median_ci": bootstrap_ci(values, "median"),
                "iqm": iqm(values),
                "iqm_ci": bootstrap_ci(values, "iqm"),
            }
        )
    rows.sort(key=lambda r: -r["iqm"])
    lines = [
        ",".join(["config", "seeds", "median", "median_lo", "median_hi", "iqm", "iqm_lo", "iqm_hi"])
    ]
    for r in rows:
        m, i = r["median"], r["iqm"]
        cells = [r["config"], r["seeds"], m, *r["median_ci"], i, *r["iqm_ci"]]
        lines.append(",".join(f'"{c}"' if isinstance(c, str) else f"{c:.6g}" for c in cells))
    (out / "summary.csv").write_text("\n".join(lines) + "\n")
    return rows


__all__ = [
    "INSTALL_HINT",
    "METRICS",
    "SweepError",
    "SweepSpec",
    "check_spec",
    "is_sweep_dir",
    "parse_grid",
    "parse_seeds",
    "summarize",
]
