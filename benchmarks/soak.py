"""Soak: runs killed and stopped at random points lose nothing, and memory stays flat.

Part ``kill`` (one record per algorithm; ``--resume`` skips stored ones). Through the command
line exactly as a user would, for every registered algorithm with small settings (``SOAK``):

1. a reference run, ``modelbased train ALGO --env ENV --steps N --seed 0 --config soak.yaml``,
   uninterrupted;
2. the same run killed with SIGKILL 5 times, each once its progress (``episodes.csv`` and
   ``train.csv`` rows, one every 1/40 of the run) passes a random step (uniform over 5-95% of
   the run, sorted), plus a random fraction of the reference's time per episode, and continued
   each time with ``train ALGO --resume`` (started afresh when a kill came before the first
   checkpoint, counted as ``kills_before_first_checkpoint``); then run to its end;
3. the same run stopped once with SIGINT the same way (a random step in 10-90%), exit 130 with
   a checkpoint written at the stop, then continued to its end.

Checkpoints come every ``checkpoint_every`` steps at an episode end (``SOAK``), as any run's
do. A run continued from a checkpoint taken at an episode end is exact (``docs/contracts.md``),
so after the SIGKILLs every evaluation (``eval.csv``: steps and returns) must equal the
reference's. A SIGINT stop inside an episode is the documented inexact case: there the check is
that nothing was lost (the checkpoint holds every step taken before the stop: its env-step
count is the stopped process's, and the replay holds that many transitions where the agent has
one) and that the run reaches its total steps; at an episode end its evaluations must equal the
reference's as well. The random points come from ``numpy.random.default_rng([seed, algorithm
index])``; each signal's step, delay, exit code and the checkpoint before and after it are
stored.

Part ``memory`` (one record per algorithm): ``modelbased train ALGO`` (default env and preset)
for ``--minutes`` (60) of wall clock, its resident set size (``VmRSS``) read every 15 s; the
level after warm-up is the median over minutes 5-10, and the figure is the largest deviation
from it afterwards (must stay within 10%). Stopped with SIGINT at the end. Meant to run in the
background (one hour per algorithm, through ``/work/bin/longjob``), continued with ``--resume``.

    python benchmarks/soak.py --part kill [--algos dyna-q sac ...] [--resume]
    python benchmarks/soak.py --part memory --algos sac pets alphazero --minutes 60 --resume
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _common as common
import numpy as np
import yaml

NAME = "soak"
CLI = [sys.executable, "-m", "modelbased"]
KILLS = 5
TINY_MODEL = {"ensemble_size": 3, "elites": 2, "hidden": 32, "layers": 2, "max_epochs": 10}
EVAL = {"eval_episodes": 2}
# per algorithm: env, steps, settings; checkpoints at (nearly) every episode end
SOAK: dict[str, tuple[str, int, dict[str, Any]]] = {
    "q-learning": ("modelbased/DynaMaze-v0", 3000, {"eval_every": 500, "checkpoint_every": 50}),
    "dyna-q": ("modelbased/DynaMaze-v0", 2000, {"eval_every": 500, "checkpoint_every": 50}),
    "dyna-q-plus": ("modelbased/DynaMaze-v0", 2000, {"eval_every": 500, "checkpoint_every": 50}),
    "prioritized-sweeping": (
        "modelbased/DynaMaze-v0",
        2000,
        {"eval_every": 500, "checkpoint_every": 50},
    ),
    "value-iteration": (
        "FrozenLake-v1",
        3000,
        {"model": "learned", "model_steps": 1000, "eval_every": 500, "checkpoint_every": 20},
    ),
    "policy-iteration": (
        "FrozenLake-v1",
        3000,
        {"model": "learned", "model_steps": 1000, "eval_every": 500, "checkpoint_every": 20},
    ),
    "mcts": ("modelbased/TicTacToe-v0", 60, {"eval_every": 20, "checkpoint_every": 5}),
    "sac": (
        "Pendulum-v1",
        1200,
        {"eval_every": 400, "checkpoint_every": 200, "buffer_size": 5000} | EVAL,
    ),
    "mbpo": (
        "Pendulum-v1",
        600,
        {"eval_every": 200, "checkpoint_every": 200, "model": TINY_MODEL} | EVAL,
    ),
    "pets": (
        "Pendulum-v1",
        400,
        {
            "eval_every": 200,
            "checkpoint_every": 200,
            "model": TINY_MODEL,
            "planner": {"population": 100, "iterations": 3},
        }
        | EVAL,
    ),
    "mpc": (
        "Pendulum-v1",
        400,
        {"eval_every": 200, "checkpoint_every": 200, "model": TINY_MODEL} | EVAL,
    ),
    "alphazero": (
        "modelbased/TicTacToe-v0",
        400,
        {
            "eval_every": 100,
            "checkpoint_every": 20,
            "search": {"num_simulations": 16},
            "eval_simulations": 16,
        }
        | EVAL,
    ),
    "muzero": (
        "CartPole-v1",
        600,
        {
            "eval_every": 200,
            "checkpoint_every": 100,
            "num_envs": 2,
            "search": {"num_simulations": 8},
            "eval_simulations": 8,
            "learning_starts": 100,
        }
        | EVAL,
    ),
    "dreamer": (
        "Pendulum-v1",
        600,
        {
            "eval_every": 200,
            "checkpoint_every": 200,
            "model": {"deter": 32, "hidden": 32, "stoch": 4, "classes": 4},
            "batch_size": 8,
            "seq_len": 16,
            "replay_ratio": 32,
            "learning_starts": 100,
        }
        | EVAL,
    ),
    "planet": (
        "Pendulum-v1",
        600,
        {
            "eval_every": 200,
            "checkpoint_every": 200,
            "model": {"deter": 32, "hidden": 32, "stoch": 4},
            "planner": {"population": 64, "elites": 8, "iterations": 3},
            "horizon": 8,
            "batch_size": 8,
            "seq_len": 16,
            "replay_ratio": 32,
            "learning_starts": 100,
        }
        | EVAL,
    ),
    "tdmpc": (
        "Pendulum-v1",
        600,
        {
            "eval_every": 200,
            "checkpoint_every": 200,
            "net": {"latent_dim": 32, "enc_dim": 32, "mlp_dim": 32, "num_q": 2, "num_bins": 21},
            "planner": {"population": 64, "iterations": 2, "elites": 8},
            "num_pi_trajs": 4,
            "seed_steps": 100,
            "batch_size": 32,
        }
        | EVAL,
    ),
    "pilco": (
        "InvertedPendulum-v5",
        300,
        {
            "eval_every": 100,
            "checkpoint_every": 20,
            "random_steps": 50,
            "horizon": 10,
            "policy_iterations": 10,
            "model": {"max_points": 100, "fit_iterations": 20},
        }
        | EVAL,
    ),
    "lqr": (
        "InvertedPendulum-v5",
        400,
        {"eval_every": 100, "checkpoint_every": 20, "random_steps": 50} | EVAL,
    ),
}


# -- runs through the command line ------------------------------------------------------------
def train_cmd(algo: str, run: Path, config: Path) -> list[str]:
    env, steps, _ = SOAK[algo]
    return [*CLI, "train", algo, "--env", env, "--steps", str(steps), "--seed", "0"] + [
        "--config",
        str(config),
        "--out",
        str(run),
        "--quiet",
    ]


def start(algo: str, run: Path, config: Path) -> subprocess.Popen:
    """``train`` (afresh) or ``train --resume`` when a checkpoint exists."""
    if (run / "checkpoint.pt").is_file():
        cmd = [*CLI, "train", algo, "--resume", str(run), "--quiet"]
    else:
        shutil.rmtree(run, ignore_errors=True)  # killed before its first checkpoint
        cmd = train_cmd(algo, run, config)
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, err = proc.communicate()
    return proc.returncode, err.strip()


def checkpoint_state(run: Path) -> dict[str, Any]:
    """Env steps, episodes and replay size of the run's checkpoint (``None`` if none)."""
    from modelbased.core.checkpoint import safe_load

    path = run / "checkpoint.pt"
    if not path.is_file():
        return {"env_steps": None}
    data = safe_load(path)
    agent = data["agent"]
    buffer = agent.get("buffer")  # the real transitions of PETS, MPC, SAC, MBPO
    size = len(buffer["obs"]) if isinstance(buffer, dict) and "obs" in buffer else None
    return {"env_steps": data["loop"]["env_steps"], "episodes": data["loop"]["episodes"]} | (
        {"replay_size": size} if size is not None else {}
    )


def evals(run: Path) -> list[tuple[int, float]]:
    with (run / "eval.csv").open(newline="") as f:
        return [(int(float(r["env_steps"])), float(r["return_mean"])) for r in csv.DictReader(f)]


def episode_ends(run: Path) -> set[int]:
    with (run / "episodes.csv").open(newline="") as f:
        return {int(float(r["env_steps"])) for r in csv.DictReader(f)}


def last_step(path: Path) -> int:
    """The env steps of the last complete row of a CSV being appended to (0 if none)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return 0
    for line in reversed(lines[1:]):
        try:
            return int(float(line.split(",")[0]))
        except ValueError:
            continue
    return 0


def run_until(
    algo: str, run: Path, config: Path, target: int | None, jitter: float, signum: int
) -> dict[str, Any]:
    """Start (or continue) the run; once its ``episodes.csv`` shows ``target`` steps, wait
    ``jitter`` seconds and send ``signum``; wait for the process. ``target=None``: to the end."""
    before = checkpoint_state(run)["env_steps"]
    started = time.time()
    proc = start(algo, run, config)
    sent = False
    paths = [run / "episodes.csv", run / "train.csv"]
    while target is not None and proc.poll() is None:
        fresh = [p for p in paths if p.is_file() and p.stat().st_mtime > started]
        if fresh and max(last_step(p) for p in fresh) >= target:
            time.sleep(jitter)
            if proc.poll() is None:
                proc.send_signal(signum)
                sent = True
            break
        time.sleep(0.05)
    code, err = finish(proc)
    return {
        "target": target,
        "jitter_s": jitter,
        "signalled": sent,
        "exit_code": code,
        "message": err.splitlines()[-1] if err else "",
        "checkpoint_before": before,
        "checkpoint_after": checkpoint_state(run)["env_steps"],
    }


def soak_one(algo: str, root: Path, rng: np.random.Generator) -> dict[str, Any]:
    """The three runs of one algorithm (see the module docstring) and their comparison."""
    env, steps, settings = SOAK[algo]
    root.mkdir(parents=True, exist_ok=True)
    config = root / "soak.yaml"  # train.csv rows every 1/40 of the run show its progress
    config.write_text(yaml.safe_dump({"log_every": max(steps // 40, 1)} | settings))
    # 1. the reference
    ref = root / "reference"
    t0 = time.perf_counter()
    done = run_until(algo, ref, config, None, 0.0, 0)
    assert done["exit_code"] == 0, done["message"]
    total = time.perf_counter() - t0
    reference = evals(ref)
    # progress shows at episode ends and train.csv rows: a signal then waits up to one more
    per_episode = _train_wall(ref) / max(len(episode_ends(ref)), 40)
    # 2. SIGKILL at 5 random points (env steps, then up to an episode's time more), continued
    killed, kills = root / "killed", []
    for target in np.sort(rng.uniform(0.05, 0.95, KILLS) * steps).astype(int):
        step = max(int(target), (checkpoint_state(killed)["env_steps"] or 0) + 1)
        jitter = rng.uniform(0, 1) * per_episode
        kills.append(run_until(algo, killed, config, step, jitter, signal.SIGKILL))
    end = run_until(algo, killed, config, None, 0.0, 0)
    assert end["exit_code"] == 0, end["message"]
    after_kills = evals(killed)
    # 3. SIGINT at one random point, continued
    stopped = root / "stopped"
    target = int(rng.uniform(0.1, 0.9) * steps)
    sigint = run_until(
        algo, stopped, config, target, rng.uniform(0, 1) * per_episode, signal.SIGINT
    )
    saved = re.search(r"at (\d+) steps", sigint["message"])
    sigint["stopped_at"] = int(saved[1]) if saved else None
    sigint["checkpoint"] = checkpoint_state(stopped)
    sigint["at_episode_end"] = sigint["checkpoint"]["env_steps"] in episode_ends(ref)
    end = run_until(algo, stopped, config, None, 0.0, 0)
    assert end["exit_code"] == 0, end["message"]
    after_stop = evals(stopped)
    final_stop = checkpoint_state(stopped)
    ck = sigint["checkpoint"]
    checks = {
        "kills": sum(k["signalled"] for k in kills),
        "kills_before_first_checkpoint": sum(k["checkpoint_after"] is None for k in kills),
        "kill_evals_equal": after_kills == reference,
        "kill_final_equal": after_kills[-1] == reference[-1],
        "sigint_sent": sigint["signalled"],
        "sigint_evals_equal": after_stop == reference,
        "sigint_final_equal": after_stop[-1] == reference[-1],
        "sigint_reaches_total": final_stop["env_steps"] >= steps,
        "sigint_nothing_lost": sigint["exit_code"] == 130
        and ck["env_steps"] == sigint["stopped_at"]
        and ck.get("replay_size", ck["env_steps"]) == min(ck["env_steps"], _capacity(settings)),
    }
    return {
        "algo": algo,
        "env": env,
        "steps": steps,
        "settings": settings,
        "reference": reference,
        "reference_wall_s": total,
        "kills": kills,
        "after_kills": after_kills,
        "sigint": sigint,
        "after_sigint": after_stop,
        "checks": checks,
    }


def _train_wall(run: Path) -> float:
    with (run / "eval.csv").open(newline="") as f:
        return float(list(csv.DictReader(f))[-1]["wall_time_s"])


def _capacity(settings: dict[str, Any]) -> int:
    return int(settings.get("buffer_size", 10**12))


# -- memory ----------------------------------------------------------------------------------
def rss_mib(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(m[1]) / 1024 if m else None


def memory_one(algo: str, root: Path, minutes: float, every_s: float = 15.0) -> dict[str, Any]:
    """RSS of ``modelbased train ALGO`` (default env and preset) over ``minutes``."""
    shutil.rmtree(root, ignore_errors=True)
    cmd = [*CLI, "train", algo, "--steps", "100000000", "--out", str(root), "--quiet"]
    proc = subprocess.Popen(
        cmd,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    t0, samples = time.monotonic(), []
    while time.monotonic() - t0 < minutes * 60 and proc.poll() is None:
        rss = rss_mib(proc.pid)
        if rss is not None:
            samples.append((time.monotonic() - t0, rss))
        time.sleep(every_s)
    proc.send_signal(signal.SIGINT)
    code, err = finish(proc)
    t = np.array([s[0] for s in samples])
    r = np.array([s[1] for s in samples])
    warm = (t >= minutes * 60 * 5 / 60) & (t <= minutes * 60 * 10 / 60)
    level = float(np.median(r[warm])) if warm.any() else float("nan")
    after = r[t > minutes * 60 * 10 / 60]
    worst = float(np.max(np.abs(after - level)) / level) if len(after) else float("nan")
    state = checkpoint_state(root)
    return {
        "algo": algo,
        "minutes": minutes,
        "samples": [[round(a, 1), round(b, 1)] for a, b in samples],
        "level_mib": level,
        "max_after_mib": float(after.max()) if len(after) else None,
        "min_after_mib": float(after.min()) if len(after) else None,
        "max_deviation": worst,
        "within_10pct": bool(worst <= 0.10),
        "env_steps": state["env_steps"],
        "exit_code": code,
        "message": err.splitlines()[-1] if err else "",
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("kill", "memory"), default="kill")
    p.add_argument("--algos", nargs="+", default=sorted(SOAK))
    p.add_argument("--seed", type=int, default=0, help="of the random kill delays")
    p.add_argument("--minutes", type=float, default=60.0, help="memory part: per algorithm")
    p.add_argument("--root", default="runs/bench-soak")
    p.add_argument("--resume", action="store_true")
    args = p.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    common.setup_torch_threads()
    rows = []
    for algo in args.algos:
        keys = {"part": args.part, "algo": algo}
        if args.resume and any(
            all(r.get(k) == v for k, v in keys.items())
            and (args.part == "kill" or r["args"]["minutes"] == args.minutes)
            for r in common.load_records(NAME)
        ):
            print(f"{NAME}: {args.part} {algo} already stored; skipped (--resume)", flush=True)
            continue
        record = common.start_record(args, [args.seed], **keys)
        root = Path(args.root) / args.part / algo
        if args.part == "kill":
            rng = np.random.default_rng([args.seed, sorted(SOAK).index(algo)])
            shutil.rmtree(root, ignore_errors=True)
            figures = soak_one(algo, root, rng)
            rows.append([algo, *figures["checks"].values()])
        else:
            figures = memory_one(algo, root, args.minutes)
            rows.append([algo, figures["level_mib"], figures["max_deviation"]])
        common.append_record(NAME, record, figures)
        print(f"{NAME}: {args.part} {algo} stored", flush=True)
    if rows:
        header = ["algo"] + (
            ["kills", "kill evals =", "kill final =", "SIGINT", "SIGINT evals =", "SIGINT final ="]
            + ["total", "lost 0"]
            if args.part == "kill"
            else ["RSS MiB after warm-up", "max deviation"]
        )
        common.print_table(header, rows)


if __name__ == "__main__":
    main()
