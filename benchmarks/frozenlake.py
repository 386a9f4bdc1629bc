"""FrozenLake-v1 (4x4, slippery): planning on a known vs a learned model.

Dynamic programming as in Sutton & Barto (2018), sections 4.3-4.4 (value and policy iteration),
on the env's known transition table, and certainty-equivalence planning on a maximum-likelihood
model counted from N uniformly random steps (the learned models of chapter 8). Measures:

* known model: V(start) (optimal success probability with gamma = 1, expected 0.8235) and the
  success rate of the greedy policy over ``--eval-episodes`` episodes of the evaluation env,
  which keeps FrozenLake's 100-step time limit (expected ~0.74);
* learned model, N in ``--model-steps``, ``--seeds`` seeds: median success rate and its gap to
  the known-model policy (target: within 0.03 at N = 20000);
* the value-error bound of each learned model (simulation lemma, gamma ``--bound-gamma``):
  eps (max TV), eps_R, the measured ||V* - V^*||_inf beside (eps_R + 2 gamma eps V_max)/(1-gamma);
* side by side (gamma 0.99, ``--rl-steps`` steps each): Dyna-Q with the stochastic count model
  (20 planning steps) and Q-learning.

Success rates are measured by ``agent.evaluate`` (Monte Carlo, standard error ~0.014 at 1000
episodes), and also computed exactly: the probability that the greedy policy (ties split
uniformly, as ``evaluate`` breaks them) reaches the goal within 100 steps, on the known model.

Each invocation appends one record to ``results/frozenlake.json`` and redraws
``results/frozenlake.png``.

Run:  python benchmarks/frozenlake.py        (quick: --seeds 2 --rl-steps 10000; full ~1 min)
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import gymnasium as gym
import numpy as np
from _common import RESULTS, append_record, print_table, pyplot, setup_torch_threads, start_record

import modelbased as mb
from modelbased.diagnostics import value_error_bound
from modelbased.models.tabular import TabularMDP

ENV = "FrozenLake-v1"
HORIZON = 100  # FrozenLake-v1's registered time limit
MDP = TabularMDP.from_env(gym.make(ENV))


def exact_success(Q: np.ndarray, horizon: int = HORIZON) -> float:
    """P(reach the goal within ``horizon`` steps from the start) under greedy-on-``Q``."""
    pi = (Q.max(axis=1, keepdims=True) == Q).astype(float)
    pi /= pi.sum(axis=1, keepdims=True)
    r_pi = (pi * MDP.R).sum(axis=1)
    c_pi = np.einsum("sa,sat->st", pi, MDP.continuation)
    v = np.zeros(MDP.n_states)
    for _ in range(horizon):
        v = r_pi + c_pi @ v
    return float(v[0])


def score(agent: mb.Agent, episodes: int) -> dict[str, float]:
    stats = agent.evaluate(episodes=episodes, seed=12345)
    return {"success_rate": stats["return_mean"], "success_exact": exact_success(agent.Q)}


def known(cls: type[mb.Agent], episodes: int) -> dict[str, Any]:
    agent = cls(ENV, seed=0)  # preset: gamma 1.0, model=known; plans at construction
    return {"V_start": float(agent.V[0]), "iterations": agent.iterations} | score(agent, episodes)


def learned(n: int, seed: int, episodes: int, bound_gamma: float) -> dict[str, float]:
    agent = mb.ValueIteration(
        ENV, seed=seed, model="learned", model_steps=n, eval_every=10**9, eval_episodes=1
    )
    agent.learn(n)  # acts at random for n steps, counting transitions, then plans
    bound = value_error_bound(MDP, agent.model.to_mdp(), bound_gamma).summary()
    return {"V_start": float(agent.V[0])} | score(agent, episodes) | bound


def td_agent(cls: type[mb.Agent], seed: int, steps: int, episodes: int) -> dict[str, float]:
    agent = cls(ENV, seed=seed, gamma=0.99, eval_every=10**9, eval_episodes=1)
    agent.learn(steps)
    return score(agent, episodes)


def median(runs: list[dict[str, float]], key: str) -> float:
    return float(np.median([r[key] for r in runs]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--eval-episodes", type=int, default=1000)
    p.add_argument("--model-steps", type=int, nargs="+", default=[1000, 2000, 5000, 10000, 20000])
    p.add_argument("--rl-steps", type=int, default=50_000, help="0 skips Dyna-Q / Q-learning")
    p.add_argument("--bound-gamma", type=float, default=0.95, help="discount of the bound")
    args = p.parse_args()
    setup_torch_threads()
    record = start_record(args, seeds=range(args.seeds))
    seeds, eps = range(args.seeds), args.eval_episodes

    base = {
        "value iteration": known(mb.ValueIteration, eps),
        "policy iteration": known(mb.PolicyIteration, eps),
    }
    print_table(
        ["known model", "V(start)", "iterations", "success rate", "exact P(success)"],
        [
            [k, r["V_start"], r["iterations"], r["success_rate"], r["success_exact"]]
            for k, r in base.items()
        ],
        f"FrozenLake 4x4 slippery, gamma 1, {eps} evaluation episodes",
    )
    ref, ref_exact = (
        base["value iteration"]["success_rate"],
        base["value iteration"]["success_exact"],
    )

    t0 = time.perf_counter()
    by_n = {n: [learned(n, s, eps, args.bound_gamma) for s in seeds] for n in args.model_steps}
    rows, learned_summary = [], {}
    for n, runs in by_n.items():
        rate, exact = median(runs, "success_rate"), median(runs, "success_exact")
        worst = min(r["success_exact"] for r in runs)
        learned_summary[n] = {
            "success_rate_median": rate,
            "gap": ref - rate,
            "success_exact_median": exact,
            "gap_exact": ref_exact - exact,
            "worst_exact": worst,
            "runs": runs,
        }
        rows.append(
            [
                n,
                median(runs, "V_start"),
                rate,
                ref - rate,
                exact,
                ref_exact - exact,
                learned_summary[n]["worst_exact"],
            ]
        )
    print_table(
        [
            "random steps N",
            "V(start) est.",
            "success (median)",
            "gap",
            "exact (median)",
            "exact gap",
            "exact (worst)",
        ],
        rows,
        f"Value iteration on a learned model, {args.seeds} seeds "
        f"({time.perf_counter() - t0:.1f} s)",
    )

    print_table(
        ["random steps N", "eps (TV)", "eps_R", "gap ||V*-V^*||", "bound", "holds (all seeds)"],
        [
            [
                n,
                median(runs, "eps"),
                median(runs, "eps_R"),
                median(runs, "gap"),
                median(runs, "bound"),
                all(r["gap"] <= r["bound"] for r in runs),
            ]
            for n, runs in by_n.items()
        ],
        f"Value-error bound of the learned models, gamma {args.bound_gamma} (medians)",
    )

    rl: dict[str, Any] = {}
    if args.rl_steps:
        for name, cls in (
            ("Dyna-Q (stochastic model, n=20)", mb.DynaQ),
            ("Q-learning", mb.QLearning),
        ):
            t0 = time.perf_counter()
            runs = [td_agent(cls, s, args.rl_steps, eps) for s in seeds]
            rl[name] = {
                "success_rate_median": median(runs, "success_rate"),
                "success_exact_median": median(runs, "success_exact"),
                "runs": runs,
                "wall_s": time.perf_counter() - t0,
            }
        print_table(
            ["agent", "success (median)", "exact (median)", "gap to VI (exact)", "wall s"],
            [
                [
                    k,
                    r["success_rate_median"],
                    r["success_exact_median"],
                    ref_exact - r["success_exact_median"],
                    r["wall_s"],
                ]
                for k, r in rl.items()
            ],
            f"{args.rl_steps} real steps, gamma 0.99, {args.seeds} seeds",
        )

    data = {"known_model": base, "learned_model": learned_summary, "rl": rl}
    path = append_record("frozenlake", record, data)
    plot(base, learned_summary, rl)
    print(f"\nappended a record to {path}; wrote {path.with_suffix('.png')}")


def plot(base: dict[str, Any], learned_summary: dict[int, Any], rl: dict[str, Any]) -> None:
    fig, ax = pyplot().subplots(figsize=(6.5, 4.5))
    ns = list(learned_summary)
    for key, label in (("success_rate", "evaluated"), ("success_exact", "exact")):
        ax.plot(
            ns,
            [learned_summary[n][f"{key}_median"] for n in ns],
            "o-",
            label=f"VI on learned model ({label}, median)",
        )
        ax.axhline(base["value iteration"][key], ls="--", lw=0.8, color="gray")
    for name, r in rl.items():
        ax.axhline(
            r["success_exact_median"],
            ls=":",
            label=f"{name} (exact)",
            color="C3" if "Dyna" in name else "C4",
        )
    ax.set(
        xscale="log",
        xlabel="random steps used to learn the model",
        ylabel="success rate",
        title="FrozenLake 4x4: known-model optimum (dashed) vs learned models",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "frozenlake.png", dpi=120)


if __name__ == "__main__":
    main()
