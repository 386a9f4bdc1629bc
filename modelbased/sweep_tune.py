"""The Ray Tune driver of ``modelbased sweep`` (see :mod:`modelbased.sweep` for the sweep
directory, the trials and how a restart continues): connect to Ray or start it, run the known
trials (grid points, or search trials left unfinished) and Optuna's proposals, each trial a
call of :func:`modelbased.sweep.run_trial` in a Ray worker with one CPU.

``ray`` is imported only here, and only when a sweep runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from modelbased.sweep import (
    INSTALL_HINT,
    SweepError,
    SweepInterrupted,
    SweepSpec,
    check_spec,
    configurations,
    finished_trials,
    label,
    open_sweep_dir,
    parse_range,
    run_trial,
    started_trials,
    summarize,
)

OBJECT_STORE_BYTES = 100 * 2**20  # local Ray: trials pass only small dicts through it


def import_ray(address: str | None = None) -> Any:
    """``ray`` with Tune, or a one-line :class:`SweepError` naming the extra to install.

    For a local Ray (no ``address``) or a cluster on this machine's loopback, Ray is told to
    keep every node on 127.0.0.1 (its single-machine mode, ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER
    =0``, read when ``ray`` is first imported): otherwise it rewrites 127.0.0.1 to the
    machine's outward address and talks over that."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no tables on stdout
    host = (address or "127.0.0.1").removeprefix("ray://").rsplit(":", 1)[0]
    if host in ("localhost", "::1", "[::1]") or host.startswith("127."):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
        from ray import tune  # noqa: F401
    except ImportError:
        raise SweepError(INSTALL_HINT) from None
    return ray


def init_ray(address: str | None, jobs: int | None) -> Any:
    """Connect to the cluster at ``address`` (``ray://HOST:PORT`` through Ray Client, or
    ``HOST:PORT``/``auto`` of a cluster's head), or start a local Ray with ``jobs`` CPUs (all
    cores by default) and a small object store."""
    ray = import_ray(address)
    env = {"env_vars": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}}
    common = {"runtime_env": env, "log_to_driver": False, "logging_level": "error"}
    try:
        if address:
            ray.init(address=address, **common)
        else:
            ray.init(  # "local": never the cluster a `ray start` on this machine recorded
                address="local",
                num_cpus=jobs or os.cpu_count(),
                object_store_memory=OBJECT_STORE_BYTES,
                include_dashboard=False,
                **common,
            )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = f" at {address}" if address else ""
        raise SweepError(f"cannot start or reach Ray{where}: {first}") from None
    return ray


def search_space(spec: SweepSpec) -> dict[str, Any]:
    """Tune domains for Optuna: a choice per list, a (log-)uniform or integer range per range."""
    from ray import tune

    space = {}
    for key, values in spec.grid.items():
        r = parse_range(values)
        if r is None:
            space[key] = tune.choice(values)
        else:
            lo, hi, integer, log = r
            if integer:
                space[key] = (tune.lograndint if log else tune.randint)(int(lo), int(hi) + 1)
            else:
                space[key] = (tune.loguniform if log else tune.uniform)(lo, hi)
    return space


def _grid_trials(spec: SweepSpec) -> list[dict[str, Any]]:
    return [
        {"name": f"{label(p)}-s{s}", "params": p, "seeds": [s]}
        for p in configurations(spec)
        for s in spec.seeds
    ]


def run_sweep(
    spec: SweepSpec, out: Path, jobs: int | None = None, address: str | None = None
) -> list[dict[str, Any]]:
    """Run (or continue) the sweep in ``out`` on Ray Tune; the summary rows (see
    :func:`summarize`). Finished trials are skipped, unfinished ones continue."""
    check_spec(spec)
    import_ray(address)
    if spec.search == "optuna":
        try:
            import optuna  # noqa: F401
        except ImportError:
            raise SweepError(INSTALL_HINT) from None
    open_sweep_dir(out, spec)
    out = out.resolve()
    done = finished_trials(out)
    todo = [t for t in _grid_trials(spec) if t["name"] not in done]
    if spec.search == "grid" and not todo:
        return summarize(out)  # every trial finished: no Ray needed
    if (
        spec.search == "optuna"
        and len(done) >= spec.trials
        and set(started_trials(out)) <= set(done)
    ):
        return summarize(out)
    ray = init_ray(address, jobs)
    try:
        if spec.search == "grid":
            _tune(spec, out, todo, jobs)
        else:
            _search(spec, out, jobs)
    finally:
        ray.shutdown()
    left = _unfinished(spec, out)
    if left:  # Tune stopped early: Ctrl-C (Tune's own handler) or SIGTERM
        raise SweepInterrupted(left)
    return summarize(out)


def _unfinished(spec: SweepSpec, out: Path) -> int:
    """Trials of the sweep not finished yet."""
    done = finished_trials(out)
    if spec.search == "grid":
        return sum(t["name"] not in done for t in _grid_trials(spec))
    return max(spec.trials - len(done), 0) + len(set(started_trials(out)) - set(done))


def _trainable(spec_data: dict[str, Any], out: str) -> Any:
    """The Tune function trainable: one trial of :func:`run_trial`, reported once."""

    def trial(config: dict[str, Any]) -> None:
        import ray
        from ray import tune

        spec = SweepSpec.from_dict(spec_data)
        if "trial" in config:  # a known trial: a grid point, or a search trial left unfinished
            known = config["trial"]
            name, params, seeds = known["name"], known["params"], known["seeds"]
        else:  # a configuration Optuna proposes
            params = {k: _round(config[k]) for k in spec.grid}
            name, seeds = label(params), list(spec.seeds)
        node = {"node_id": ray.get_runtime_context().get_node_id()}  # which machine ran it
        tune.report(run_trial(spec, Path(out), name, params, seeds, "trial" not in config, node))

    return trial


def _round(value: Any) -> Any:
    """Optuna's floats to 4 significant digits, so a configuration's label is its value."""
    return float(f"{value:.4g}") if isinstance(value, float) else value


def _tuner(spec: SweepSpec, out: Path, space: dict[str, Any], **tune_config: Any) -> Any:
    from ray import tune

    return tune.Tuner(
        tune.with_resources(_trainable(spec.to_dict(), str(out)), {"cpu": 1}),
        param_space=space,
        tune_config=tune.TuneConfig(
            trial_dirname_creator=lambda t: f"trial_{t.trial_id}", **tune_config
        ),
        run_config=tune.RunConfig(name="ray", storage_path=str(out), verbose=0),
    )


def _tune(spec: SweepSpec, out: Path, todo: list[dict[str, Any]], jobs: int | None) -> None:
    """Run the known trials ``todo`` (grid points, or search trials to finish)."""
    if todo:
        from ray import tune

        space = {"trial": tune.grid_search(todo)}
        _check(_tuner(spec, out, space, max_concurrent_trials=jobs).fit())


def _search(spec: SweepSpec, out: Path, jobs: int | None) -> None:
    """Optuna: finish the trials an earlier start left unfinished (their run dirs continue),
    tell Optuna the finished ones, and let it propose the rest of ``spec.trials``."""
    from ray.tune.search.optuna import OptunaSearch

    done = finished_trials(out)
    started = {n: t for n, t in started_trials(out).items() if n not in done}
    _tune(spec, out, [{"name": n, **t} for n, t in started.items()], jobs)
    done = finished_trials(out)
    remaining = spec.trials - len(done)
    if remaining <= 0:
        return
    told = list(done.values())
    searcher = OptunaSearch(
        metric=spec.metric,
        mode="max",
        seed=0,
        points_to_evaluate=[t["params"] for t in told] or None,
        evaluated_rewards=[t[spec.metric] for t in told] or None,
    )
    tuner = _tuner(
        spec,
        out,
        search_space(spec),
        search_alg=searcher,
        num_samples=remaining,
        max_concurrent_trials=jobs,
    )
    _check(tuner.fit())


def _check(results: Any) -> None:
    """A trial's error as one :class:`SweepError` line."""
    for result in results:
        if result.error is not None:
            first = str(result.error).strip().splitlines()
            raise SweepError(f"a trial failed: {first[-1] if first else result.error}")
