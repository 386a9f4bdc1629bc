"""The ``modelbased`` command line: train, eval, plot, list, diagnose, arena, play.

Bad input (unknown algorithm or env, wrong action space, bad --set, unreadable run dir)
prints one line on stderr and exits with code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, NoReturn

from modelbased.core.config import describe, load_presets, parse_overrides, read_yaml
from modelbased.core.errors import CheckpointError, ConfigError, ModelbasedError
from modelbased.core.registry import ALGORITHMS, agent_class
from modelbased.core.seeding import derive_seed
from modelbased.progress import Progress, format_number


class UsageError(ModelbasedError):
    """A malformed command line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


DEVICE_HELP = "torch device: auto (CUDA when available), cpu, cuda or cuda:N (default auto)"
THREADS_HELP = (
    "torch threads (default 1: small RL batches gain little from more, and on a loaded "
    "machine extra threads can make them several times slower)"
)


def build_parser() -> argparse.ArgumentParser:
    """The ``modelbased`` argument parser with one subcommand per verb."""
    parser = _Parser(prog="modelbased", description="Model-based reinforcement learning.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser("train", help="train an agent and write a run directory")
    train.add_argument("algo", help="algorithm name, e.g. dyna-q (see `modelbased list`)")
    train.add_argument("--env", help="Gymnasium env id (default: the algorithm's own)")
    train.add_argument("--steps", type=int, help="real env steps (default: the algorithm's own)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", help="run directory (default runs/<algo>-<env>-<time>)")
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (repeatable)",
    )
    train.add_argument("--config", help="YAML file of config keys")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its checkpoint")
    train.add_argument("--quiet", action="store_true", help="print only the final line")
    train.add_argument("--threads", type=int, default=1, help=THREADS_HELP)
    train.add_argument("--device", default="auto", help=DEVICE_HELP)

    ev = sub.add_parser("eval", help="evaluate a trained run")
    ev.add_argument("run_dir")
    ev.add_argument("--episodes", type=int, default=10)
    ev.add_argument("--seed", type=int)
    ev.add_argument("--video", metavar="FILE.mp4", help="record one episode")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--threads", type=int, default=1, help=THREADS_HELP)
    ev.add_argument("--device", default="auto", help=DEVICE_HELP)

    plot = sub.add_parser(
        "plot",
        help="learning curves of runs: return and episode length; runs of one configuration "
        "as their median with the interquartile range; of sweep dirs: median and IQM over seeds "
        "per configuration with bootstrap 95%% bands",
    )
    plot.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run dirs, or sweep dirs")
    plot.add_argument("--out", default="curves.png", metavar="FILE.png", help="default curves.png")
    plot.add_argument(
        "--x",
        choices=("steps", "wall"),
        default="steps",
        help="x axis: env steps (default) or wall-clock seconds of training (wall_time_s)",
    )

    lst = sub.add_parser("list", help="algorithms, environments and presets")
    lst.add_argument("algo", nargs="?", help="print this algorithm's config tree and presets")

    diag = sub.add_parser("diagnose", help="fit an ensemble; report model error and calibration")
    diag.add_argument("--env", required=True, help="Gymnasium env id with Box spaces")
    diag.add_argument("--steps", type=int, default=10_000, help="real transitions to collect")
    diag.add_argument("--policy", default="random", help="'random' or a RUN_DIR whose agent acts")
    diag.add_argument("--seed", type=int, default=0)
    diag.add_argument("--horizon", type=int, default=30, help="longest open-loop k")
    diag.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="ensemble config override, e.g. hidden=128 (see `modelbased list pets`, model.*)",
    )
    diag.add_argument("--out", help="directory for the plots (default runs/diagnose-<env>-<time>)")
    diag.add_argument("--json", action="store_true", help="print one JSON object")
    diag.add_argument("--threads", type=int, default=1, help=THREADS_HELP)
    diag.add_argument("--device", default="auto", help=DEVICE_HELP)

    arena = sub.add_parser("arena", help="two-player games between run dirs or built-in players")
    arena.add_argument("a", help="run dir or random, minimax, alphabeta:DEPTH, mcts:SIMULATIONS")
    arena.add_argument("b", help="the opponent, as A")
    arena.add_argument("--games", type=int, default=20, help="games, half with A first")
    arena.add_argument("--env", help="game env id (default: the run dirs' own, or tic-tac-toe)")
    arena.add_argument("--seed", type=int, default=0)
    arena.add_argument("--json", action="store_true", help="one JSON object of A's results")
    arena.add_argument(
        "--simulations",
        type=int,
        default=None,
        help="search simulations per move of run-dir players (default: the "
        "run's own evaluation setting)",
    )
    arena.add_argument("--threads", type=int, default=1, help=THREADS_HELP)
    arena.add_argument("--device", default="auto", help=DEVICE_HELP)

    sweep = sub.add_parser(
        "sweep",
        help="train over seeds and settings on Ray Tune (pip install modelbased[sweep])",
    )
    sweep.add_argument("algo", help="algorithm name (see `modelbased list`)")
    sweep.add_argument("--env", help="Gymnasium env id (default: the algorithm's own)")
    sweep.add_argument("--seeds", default="0-4", help="seeds: 0-9, 0,3,5 or 0-3,7 (default 0-4)")
    sweep.add_argument(
        "--steps", type=int, help="real env steps per run (default: the algorithm's)"
    )
    sweep.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="values of a config key (repeatable); with --search optuna also LO:HI or LO:HI:log",
    )
    sweep.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="fixed config override"
    )
    sweep.add_argument("--config", help="YAML file of fixed config keys")
    sweep.add_argument("--search", choices=("grid", "optuna"), default="grid")
    sweep.add_argument("--trials", type=int, default=0, help="configurations Optuna tries")
    sweep.add_argument("--metric", default="final_return", help="final_return or mean_return")
    sweep.add_argument("--jobs", type=int, help="trials at once (default: the cluster's CPUs)")
    sweep.add_argument("--address", help="an existing Ray cluster: ray://HOST:PORT or HOST:PORT")
    sweep.add_argument("--out", help="sweep directory (default sweeps/<algo>-<env>-<time>)")

    play = sub.add_parser("play", help="play a trained game agent in the terminal")
    play.add_argument("run_dir")
    play.add_argument("--second", action="store_true", help="let the agent move first")
    play.add_argument("--seed", type=int, default=0)
    play.add_argument("--threads", type=int, default=1, help=THREADS_HELP)
    return parser


def cmd_train(args: argparse.Namespace) -> int:
    """``modelbased train``: build the agent, write ``config.yaml`` and learn into the run dir."""
    from modelbased.runs import default_run_dir, make_run_dir, write_config

    if args.resume:
        return cmd_resume(args)
    cls = agent_class(args.algo)
    env_id = args.env or cls.default_env
    if env_id is None:
        raise UsageError(f"{args.algo} has no default environment: pass --env")
    if args.steps is not None and args.steps <= 0:
        raise UsageError(f"--steps must be positive, got {args.steps}")
    overrides: dict[str, Any] = read_config_file(args.config) if args.config else {}
    overrides.update(parse_overrides(args.set))
    agent = cls(env_id, overrides, seed=args.seed, device=args.device)
    steps = args.steps or cls.default_steps
    run_dir = Path(args.out) if args.out else default_run_dir(cls.algo, env_id)
    make_run_dir(run_dir)
    if (run_dir / "config.yaml").exists():
        raise UsageError(f"{run_dir} already holds a run: use --resume {run_dir} or another --out")
    write_config(run_dir, agent, steps)
    return _learn(agent, steps, run_dir, args.quiet)


def cmd_resume(args: argparse.Namespace) -> int:
    """``modelbased train ALGO --resume RUN_DIR``: continue a run to its ``total_steps``."""
    from modelbased.runs import load_run, read_config

    run_dir = Path(args.resume)
    info = read_config(run_dir)
    if args.algo != info["algo"]:
        raise UsageError(f"{run_dir} is a {info['algo']} run, not {args.algo}")
    if args.set or args.config or args.env or args.steps:
        raise UsageError(
            "--resume continues a run as configured; drop --env/--steps/--set/--config"
        )
    if "total_steps" not in info:
        raise CheckpointError(
            f"{run_dir}/config.yaml has no total_steps: cannot tell where to stop"
        )
    agent = load_run(run_dir, args.device)
    remaining = max(int(info["total_steps"]) - agent.loop.env_steps, 0)
    if remaining == 0 and not agent.loop.eval_pending:
        print(f"{run_dir} is complete ({agent.loop.env_steps} steps)")
        return 0
    return _learn(agent, remaining, run_dir, args.quiet)


def _learn(agent: Any, steps: int, run_dir: Path, quiet: bool) -> int:
    from modelbased.core.interrupt import TrainingInterrupted
    from modelbased.runs import RunRecorder

    bar = Progress(quiet)
    try:
        with RunRecorder(run_dir) as recorder:  # closing it flushes the CSV and TB logs
            agent.learn(steps, callback=[recorder, bar])
    except TrainingInterrupted as stop:
        bar.close()
        print(interrupted_line(agent, run_dir, stop), file=sys.stderr)
        return stop.exit_code
    finally:
        bar.close()
    loop = agent.loop
    final = format_number(loop.last_eval_return)
    print(
        f"{agent.algo} on {agent.env_id}: {loop.env_steps} steps, {loop.episodes} episodes, "
        f"final eval return {final}, {loop.wall_time_s:.1f}s -> {run_dir}"
    )
    return 0


def interrupted_line(agent: Any, run_dir: Path, stop: Any) -> str:
    """The one line printed when a signal stops ``train``: what was saved, how to resume."""
    import signal

    name = signal.Signals(stop.signum).name
    resume = f"modelbased train {agent.algo} --resume {run_dir}"
    if stop.saved:
        saved = run_dir / "checkpoint.pt"
        return f"{name}: saved {saved} at {agent.loop.env_steps} steps; resume with: {resume}"
    if (run_dir / "checkpoint.pt").is_file():
        return (
            f"{name} again: stopped at once; the last checkpoint (step "
            f"{agent.loop.last_checkpoint_step}) is intact; resume with: {resume}"
        )
    return f"{name} again: stopped at once before any checkpoint; nothing to resume in {run_dir}"


def read_config_file(path: str) -> dict[str, Any]:
    """A YAML mapping of config keys (``--config FILE``; an empty file is an empty mapping);
    ConfigError if unreadable."""
    data = read_yaml(path, ConfigError, "config file")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping of config keys to values")
    return data


def cmd_eval(args: argparse.Namespace) -> int:
    """``modelbased eval``: evaluate a run's checkpoint (``--json``: one object on stdout)."""
    from modelbased.runs import load_run

    if args.episodes <= 0:
        raise UsageError(f"--episodes must be positive, got {args.episodes}")
    agent = load_run(args.run_dir, args.device)
    seed = args.seed if args.seed is not None else derive_seed(agent.seed, "cli-eval")
    stats = agent.evaluate(args.episodes, seed=seed)
    out = {k: stats[k] for k in ("return_mean", "return_std", "length_mean", "episodes")}
    if args.json:
        print(json.dumps(out), flush=True)
    else:
        print(
            f"{agent.algo} on {agent.env_id}, {out['episodes']} episodes: return "
            f"{out['return_mean']:.4g} ± {out['return_std']:.3g}, length {out['length_mean']:.4g}",
            flush=True,
        )
    if args.video:  # after the result, so an env that cannot render loses nothing
        from modelbased.video import record_video

        frames = record_video(agent, args.video, seed)
        print(f"wrote {args.video} ({frames} frames)", file=sys.stderr)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """``modelbased plot``: draw the runs' learning curves into one image."""
    from modelbased.runs import plot_runs
    from modelbased.sweep import is_sweep_dir

    dirs: list[str | Path] = [Path(d) for d in args.run_dirs]
    sweeps = [is_sweep_dir(d) for d in dirs]
    if any(sweeps):
        from modelbased.sweep_plots import plot_sweeps

        if not all(sweeps):
            raise UsageError("plot takes run dirs or sweep dirs, not both at once")
        if args.x != "steps":
            raise UsageError("a sweep is plotted against env steps only (drop --x)")
        out = plot_sweeps(dirs, args.out)
    else:
        out = plot_runs(dirs, args.out, x=args.x)
    print(f"wrote {out}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """``modelbased list [ALGO]``: algorithms, presets and environments, or one config tree."""
    import gymnasium as gym

    if args.algo:
        cls = agent_class(args.algo)
        print(
            f"{args.algo} ({cls.__name__}): config keys with their defaults; set with "
            f"--set KEY=VALUE (dotted inside sections, e.g. --set model.hidden=256)"
        )
        print("\n".join("  " + line for line in describe(cls.Config())))
        presets = [k for k in load_presets(args.algo) if k != "default"]
        if presets:
            print(f"presets (modelbased/presets/{args.algo}.yaml): {', '.join(presets)}")
        return 0
    times = step_times()
    print(
        "algorithms, with what `train ALGO` uses without --env/--steps "
        "(`modelbased list ALGO` prints one's config tree):"
    )
    for name in sorted(ALGORITHMS):
        cls = ALGORITHMS[name]
        presets = [k for k in load_presets(name) if k != "default"]
        env, steps = cls.default_env, cls.default_steps
        print(f"  {name:<22} {cls.__name__:<22} default env {env}, {steps} steps")
        print(f"  {'':<22} {time_line(times['algorithms'].get(name), steps)}")
        if presets:
            print(f"  {'':<22} presets: {', '.join(presets)}")
    if times["machine"]:
        print(
            f"times: CPU seconds at one torch thread on {times['machine']}, default env and "
            "preset, evaluations included (benchmarks/step_time.py); wall time is longer on "
            "a loaded machine"
        )
    print("environments (modelbased/ namespace):")
    for env_id in sorted(k for k in gym.registry if k.startswith("modelbased/")):
        print(f"  {env_id}")
    print(
        "plus any Gymnasium env whose spaces the algorithm supports "
        "(tabular: FrozenLake-v1, CliffWalking-v1, Taxi-v4, ...)"
    )
    return 0


def step_times() -> dict[str, Any]:
    """The measured time per 1k steps of each algorithm (``modelbased/step_times.json``, written
    by ``benchmarks/step_time.py`` from its records); empty when not shipped."""
    from importlib import resources

    try:
        text = resources.files("modelbased").joinpath("step_times.json").read_text()
        data = json.loads(text)
        return {"machine": str(data["machine"]), "algorithms": dict(data["algorithms"])}
    except (OSError, ValueError, KeyError, TypeError):
        return {"machine": "", "algorithms": {}}


def time_line(entry: dict[str, Any] | None, default_steps: int) -> str:
    """``~T CPU s per 1k steps, ~D for the default N`` from a measured entry."""
    if not entry:
        return "time per 1k steps not measured yet"
    per_1k = float(entry["cpu_s_per_1k"])
    total = per_1k * default_steps / 1000
    span = f"{total:.0f} s" if total < 120 else f"{total / 60:.0f} min"
    if total >= 7200:
        span = f"{total / 3600:.1f} h"
    first = f", measured over the first {entry['steps']}" if entry["steps"] < default_steps else ""
    return f"~{per_1k:.3g} CPU s per 1k steps{first}; ~{span} for the default {default_steps}"


def cmd_diagnose(args: argparse.Namespace) -> int:
    """``modelbased diagnose``: fit an ensemble on collected data and report its errors."""
    from modelbased.diagnostics.model_error import CALIBRATED_2SIGMA
    from modelbased.diagnostics.report import diagnose
    from modelbased.models.ensemble import EnsembleConfig
    from modelbased.runs import default_run_dir, load_run

    policy = None
    if args.policy != "random":
        agent = load_run(args.policy, args.device)
        policy = agent.act
    config = EnsembleConfig.from_dict(parse_overrides(args.set))
    out = Path(args.out) if args.out else default_run_dir("diagnose", args.env)
    report = diagnose(
        args.env,
        args.steps,
        policy,
        args.seed,
        args.horizon,
        config=config,
        out_dir=out,
        device=args.device,
    )
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{args.env}: {args.steps} transitions, ensemble fit in {report['fit_epochs']} epochs")
    for key in ("one_step_nmse", "mse", "nll", "coverage_1sigma", "coverage_2sigma", "ece"):
        print(f"  {key:<16} {report[key]:.4g}")
    low, high = CALIBRATED_2SIGMA
    print(
        f"  verdict          {report['verdict']} (2-sigma coverage {report['coverage_2sigma']:.3f}"
        f" on {report['holdout_rows']} held-out rows; calibrated: {low:.2f}-{high:.2f})"
    )
    ks = [k for k in (1, 2, 5, 10, 20, 30) if k <= len(report["kstep_nmse"])]
    print("  k-step NMSE       " + "  ".join(f"k={k:<6}" for k in ks))
    for mode, curve in report["kstep_nmse_by_mode"].items():
        print(f"  {mode:<16}  " + "  ".join(f"{curve[k - 1]:<8.3g}" for k in ks))
    print(f"  plots: {', '.join(report['plots'])}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """``modelbased sweep``: run or continue a sweep; print its summary per configuration."""
    from modelbased.runs import default_run_dir
    from modelbased.sweep import SweepInterrupted, SweepSpec, parse_grid, parse_seeds
    from modelbased.sweep_tune import run_sweep

    cls = agent_class(args.algo)
    env_id = args.env or cls.default_env
    if env_id is None:
        raise UsageError(f"{args.algo} has no default environment: pass --env")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {args.jobs}")
    settings: dict[str, Any] = read_config_file(args.config) if args.config else {}
    settings.update(parse_overrides(args.set))
    spec = SweepSpec(
        algo=args.algo,
        env_id=env_id,
        seeds=parse_seeds(args.seeds),
        steps=cls.default_steps if args.steps is None else args.steps,
        settings=settings,
        grid=parse_grid(args.grid),
        search=args.search,
        trials=args.trials,
        metric=args.metric,
    )
    out = Path(args.out) if args.out else default_run_dir(args.algo, env_id, root="sweeps")
    again = " ".join(["modelbased", *_without_out(sys.argv[1:]), "--out", str(out)])
    print(f"sweep directory {out} (to continue it: {again})", file=sys.stderr, flush=True)
    try:
        rows = run_sweep(spec, out, args.jobs, args.address)
    except SweepInterrupted as stop:
        print(
            f"sweep stopped: {stop.unfinished} trials unfinished; continue with: {again}",
            file=sys.stderr,
        )
        return 130
    metric = spec.metric
    print(f"{args.algo} on {env_id}, {metric} over seeds (bootstrap 95% intervals), best first:")
    for r in rows:
        (mlo, mhi), (ilo, ihi) = r["median_ci"], r["iqm_ci"]
        print(
            f"  {r['config']:<40} {r['seeds']} seeds  median {format_number(r['median'])} "
            f"[{format_number(mlo)}, {format_number(mhi)}]  IQM {format_number(r['iqm'])} "
            f"[{format_number(ilo)}, {format_number(ihi)}]"
        )
    print(f"-> {out} (modelbased plot {out})")
    return 0


def _without_out(argv: list[str]) -> list[str]:
    """``argv`` without its ``--out DIR`` / ``--out=DIR``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--out":
            skip = True
        elif not arg.startswith("--out="):
            out.append(arg)
    return out


def cmd_arena(args: argparse.Namespace) -> int:
    """``modelbased arena``: play two players against each other and print the table."""
    from modelbased.games_cli import arena, format_arena

    if args.games <= 0:
        raise UsageError(f"--games must be positive, got {args.games}")
    if args.simulations is not None and args.simulations < 1:
        raise UsageError(f"--simulations must be positive, got {args.simulations}")
    out = arena(args.a, args.b, args.games, args.env, args.seed, args.simulations, args.device)
    print(json.dumps(out) if args.json else format_arena(out))
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    """``modelbased play``: a person plays a trained game agent in the terminal."""
    from modelbased.games_cli import play

    return play(args.run_dir, not args.second, args.seed)


COMMANDS = {
    "train": cmd_train,
    "eval": cmd_eval,
    "plot": cmd_plot,
    "list": cmd_list,
    "diagnose": cmd_diagnose,
    "arena": cmd_arena,
    "play": cmd_play,
    "sweep": cmd_sweep,
}


def _fail(message: str) -> int:
    """Print ``message`` as the one error line on stderr; exit code 2."""
    print(f"modelbased: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv``; the exit code (2 and one line on stderr for bad input;
    a broken pipe on stdout, `modelbased list pets | head`, stops quietly with 0)."""
    with warnings.catch_warnings():  # Gymnasium's deprecation notes would add lines to errors
        warnings.simplefilter("ignore", DeprecationWarning)
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "threads", None) is not None:
            if args.threads < 1:
                raise UsageError(f"--threads must be >= 1, got {args.threads}")
            import torch

            torch.set_num_threads(args.threads)
        import modelbased  # noqa: F401  (registers environments and agents)

        return COMMANDS[args.command](args)
    except ModelbasedError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:  # Ctrl-C outside training (which handles its own): no traceback
        print("modelbased: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # the file system said no (no space, read-only, ...), not our input
        if isinstance(exc, BrokenPipeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        where = f": {exc.filename}" if exc.filename else ""
        return _fail(f"{exc.strerror or exc}{where}")


if __name__ == "__main__":
    sys.exit(main())
