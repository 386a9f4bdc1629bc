"""Classical control with models (issue 20): iLQR on known and learned dynamics, and hybrid
analytic + learned-residual models under PETS.

Parts (``--part``), one JSON record per seed (and task/model) appended to
``results/classical.json``; ``--resume`` skips what is stored with the same settings:

* ``known`` — MPC with iLQR (``planner.kind: ilqr``) on the env's exact analytic dynamics
  (``envs.known_dynamics``) and known reward: mean return over ``--episodes`` episodes
  (targets: Pendulum-v1 >= -150, CartPoleSwingUp-v0 >= 190) and planning milliseconds per
  action (wall and CPU, one torch thread; target <= 10 ms).
* ``learned`` — the ``mpc`` agent (one deterministic network) planning with iLQR on its mean on
  Pendulum-v1 for ``--steps`` real steps (target: eval >= -200 within 1,000), then the planning
  time per action of iLQR and of the iCEM preset (PETS's Pendulum planner) on the same model
  from the same states (target: iLQR >= 5x faster).
* ``pilco`` — the ``pilco`` agent (its presets) on ``--pilco-tasks`` with the issue's budgets
  (``PILCO_TASKS``): InvertedPendulum-v5 1000 within 1,000 steps, Pendulum-v1 -200 within
  1,500, CartPoleSwingUp-v0 150 within 15 episodes (3,000 steps); reach-and-stay over the
  evaluations and CPU seconds (target: each within 30 minutes of one core).
* ``lqr`` — the ``lqr`` agent (infinite-horizon LQR on a linear model fitted by least squares
  to the real data) on InvertedPendulum-v5: steps to 1000 within 1,000 (reach-and-stay).
* ``backward`` — the iLQR backward pass with one action dimension: its closed-form step
  (``ILQR.scalar_fast_path``) against the general Cholesky and box-QP step, on each task's exact
  model at horizon ``TASKS``' H (median milliseconds over repeats, alternating).
* ``hybrid`` — PETS (Pendulum preset: 7-member ensemble, iCEM) on Pendulum-v1 with the model
  learned alone (``ensemble``), the analytic physics alone with mass and length ``--wrong``
  (1.3: 30% off; ``analytic``) and the two combined (``hybrid``): real steps to -200
  (reach-and-stay over the evaluations) and the final return.

Run: ``python benchmarks/classical.py --part known --seeds 0 1 2``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402
import _stats  # noqa: E402

import modelbased as mb  # noqa: E402
from modelbased.core.callbacks import Callback  # noqa: E402
from modelbased.core.seeding import derive_seed  # noqa: E402
from modelbased.envs import known_functions  # noqa: E402
from modelbased.envs.known_dynamics import analytic_dynamics  # noqa: E402
from modelbased.models import ModelEnv  # noqa: E402
from modelbased.planning.cem import CEM, ICEMConfig  # noqa: E402
from modelbased.planning.ilqr import ILQR, ILQRConfig, Simulator  # noqa: E402
from modelbased.planning.mpc import MPC, imagined_return  # noqa: E402

NAME = "classical"
TASKS = {  # env id -> (horizon, target return)
    "Pendulum-v1": (30, -150.0),
    "modelbased/CartPoleSwingUp-v0": (50, 190.0),
}
KEYS = ["episodes", "steps", "iterations", "wrong", "multi_start"]
PILCO_TASKS = {  # env id -> (real steps, target return)
    "InvertedPendulum-v5": (1000, 1000.0),
    "Pendulum-v1": (1500, -200.0),
    "modelbased/CartPoleSwingUp-v0": (3000, 150.0),
}


def ilqr_controller(env: gym.Env, horizon: int, iterations: int, multi_start: bool = True) -> MPC:
    """MPC around iLQR within the env's action bounds."""
    space = env.action_space
    config = ILQRConfig(iterations=iterations, multi_start=multi_start)
    return MPC(ILQR(torch.as_tensor(space.low), torch.as_tensor(space.high), horizon, config))


def part_known(task: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """iLQR-MPC with the exact analytic model: returns and planning time per action."""
    horizon, target = TASKS[task]
    horizon = args.horizon or horizon
    env = gym.make(task)
    reward_fn, _ = known_functions(task)
    model_env = ModelEnv(analytic_dynamics(task), reward_fn, propagation="expectation")
    mpc = ilqr_controller(env, horizon, args.iterations, args.multi_start)
    returns, wall, cpu, iterations = [], [], [], []
    for episode in range(args.episodes):
        obs, _ = env.reset(seed=derive_seed(seed, "classical", episode))
        mpc.reset()
        total, done = 0.0, False
        while not done:
            w, c = time.perf_counter(), time.process_time()
            score = imagined_return(model_env, torch.as_tensor(obs)[None], 1)
            with torch.inference_mode():
                plan = mpc.plan(score)
            action = plan.actions[0, 0].numpy()
            wall.append(time.perf_counter() - w)
            cpu.append(time.process_time() - c)
            iterations.append(plan.iterations)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
        print(f"  {task} seed {seed} episode {episode}: {total:.1f}", flush=True)
    return {
        "horizon": horizon,
        "target": target,
        "returns": returns,
        "return_mean": float(np.mean(returns)),
        "plan_ms_median": 1000 * statistics.median(wall),
        "plan_ms_mean": 1000 * float(np.mean(wall)),
        "plan_cpu_ms_median": 1000 * statistics.median(cpu),
        "plan_cpu_ms_mean": 1000 * float(np.mean(cpu)),
        "plan_cpu_ms_p90": 1000 * float(np.percentile(cpu, 90)),
        "iterations_mean": float(np.mean(iterations)),
        "multi_start": args.multi_start,
        "actions": len(wall),
    }


def eval_curve(agent: Any, steps: int, threshold: float) -> dict[str, Any]:
    """Learn ``steps`` real steps, evaluating at the agent's schedule into an EvalCurve."""
    curve = common.EvalCurve(threshold)

    class Recorder(Callback):
        def on_eval(self, state: Any, stats: dict[str, Any]) -> None:
            curve.eval_wall += stats.get("wall_s", 0.0)
            curve.eval_cpu += stats.get("cpu_s", 0.0)
            curve.add(state.env_steps, stats["return_mean"])

    agent.learn(steps, callback=Recorder())
    return curve.result()


def part_learned(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """The mpc agent with iLQR on its learned mean model; then iLQR vs iCEM planning time."""
    overrides = {"planner": {"kind": "ilqr", "iterations": args.iterations}, "horizon": 30}
    agent = mb.MPCAgent(
        "Pendulum-v1", seed=seed, eval_every=200, eval_episodes=3, random_steps=200,
        train_every=200, **overrides,
    )  # fmt: skip
    run = eval_curve(agent, args.steps, -200.0)
    # planning time per action on the final model, from states of one real episode
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=derive_seed(seed, "timing"))
    states = []
    for _ in range(args.timing_actions):
        states.append(obs)
        obs, *_ = env.step(agent.act(obs))
    low, high = (torch.as_tensor(b) for b in (agent.low, agent.high))
    icem_cfg = mb.PETSConfig.resolve("Pendulum-v1").planner
    icem = MPC(CEM(low, high, 15, icem_cfg, torch.Generator().manual_seed(seed)))
    ilqr = ilqr_controller(env, 30, args.iterations)
    timing = {}
    for name, mpc, particles in (("ilqr", ilqr, 1), ("icem", icem, 10)):
        wall = []
        for s in states:
            w = time.perf_counter()
            mpc.act(imagined_return(agent.model_env, torch.as_tensor(s)[None], particles))
            wall.append(time.perf_counter() - w)
        timing[f"{name}_plan_ms_median"] = 1000 * statistics.median(wall)
    timing["icem_over_ilqr"] = timing["icem_plan_ms_median"] / timing["ilqr_plan_ms_median"]
    assert isinstance(icem_cfg, ICEMConfig)
    return {"run": run, **timing, "icem": icem_cfg.to_dict()}


def part_hybrid(model: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """PETS (Pendulum preset) with the ensemble, the wrong analytic model or the hybrid."""
    section: dict[str, Any] = {"kind": model}
    if model != "ensemble":
        section |= {"mass_scale": args.wrong, "length_scale": args.wrong}
    agent = mb.PETS("Pendulum-v1", seed=seed, model=section)
    run = eval_curve(agent, args.steps, -200.0)
    return {"run": run, "model": section}


def part_pilco(task: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """PILCO with its preset on ``task`` for the task's budget."""
    steps, target = PILCO_TASKS[task]
    agent = mb.PILCO(task, seed=seed)
    run = eval_curve(agent, steps, target)
    return {"run": run, "budget": steps, "target": target, "config": agent.config.to_dict()}


def part_lqr(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """LQR on a learned linear model, InvertedPendulum-v5, 1,000 real steps."""
    agent = mb.LQRAgent("InvertedPendulum-v5", seed=seed, eval_every=50, eval_episodes=3)
    run = eval_curve(agent, 1000, 1000.0)
    return {"run": run, "budget": 1000, "target": 1000.0, "config": agent.config.to_dict()}


def part_backward(task: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Milliseconds per iLQR backward pass, closed-form one-action step against the general."""
    horizon, _ = TASKS[task]
    env = gym.make(task)
    reward_fn, _ = known_functions(task)
    model_env = ModelEnv(analytic_dynamics(task), reward_fn, propagation="expectation")
    opt = ilqr_controller(env, horizon, 1).optimizer
    assert isinstance(opt, ILQR)
    obs, _ = env.reset(seed=derive_seed(seed, "backward"))
    x0 = torch.as_tensor(obs)[None]
    U = torch.zeros(1, horizon, 1)
    discount = torch.ones(horizon + 1)
    with torch.inference_mode(False), torch.enable_grad():
        transition = imagined_return(model_env, x0, 1).transition
        X, _ = opt._rollout(Simulator(transition, None), x0, U, discount, None)
        expansion = opt._expand(transition, X, U, discount, None)
        mu = torch.zeros(1)
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.timing_actions):
            for fast in (True, False):
                opt.scalar_fast_path = fast
                w = time.process_time()
                opt._backward_pass(expansion, U, mu)
                times[fast].append(time.process_time() - w)
    fast_ms = 1000 * statistics.median(times[True])
    general_ms = 1000 * statistics.median(times[False])
    return {"horizon": horizon, "fast_cpu_ms": fast_ms, "general_cpu_ms": general_ms,
            "speedup": general_ms / fast_ms, "repeats": args.timing_actions}  # fmt: skip


def main() -> None:
    """Parse, run the parts for every seed, append one record per run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--part",
        choices=["known", "learned", "hybrid", "pilco", "lqr", "backward"],
        default="known",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--pilco-tasks", nargs="+", default=list(PILCO_TASKS),
                        choices=list(PILCO_TASKS))  # fmt: skip
    parser.add_argument("--models", nargs="+", default=["hybrid", "ensemble", "analytic"])
    parser.add_argument("--episodes", type=int, default=10, help="known: episodes per seed")
    parser.add_argument("--steps", type=int, default=1000, help="learned/hybrid: real steps")
    parser.add_argument("--iterations", type=int, default=10, help="iLQR iterations per plan")
    parser.add_argument("--horizon", type=int, default=None,
                        help="known: planning horizon (default: the task's in TASKS)")  # fmt: skip
    parser.add_argument("--multi-start", action=argparse.BooleanOptionalAction, default=True,
                        help="known: iLQR's multi-start (ILQRConfig.multi_start)")  # fmt: skip
    parser.add_argument("--wrong", type=float, default=1.3, help="hybrid: mass/length scale")
    parser.add_argument("--timing-actions", type=int, default=50)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    common.setup_torch_threads()
    for seed in args.seeds:
        if args.part in ("known", "backward"):
            runs = [("task", t) for t in args.tasks]
        elif args.part == "learned":
            runs = [("task", "Pendulum-v1")]
        elif args.part == "pilco":
            runs = [("task", t) for t in args.pilco_tasks]
        elif args.part == "lqr":
            runs = [("task", "InvertedPendulum-v5")]
        else:
            runs = [("model", m) for m in args.models]
        for key, value in runs:
            fields = {"part": args.part, key: value}
            if args.part == "known":  # the record's horizon: --resume skips only the same one
                fields["horizon"] = args.horizon or TASKS[value][0]
            if common.skip_stored(NAME, seed, args, KEYS, **fields):
                continue
            record = common.start_record(args, seeds=[seed], **fields)
            if args.part == "known":
                figures = part_known(value, seed, args)
            elif args.part == "learned":
                figures = part_learned(seed, args)
            elif args.part == "pilco":
                figures = part_pilco(value, seed, args)
            elif args.part == "lqr":
                figures = part_lqr(seed, args)
            elif args.part == "backward":
                figures = part_backward(value, seed, args)
            else:
                figures = part_hybrid(value, seed, args)
            common.append_record(NAME, record, figures)
            shown = {
                k: v for k, v in figures.items() if k not in ("returns", "run", "icem", "config")
            }
            if "run" in figures:
                r = figures["run"]
                shown |= {k: r.get(k) for k in ("steps_to_threshold_and_stay", "final_return",
                                                "total_learn_cpu_s")}  # fmt: skip
            print(f"{args.part} {value} seed {seed}: {shown}", flush=True)
    summarize(args)


def summarize(args: argparse.Namespace) -> None:
    """A table of medians over the stored seeds of this part (this command's settings)."""
    records = [
        r for r in common.load_records(NAME)
        if r.get("part") == args.part and all((r.get("args") or {}).get(k) == getattr(args, k)
                                              for k in KEYS)
        and (args.part != "known" or r.get("horizon") == (args.horizon or TASKS[r["task"]][0]))
    ]  # fmt: skip
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(r.get("task") or r.get("model"), []).append(r["figures"])
    rows = []
    if args.part == "backward":
        rows = [
            [
                n,
                len(f),
                _stats.median([x["fast_cpu_ms"] for x in f]),
                _stats.median([x["general_cpu_ms"] for x in f]),
            ]
            for n, f in groups.items()
        ]
        common.print_table(["task", "seeds", "fast ms", "general ms"], rows, "iLQR backward pass")
        return
    for name, figs in groups.items():
        if args.part == "known":
            rets = [f["return_mean"] for f in figs]
            ms = [f["plan_ms_median"] for f in figs]
            cpu = [f.get("plan_cpu_ms_median", float("nan")) for f in figs]
            rows.append([name, len(figs), _stats.median(rets), min(rets), _stats.median(ms),
                         _stats.median(cpu)])  # fmt: skip
        else:
            stay = [f["run"]["steps_to_threshold_and_stay"] for f in figs]
            final = [f["run"]["final_return"] for f in figs]
            cpu = [f["run"]["total_learn_cpu_s"] for f in figs]
            rows.append([name, len(figs), common.median_or_none(stay), _stats.median(final),
                         _stats.median(cpu)])  # fmt: skip
    header = (
        ["task", "seeds", "median return", "worst seed", "plan ms (median)", "plan CPU ms"]
        if args.part == "known"
        else ["run", "seeds", "median steps to target (stay)", "median final return", "CPU s"]
    )
    common.print_table(header, rows, f"classical: part {args.part}")


if __name__ == "__main__":
    main()
