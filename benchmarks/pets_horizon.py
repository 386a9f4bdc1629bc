"""The seeds' two MPC experiments on Pendulum-v1, with models learned by PETS (torch 1 thread).

Part H, the planning horizon: for each seed, PETS learns for ``--train-steps`` real steps with a
terminal value function (its preset: iCEM 100 x 10 particles, 3 iterations, H 15; gamma 0.99;
the value V(s) fitted by TD(0) on the real data at each refit, then ``--value-steps`` more TD
updates at the end). The learned model and value are then frozen and the same controller is
evaluated at every H in {5, 10, 20, 30, 50}, scoring a plan by its discounted model return with
and without ``gamma^H V(s_H)``; for reference the same controller plans with Pendulum's true
dynamics (so the table separates myopia, which the value fixes, from model error, which grows
with H). Return: mean of ``--episodes`` evaluation episodes per seed, median over seeds.

Part U, the uncertainty penalty: for each seed, PETS (the same preset, no value) at an early
stage (the model fitted on ``--stages`` random transitions: 50, 100 or 200) plans episodes
with lambda in ``--lambdas``, the score being the model return minus lambda times the
particles' disagreement (ensemble spread of the next states). At every real step the chosen
H-step plan's predicted return (mean over particles, no penalty) is compared with its realized
return (the same actions, open loop, in Pendulum's true dynamics from the true state); a plan
is "catastrophic" when predicted - realized > ``threshold x H`` (an average over-estimate of
``threshold`` reward units per step; a step's reward lies in [-16.3, 0]). Reported: the rate of
catastrophic plans at thresholds 1 and 3, the median gap, and the episode return.

Each invocation appends one record per part: part H to results/pets_horizon.json, part U to
results/pets_penalty.json.

Run:  python benchmarks/pets_horizon.py       (about 40 min on 2 quiet cores; --part H|U)
quick: --seeds 0 --train-steps 300 --episodes 1 --horizons 5 15 --lambdas 0 10 --stages 50
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import _common as common
import gymnasium as gym
import numpy as np
import torch

import modelbased as mb
from modelbased.core.seeding import derive_seed
from modelbased.envs.known_dynamics import PendulumDynamics
from modelbased.envs.reward_fns import known_functions
from modelbased.models.model_env import ModelEnv
from modelbased.planning.cem import CEM, ICEMConfig
from modelbased.planning.mpc import MPC, imagined_return

ENV = "Pendulum-v1"
THRESHOLDS = (1.0, 3.0)


def controller(agent: mb.PETS, horizon: int, seed: int) -> tuple[MPC, torch.Generator]:
    cfg = agent.config
    gen = torch.Generator().manual_seed(seed)
    cem = ICEMConfig(**{k: v for k, v in cfg.planner.to_dict().items() if k != "kind"})
    return MPC(CEM(agent.low, agent.high, horizon, cem, gen)), gen


def run_episode(
    agent: mb.PETS,
    model_env: ModelEnv,
    horizon: int,
    episode_seed: int,
    value: Any = None,
    penalty: float = 0.0,
    true_env: ModelEnv | None = None,
) -> dict[str, Any]:
    """One 200-step episode of MPC in the real env; with ``true_env``, each plan's predicted and
    realized (true dynamics, open loop) H-step returns."""
    cfg = agent.config
    mpc, _ = controller(agent, horizon, derive_seed(episode_seed, "plan"))
    particles = 1 if model_env.propagation == "expectation" else cfg.num_particles
    env = gym.make(ENV)
    obs, _ = env.reset(seed=episode_seed)
    total, gaps = 0.0, []
    done = False
    while not done:
        obs_t = torch.as_tensor(obs, dtype=torch.float32)[None]
        score = imagined_return(model_env, obs_t, particles, cfg.gamma, value, penalty)
        with torch.inference_mode():
            plan = mpc.plan(score)
            if true_env is not None:
                seq = plan.actions[:, None]  # [1, 1, H, a]
                predicted = model_env.evaluate_action_sequences(obs_t, seq, cfg.num_particles)
                realized = true_env.evaluate_action_sequences(obs_t, seq, 1)
                gaps.append(float(predicted - realized))
        obs, reward, terminated, truncated, _ = env.step(plan.actions[0, 0].numpy())
        total += float(reward)
        done = terminated or truncated
    return {"return": total, "gaps": gaps}


def true_model_env(seed: int) -> ModelEnv:
    reward_fn, _ = known_functions(ENV)
    gen = torch.Generator().manual_seed(seed)
    return ModelEnv(PendulumDynamics(), reward_fn, propagation="expectation", generator=gen)


def part_h(args: argparse.Namespace) -> dict[str, Any]:
    per_seed: dict[int, dict[str, float]] = {}
    for seed in args.seeds:
        start = time.perf_counter()
        agent = mb.PETS(ENV, seed=seed, terminal_value=True, gamma=0.99, eval_episodes=0)
        agent.learn(args.train_steps)
        agent.value.fit(agent.buffer, args.value_steps, np.random.default_rng(seed))
        learned = time.perf_counter() - start
        out: dict[str, float] = {}
        for kind, model_env in (("model", agent.model_env), ("true", true_model_env(seed))):
            for horizon in args.horizons:
                for use_value in (False, True):
                    returns = [
                        run_episode(
                            agent,
                            model_env,
                            horizon,
                            10_000 * seed + ep,
                            agent.value if use_value else None,
                        )["return"]
                        for ep in range(args.episodes)
                    ]
                    key = f"{kind}/H{horizon}/{'value' if use_value else 'none'}"
                    out[key] = float(np.mean(returns))
                    print(f"seed {seed} {key}: {out[key]:.1f}", flush=True)
        out["learn_s"] = learned
        per_seed[seed] = out
    rows = []
    for kind in ("model", "true"):
        for horizon in args.horizons:
            row: list[Any] = [f"{kind}", horizon]
            for use_value in ("none", "value"):
                vals = [per_seed[s][f"{kind}/H{horizon}/{use_value}"] for s in args.seeds]
                row += [statistics.median(vals)]
            rows.append(row)
    common.print_table(
        ["dynamics", "H", "return, no terminal value", "return, + gamma^H V(s_H)"],
        rows,
        f"Pendulum-v1: MPC horizon with and without a terminal value (median of seeds "
        f"{args.seeds}, {args.episodes} episodes each; model learned in {args.train_steps} steps)",
    )
    return {"per_seed": per_seed, "table": rows}


def part_u(args: argparse.Namespace) -> dict[str, Any]:
    per_seed: dict[int, dict[str, Any]] = {}
    for seed in args.seeds:
        true_env = true_model_env(seed)
        out: dict[str, Any] = {}
        for stage in sorted(args.stages):
            agent = mb.PETS(ENV, seed=seed, random_steps=stage, eval_episodes=0)
            agent.learn(stage)  # ``stage`` random steps; the model is fitted on them
            for lam in args.lambdas:
                eps = [
                    run_episode(
                        agent,
                        agent.model_env,
                        agent.config.horizon,
                        10_000 * seed + ep,
                        penalty=lam,
                        true_env=true_env,
                    )
                    for ep in range(args.episodes)
                ]
                gaps = np.concatenate([e["gaps"] for e in eps])
                horizon = agent.config.horizon
                res = {
                    "return": float(np.mean([e["return"] for e in eps])),
                    "median_gap": float(np.median(gaps)),
                    "plans": len(gaps),
                }
                for th in THRESHOLDS:
                    res[f"rate_{th:g}"] = float(np.mean(gaps > th * horizon))
                out[f"{stage}/{lam:g}"] = res
                print(f"seed {seed} stage {stage} lambda {lam:g}: {res}", flush=True)
        per_seed[seed] = out
    rows = []
    for stage in sorted(args.stages):
        for lam in args.lambdas:
            cell = [per_seed[s][f"{stage}/{lam:g}"] for s in args.seeds]
            med = {k: statistics.median(c[k] for c in cell) for k in cell[0] if k != "plans"}
            rows.append(
                [
                    stage,
                    lam,
                    *(med[f"rate_{th:g}"] for th in THRESHOLDS),
                    med["median_gap"],
                    med["return"],
                ]
            )
    common.print_table(
        [
            "random steps",
            "lambda",
            "catastrophic (gap > 1/step)",
            "(gap > 3/step)",
            "median gap",
            "episode return",
        ],
        rows,
        f"Pendulum-v1: uncertainty penalty vs catastrophic plans (median of seeds {args.seeds})",
    )
    return {"per_seed": per_seed, "table": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--part", choices=("H", "U", "both"), default="both")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--train-steps", type=int, default=1000)
    p.add_argument("--value-steps", type=int, default=20_000)
    p.add_argument("--episodes", type=int, default=2)
    p.add_argument("--horizons", type=int, nargs="+", default=[5, 10, 20, 30, 50])
    p.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 10.0, 100.0])
    p.add_argument("--stages", type=int, nargs="+", default=[50, 100, 200])
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.part in ("H", "both"):
        record = common.start_record(args, seeds=args.seeds, part="H")
        path = common.append_record("pets_horizon", record, {"horizon": part_h(args)})
        print(f"appended a record to {path}")
    if args.part in ("U", "both"):
        record = common.start_record(args, seeds=args.seeds, part="U")
        path = common.append_record("pets_penalty", record, {"penalty": part_u(args)})
        print(f"appended a record to {path}")


if __name__ == "__main__":
    main()
