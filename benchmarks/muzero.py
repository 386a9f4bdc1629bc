"""MuZero on CartPole-v1: real env steps and CPU seconds to an eval return of 475 (10 episodes),
beside SB3's PPO and DQN (rl-zoo settings) on the same seeds, the cost of Reanalyse, and the
speed of batched self-play -- torch pinned to 1 thread, contenders in turn in one process.

Parts (``--part``; default ``cartpole``):

* ``cartpole``: ``mb.MuZero`` with its CartPole-v1 preset for ``--steps`` (15k), evaluated
  every ``--eval-every`` env steps on 10 deterministic episodes. Reported: the reach-and-stay
  step of 475 (``benchmarks/_stats.py``), first crossing, final and last-5 returns, learning
  CPU/wall seconds (evaluations excluded) and the CPU per env step of each phase (``self_play``,
  ``train``, ``reanalyse``) from the agent's timer.
* ``baselines``: SB3 PPO and DQN with rl-zoo's CartPole-v1 hyperparameters, evaluated alike
  (needs stable-baselines3: run with the ``.bench`` interpreter; skipped, saying why, without).
* ``reanalyse``: the ``cartpole`` run at ``reanalyse_fraction`` 0, 0.5 and 0.8
  (``--fractions``): env steps and CPU seconds to 475.
* ``gumbel``: the ``cartpole`` run at ``--budgets`` simulations per move (2, 4, 8, 16, 50; the
  same budget in evaluation) with each root rule: ``search.root`` ``puct`` (Dirichlet noise)
  and ``gumbel`` (Gumbel-top-k with sequential halving, no Dirichlet noise). PUCT at 50 is the
  ``cartpole`` part's setting and is read from its records, not run twice.
* ``tictactoe``: MuZero on ``modelbased/TicTacToe-v0`` (its preset: a learned model, the rules
  only as the legal-move mask at the root) trained in chunks of ``--ttt-chunk`` env steps until
  ``--ttt-minutes`` of learning CPU time; after each chunk 100 noise-free games (50 with each
  colour) against the perfect minimax player. Reported: losses per chunk and the CPU seconds
  from which it loses no game, and keeps not losing.
* ``lightzero``: LightZero 0.2.0's MuZero with its shipped CartPole config (on CartPole-v1, CPU,
  see ``_lightzero_peer.py``) in its own venv (``--lightzero-python``; install in
  docs/benchmarks.md), for ``--steps`` env steps or ``--lightzero-minutes`` of wall clock,
  whichever ends first: its eval curve (3 episodes per evaluation, its default) with learning
  wall/CPU seconds, beside ours.
* ``speed``: self-play env steps per second of 16 envs searched in one batched MCTS (one network
  call per simulation for all) against the same 16 searched one at a time (one call per
  simulation per env), on the same observations in alternating blocks; medians of
  ``--repeats``. Only the search is timed (stepping CartPole costs microseconds).

One record per part and seed (``speed``: per invocation) is appended to results/muzero.json;
results/muzero.png draws every stored curve.

``--resume`` skips the (part, setting, seed) runs already stored with the same ``--steps`` and
``--eval-every``, so a session's end loses at most the run in progress.

Run:  /work/main/.bench/bin/python benchmarks/muzero.py --part cartpole baselines
      python benchmarks/muzero.py --part gumbel --seeds 0 --resume
quick: --seeds 0 --steps 2000 --eval-every 500
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import _common as common
import numpy as np
import torch

import modelbased as mb
from modelbased.planning.mcts import MCTS

NAME = "muzero"
ENV, THRESHOLD, EVAL_EPISODES = "CartPole-v1", 475.0, 10
PHASES = ("self_play", "train", "reanalyse")
RUN_KEYS = ("steps", "eval_every")  # the arguments a stored run must match for --resume
TTT_KEYS = ("ttt_minutes", "ttt_chunk")
PPO_ZOO = {  # rl-zoo3 hyperparams/ppo.yml, CartPole-v1 (n_envs 8, linear schedules)
    "n_steps": 32,
    "batch_size": 256,
    "gae_lambda": 0.8,
    "gamma": 0.98,
    "n_epochs": 20,
    "ent_coef": 0.0,
}
DQN_ZOO = {  # rl-zoo3 hyperparams/dqn.yml, CartPole-v1
    "learning_rate": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1000,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
    "policy_kwargs": {"net_arch": [256, 256]},
}


def phase_split(rows: list[dict[str, float]], steps: int) -> dict[str, float]:
    """CPU and wall seconds per env step of each phase over the whole run."""
    out = {}
    for phase in PHASES:
        for kind in ("s", "cpu_s"):
            total = sum(r.get(f"time/{phase}_{kind}", 0.0) for r in rows)
            out[f"{phase}_{kind}_per_step"] = total / max(steps, 1)
    return out


def run_muzero(seed: int, args: argparse.Namespace, **overrides: Any) -> dict[str, Any]:
    agent = mb.MuZero(
        ENV, seed=seed, eval_every=args.eval_every, eval_episodes=EVAL_EPISODES, **overrides
    )
    tracker = common.eval_tracker(THRESHOLD)
    agent.learn(args.steps, callback=tracker)
    return tracker.curve.result() | {
        "phases": phase_split(tracker.rows, agent.loop.env_steps),
        "overrides": overrides,
    }


def run_sb3(algo: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    import gymnasium as gym
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    eval_env = gym.make(ENV)
    eval_env.reset(seed=10_000 + seed)
    if algo == "ppo":

        def linear(start: float) -> Any:
            return lambda progress: progress * start

        env = make_vec_env(ENV, n_envs=8, seed=seed)
        model: Any = PPO(
            "MlpPolicy",
            env,
            seed=seed,
            learning_rate=linear(1e-3),
            clip_range=linear(0.2),
            device="cpu",
            **PPO_ZOO,
        )
    else:
        model = DQN("MlpPolicy", ENV, seed=seed, device="cpu", **DQN_ZOO)
    curve = common.EvalCurve(THRESHOLD)
    marks = {"next": args.eval_every}

    class Eval(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps >= marks["next"]:
                marks["next"] += args.eval_every
                ret = curve.timed_eval(
                    lambda: evaluate_policy(model, eval_env, EVAL_EPISODES, True)[0]
                )
                print(f"  {algo} eval {self.num_timesteps}: {ret:.1f}", flush=True)
                curve.add(self.num_timesteps, float(ret))
            return True

    model.learn(args.baseline_steps, callback=Eval())
    return curve.result() | {
        "zoo": {k: str(v) for k, v in (PPO_ZOO if algo == "ppo" else DQN_ZOO).items()}
    }


def brief(run: dict[str, Any]) -> str:
    return (
        f"reaches and stays >= {THRESHOLD} from {run['steps_to_threshold_and_stay']} "
        f"(learning CPU s {run['learn_cpu_s_to_steps_to_threshold_and_stay']}), first at "
        f"{run['first_crossing']}, final {run['final_return']}, last-5 mean {run['last5_mean']}, "
        f"learning CPU s {run['total_learn_cpu_s']}"
    )


def part_cartpole(args: argparse.Namespace, part: str, **overrides: Any) -> dict[int, Any]:
    out = {}
    setting = json.dumps(overrides, sort_keys=True)  # what tells the runs of a part apart
    for seed in args.seeds:
        if common.skip_stored(NAME, seed, args, RUN_KEYS, part=part, setting=setting):
            continue
        record = common.start_record(args, seeds=[seed], part=part, setting=setting)
        run = run_muzero(seed, args, **overrides)
        print(f"MuZero {overrides} seed {seed}: {brief(run)}", flush=True)
        print(f"  phases (per env step): {run['phases']}", flush=True)
        common.append_record(NAME, record, {"env": ENV, "threshold": THRESHOLD, "muzero": run})
        out[seed] = run
    return out


def gumbel_settings(budgets: list[int]) -> list[dict[str, Any]]:
    """The search overrides of part ``gumbel``: each budget with each root rule (PUCT at 50 is
    part ``cartpole``)."""
    out = []
    for root in ("puct", "gumbel"):
        for n in budgets:
            if root == "puct" and n == 50:
                continue
            search: dict[str, Any] = {"num_simulations": n, "root": root}
            if root == "gumbel":
                search["dirichlet_fraction"] = 0.0  # the Gumbel noise explores instead
            out.append({"search": search, "eval_simulations": n})
    return out


def part_tictactoe(args: argparse.Namespace) -> None:
    """Learned-model MuZero on tic-tac-toe against the perfect minimax player, by CPU time."""
    from modelbased.agents.arena import builtin_player, play_games

    env = "modelbased/TicTacToe-v0"
    for seed in args.seeds:
        if common.skip_stored(NAME, seed, args, TTT_KEYS, part="tictactoe"):
            continue
        record = common.start_record(args, seeds=[seed], part="tictactoe")
        agent = mb.MuZero(env, seed=seed, eval_episodes=0)
        game = agent.game
        assert game is not None
        minimax = builtin_player("minimax", game)
        curve: list[dict[str, Any]] = []
        cpu = 0.0
        while cpu < args.ttt_minutes * 60:
            c = time.process_time()
            agent.learn(args.ttt_chunk)
            cpu += time.process_time() - c
            c = time.process_time()
            result = play_games(game, agent.player(), minimax, 100, np.random.default_rng(seed))
            tally = result["total"]
            curve.append(
                {
                    "steps": agent.loop.env_steps,
                    "learn_cpu_s": round(cpu, 1),
                    "losses": tally["losses"],
                    "draws": tally["draws"],
                    "wins": tally["wins"],
                    "losses_first": result["first"]["losses"],
                    "losses_second": result["second"]["losses"],
                    "arena_cpu_s": round(time.process_time() - c, 1),
                }
            )
            print(f"  tictactoe seed {seed}: {curve[-1]}", flush=True)
        held = next(
            (p for i, p in enumerate(curve) if all(q["losses"] == 0 for q in curve[i:])), None
        )
        figures = {
            "env": env,
            "opponent": "minimax",
            "games": 100,
            "curve": curve,
            "zero_losses_and_stay_cpu_s": held["learn_cpu_s"] if held else None,
            "zero_losses_and_stay_steps": held["steps"] if held else None,
            "final_losses": curve[-1]["losses"],
            "config": dataclasses.asdict(agent.config),
        }
        print(
            f"tictactoe seed {seed}: no losses from {figures['zero_losses_and_stay_cpu_s']} "
            f"CPU s, final losses {figures['final_losses']}",
            flush=True,
        )
        common.append_record(NAME, record, figures)


def part_lightzero(args: argparse.Namespace) -> None:
    """LightZero's CartPole MuZero in its own venv, one record per seed (skipped, saying why,
    when its venv is missing or the run fails)."""
    python = Path(args.lightzero_python)
    for seed in args.seeds:
        if common.skip_stored(NAME, seed, args, ("steps", "lightzero_minutes"), part="lightzero"):
            continue
        if not python.is_file():
            print(f"lightzero skipped: {python} missing (docs/benchmarks.md says how to install)")
            return
        record = common.start_record(args, seeds=[seed], part="lightzero")
        script = Path(__file__).with_name("_lightzero_peer.py")
        command = [str(python), str(script), "--seed", str(seed), "--steps", str(args.steps)]
        command += ["--minutes", str(args.lightzero_minutes)]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd="/tmp")
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            print(f"lightzero seed {seed} failed: {proc.stderr.strip().splitlines()[-3:]}")
            return
        peer = json.loads(lines[-1])
        curve = common.EvalCurve(THRESHOLD)
        curve.points = peer.pop("curve")
        run = curve.result() | peer
        print(f"LightZero seed {seed}: {brief(run)}", flush=True)
        common.append_record(NAME, record, {"env": ENV, "threshold": THRESHOLD, "lightzero": run})


def part_baselines(args: argparse.Namespace) -> None:
    try:
        import stable_baselines3  # noqa: F401
    except ImportError as exc:
        print(f"baselines skipped: stable-baselines3 not installed ({exc})")
        return
    for seed in args.seeds:
        for algo in ("ppo", "dqn"):
            record = common.start_record(args, seeds=[seed], part=f"baseline-{algo}")
            run = run_sb3(algo, seed, args)
            print(f"SB3 {algo} seed {seed}: {brief(run)}", flush=True)
            common.append_record(NAME, record, {"env": ENV, "threshold": THRESHOLD, algo: run})


def part_speed(args: argparse.Namespace) -> None:
    """Batched self-play search of 16 envs against 16 searches of one env each."""
    record = common.start_record(args, seeds=[0], part="speed")
    agent = mb.MuZero(ENV, seed=0, num_envs=16, eval_episodes=0)
    agent.learn(300)  # a network that has seen a few updates
    obs = agent.episodes.reset(list(range(16)))
    mcts = MCTS(agent.model, agent.search_config(True))

    def batched() -> None:
        agent.self_play(mcts, obs, 0)

    def one_by_one() -> None:
        for i in range(16):
            agent.self_play(mcts, obs[i : i + 1], 0)

    rates: dict[str, list[float]] = {"batched": [], "one_by_one": []}
    cpu_rates: dict[str, list[float]] = {"batched": [], "one_by_one": []}
    for _ in range(args.repeats):
        for name, fn in (("batched", batched), ("one_by_one", one_by_one)):
            t, c = time.perf_counter(), time.process_time()
            fn()
            rates[name].append(16 / (time.perf_counter() - t))
            cpu_rates[name].append(16 / (time.process_time() - c))
    med = {k: statistics.median(v) for k, v in rates.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpu_rates.items()}
    figures = {
        "env_steps_per_s": med,
        "env_steps_per_cpu_s": cpu_med,
        "ratio": med["batched"] / med["one_by_one"],
        "cpu_ratio": cpu_med["batched"] / cpu_med["one_by_one"],
        "all": rates,
        "all_cpu": cpu_rates,
        "simulations": agent.config.search.num_simulations,
    }
    common.print_table(
        ["search", "env steps/s", "env steps/CPU s"],
        [
            ["16 envs, one batched search", med["batched"], cpu_med["batched"]],
            ["16 searches of 1 env", med["one_by_one"], cpu_med["one_by_one"]],
        ],
        f"self-play on {ENV}, {figures['simulations']} simulations, ratio {figures['ratio']:.1f}x",
    )
    common.append_record(NAME, record, figures)


def plot(records: list[dict[str, Any]]) -> None:
    """Left: every stored CartPole curve of parts cartpole/reanalyse and the SB3 baselines.
    Right: part gumbel's median curve per setting (colour: budget; solid PUCT, dashed Gumbel),
    with PUCT at 50 from part cartpole."""
    plt = common.pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    colors = {"ppo": "tab:orange", "dqn": "tab:green"}
    seen: set[str] = set()
    budgets: dict[tuple[str, int], list[list[dict[str, float]]]] = {}
    for rec in records:
        for key, run in rec.get("figures", {}).items():
            if not isinstance(run, dict) or "curve" not in run or rec.get("part") == "tictactoe":
                continue
            over = run.get("overrides", {})
            search = over.get("search", {})
            root, n = search.get("root", "puct"), search.get("num_simulations", 50)
            if key == "muzero" and "setting" in rec and "reanalyse_fraction" not in over:
                budgets.setdefault((root, n), []).append(run["curve"])
            if rec.get("part") == "gumbel":
                continue
            frac = over.get("reanalyse_fraction", 0.0)
            label = f"MuZero reanalyse {frac}" if key == "muzero" else f"SB3 {key.upper()}"
            color = colors.get(key, f"C{int(frac * 10) % 10}")
            xs = [p["steps"] for p in run["curve"]]
            ys = [p["return"] for p in run["curve"]]
            ax.plot(
                xs, ys, "o-", ms=2, alpha=0.6, color=color, label=None if label in seen else label
            )
            seen.add(label)
    for (root, n), curves in sorted(budgets.items()):
        steps = sorted({p["steps"] for c in curves for p in c})
        med = [
            statistics.median(p["return"] for c in curves for p in c if p["steps"] == s)
            for s in steps
        ]
        color = f"C{[2, 4, 8, 16, 50].index(n) if n in (2, 4, 8, 16, 50) else 9}"
        style = "-" if root == "puct" else "--"
        bx.plot(steps, med, style, color=color, label=f"{root} {n} ({len(curves)} seeds)")
    for axis, title in ((ax, ENV), (bx, f"{ENV}: simulations per move, median over seeds")):
        axis.axhline(THRESHOLD, color="gray", ls="--", lw=0.8)
        axis.set(xlabel="real env steps", title=title)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8)
    ax.set_ylabel(f"eval return ({EVAL_EPISODES} episodes)")
    fig.tight_layout()
    fig.savefig(common.RESULTS / f"{NAME}.png", dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--part",
        nargs="+",
        default=["cartpole"],
        choices=["cartpole", "baselines", "reanalyse", "gumbel", "tictactoe", "lightzero", "speed"],
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=15_000, help="MuZero's env steps per run")
    p.add_argument("--baseline-steps", type=int, default=60_000, help="PPO and DQN env steps")
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--fractions", type=float, nargs="+", default=[0.0, 0.5, 0.8])
    p.add_argument("--budgets", type=int, nargs="+", default=[2, 4, 8, 16, 50])
    p.add_argument("--ttt-minutes", type=float, default=30.0, help="tictactoe: learning CPU")
    p.add_argument("--ttt-chunk", type=int, default=2000, help="tictactoe: steps per arena")
    p.add_argument(
        "--lightzero-python",
        default=str(Path(__file__).resolve().parents[1] / ".lightzero" / "bin" / "python"),
        help="the interpreter of LightZero's venv (docs/benchmarks.md)",
    )
    p.add_argument("--lightzero-minutes", type=float, default=100.0, help="its wall-clock cap")
    p.add_argument("--repeats", type=int, default=5, help="part speed: timed blocks")
    p.add_argument(
        "--resume", action="store_true", help="skip runs already stored with these settings"
    )
    args = p.parse_args()
    torch.set_num_threads(1)
    np.set_printoptions(precision=3)
    for part in args.part:
        if part == "cartpole":
            part_cartpole(args, "cartpole")
        elif part == "baselines":
            part_baselines(args)
        elif part == "reanalyse":
            for frac in args.fractions:
                part_cartpole(args, "reanalyse", reanalyse_fraction=frac)
        elif part == "gumbel":
            for overrides in gumbel_settings(args.budgets):
                part_cartpole(args, "gumbel", **overrides)
        elif part == "tictactoe":
            part_tictactoe(args)
        elif part == "lightzero":
            part_lightzero(args)
        else:
            part_speed(args)
    plot(common.load_records(NAME))
    print(f"\nrecords in {common.RESULTS / NAME}.json; plot {common.RESULTS / NAME}.png")


if __name__ == "__main__":
    main()
