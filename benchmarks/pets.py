"""PETS on Pendulum-v1: real env steps to an eval return >= -200 (reached and kept) against
model-free SAC, and the planner's speed against mbrl-lib 0.2.0 -- torch pinned to 1 thread,
contenders run in turn.

Part 1, seeds 0 1 2: ours is ``mb.PETS("Pendulum-v1", seed=s)`` (the tuned preset: iCEM
population 100, 10 elites, 3 iterations, 10 particles, H 15, 200 random steps, refit every 200)
with ``eval_every=100, eval_episodes=5`` (deterministic = planned episodes) for its whole budget
of ``--pets-steps`` (1,500); SB3 SAC (defaults but ``learning_starts=1000``, as shared/PEERS.md)
evaluated on 5 deterministic episodes of a separate env every 500 steps, for ``--sac-steps``
(10,000). No run stops at the threshold: from each stored curve come the steps from which every
later eval stays >= -200 (``steps_to_threshold_and_stay``), the first crossing, the final eval
and the mean of the last 5 evals (``benchmarks/_stats.py``), and the learning time (evaluations
excluded) up to those steps. One record per seed is appended to results/pets_pendulum.json
(a stopped invocation keeps its finished seeds); results/pets_pendulum.png draws every stored
curve.

Part 2: seconds per planned action, ours (``plan_action``) vs mbrl-lib's
``TrajectoryOptimizerAgent.act``, both on Pendulum-v1, a 7-member 4x200 ensemble fitted by each
library on 200 random steps, CEM, TS1 / mbrl ``random_model``, H 15: (a) mbrl's
``pets_cartpole`` setting (population 350, 35 elites, 5 iterations, 20 particles), (b) small
(100, 10, 5, 5), and a tiny MPC-sized one (50, 5, 5, 1); GFLOP/s against one large
``torch.bmm`` and the share of each call's time outside matmul kernels (at most
1 - GFLOP/s / bmm GFLOP/s; torch.profiler's figure is looser);
(c) ours planning 16 start states in one ``optimize`` call vs 16 calls of one, at
each setting (the gain shrinks as one call's work grows: at (a) one call already runs near the
bmm rate). One record per invocation is appended to results/pets_planning_speed.json.

Run:  .bench/bin/python benchmarks/pets.py (part 1 about 2.5 h: each 5-episode PETS eval
      plans 1,000 steps, about 2 min; part 2 about 4 min; --part 1|2 runs one part)
quick: --seeds 0 --pets-steps 300 --pets-eval-episodes 1 --sac-steps 1000 --repeats 1
Without stable-baselines3 or mbrl-lib the peer columns are skipped with the reason printed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import _common as common
import gymnasium as gym
import numpy as np
import torch
from _common import timed
from _mbrl_peer import make_mbrl_pets, mbrl_available

import modelbased as mb
from modelbased.planning.mpc import imagined_return

ENV, THRESHOLD = "Pendulum-v1", -200.0
# population, elites, iterations, particles; "tiny" is an MPC-sized plan (Nagabandi et al. 2018
# use one model rollout per candidate), where one call's work is small and batching B states pays
SETTINGS = {"a": (350, 35, 5, 20), "b": (100, 10, 5, 5), "tiny": (50, 5, 5, 1)}
LABELS = {"a": "(a) pets_cartpole 350x20", "b": "(b) small 100x5", "tiny": "tiny 50x1"}
BATCH_KEYS = (
    "batched_s",
    "separate_s",
    "speedup_wall",
    "batched_cpu_s",
    "separate_cpu_s",
    "speedup_cpu",
)


class PetsTracker(mb.Callback):
    """The eval curve, with each evaluation's own time (its stats' ``wall_s``/``cpu_s``) kept
    apart from the learning time."""

    def __init__(self) -> None:
        self.curve = common.EvalCurve(THRESHOLD)
        self.train: list[dict[str, float]] = []

    def on_train(self, state: Any, scalars: dict[str, float]) -> None:
        self.train.append({"steps": state.env_steps, **scalars})

    def on_eval(self, state: Any, evaluation: dict[str, Any]) -> None:
        self.curve.eval_wall += evaluation["wall_s"]
        self.curve.eval_cpu += evaluation["cpu_s"]
        self.curve.add(state.env_steps, evaluation["return_mean"])


def run_pets(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    agent = mb.PETS(
        ENV, seed=seed, eval_every=args.pets_eval_every, eval_episodes=args.pets_eval_episodes
    )
    tracker = PetsTracker()
    agent.learn(args.pets_steps, callback=tracker)
    return tracker.curve.result() | {"train_scalars": tracker.train}


def run_sac(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    eval_env = DummyVecEnv([lambda: Monitor(gym.make(ENV))])
    eval_env.seed(10_000 + seed)
    model = SAC(
        "MlpPolicy",
        ENV,
        seed=seed,
        learning_starts=args.sac_learning_starts,
        device="cpu",
        verbose=0,
    )
    curve = common.EvalCurve(THRESHOLD)

    class Eval(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % args.sac_eval_every:
                return True
            ret = curve.timed_eval(
                lambda: evaluate_policy(model, eval_env, n_eval_episodes=5, deterministic=True)[0]
            )
            curve.add(self.num_timesteps, float(ret))
            return True

    model.learn(args.sac_steps, callback=Eval())
    return curve.result() | {"learning_starts": args.sac_learning_starts}


def part1(args: argparse.Namespace) -> None:
    try:
        import stable_baselines3  # noqa: F401

        sac_why = ""
    except ImportError as exc:
        sac_why = f"stable-baselines3 not installed: {exc}"
        print(f"SAC column skipped: {sac_why}")
    sac_cfg = {"learning_starts": args.sac_learning_starts, "other": "SB3 defaults"}
    rows = []
    for seed in args.seeds:  # one contender after the other, never in parallel
        record = common.start_record(args, seeds=[seed], part="pendulum")
        pets = run_pets(seed, args)
        print(f"PETS seed {seed}: {brief(pets)}", flush=True)
        sac = run_sac(seed, args) if not sac_why else {"skipped": sac_why}
        if not sac_why:
            print(f"SAC seed {seed}: {brief(sac)}", flush=True)
        figures = {"threshold": THRESHOLD, "pets": pets, "sac": sac, "sac_config": sac_cfg}
        path = common.append_record("pets_pendulum", record, figures)
        for name, run in (("PETS", pets), ("SB3 SAC", sac)):
            rows.append([seed, name, *(run.get(k) for k in TABLE_KEYS)])
    common.print_table(
        ["seed", "agent", "reach & stay", "first crossing", "final", "last 5", "learn s to stay"],
        rows,
        f"{ENV}: real env steps from which every eval stays >= {THRESHOLD:g} (this invocation;"
        " `benchmarks/report.py` summarizes every record)",
    )
    plot(common.load_records("pets_pendulum"))
    print(f"\nappended {len(args.seeds)} record(s) to {path}; wrote {path.with_suffix('.png')}")


TABLE_KEYS = (
    "steps_to_threshold_and_stay",
    "first_crossing",
    "final_return",
    "last5_mean",
    "learn_wall_s_to_steps_to_threshold_and_stay",
)


def brief(run: dict[str, Any]) -> str:
    evals = [round(p["return"]) for p in run["curve"]]
    return (
        f"reaches and stays >= {THRESHOLD:g} from {run['steps_to_threshold_and_stay']}, first "
        f"at {run['first_crossing']}, last-5 mean {run['last5_mean']}, evals {evals}"
    )


def plot(records: list[dict[str, Any]]) -> None:
    """Every stored curve, PETS and SB3 SAC, one colour each."""
    fig, ax = common.pyplot().subplots(figsize=(7, 4.5))
    series = (("pets", "tab:blue", "PETS (ours)"), ("sac", "tab:orange", "SB3 SAC"))
    for name, color, label in series:
        curves = [r["figures"][name]["curve"] for r in records if r["figures"][name].get("curve")]
        for k, curve in enumerate(curves):
            xs, ys = zip(*[(p["steps"], p["return"]) for p in curve], strict=True)
            ax.plot(xs, ys, "o-", color=color, alpha=0.6, ms=3, label=label if k == 0 else None)
    ax.axhline(THRESHOLD, color="gray", ls="--", lw=0.8)
    ax.set(
        xscale="log",
        xlabel="real env steps",
        ylabel="eval return (mean of 5 episodes)",
        title=f"{ENV}: PETS vs SAC, {len(records)} stored run(s)",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(common.RESULTS / "pets_pendulum.png", dpi=120)


# -- part 2: planning speed ------------------------------------------------------------------
def our_agent(population: int, elites: int, iterations: int, particles: int) -> mb.PETS:
    planner = {"kind": "cem", "population": population, "elites": elites, "iterations": iterations}
    agent = mb.PETS(
        ENV,
        seed=0,
        planner=planner,
        num_particles=particles,
        horizon=15,
        propagation="ts1",
        random_steps=200,
        train_every=200,
        eval_episodes=0,
    )
    agent.learn(200)  # 200 random steps, the model is fitted at step 200
    return agent


def mbrl_agent(population: int, elites: int, iterations: int, particles: int) -> Any:
    """mbrl-lib's PETS agent as ``mbrl/algorithms/pets.py`` builds it, on Pendulum-v1, with its
    model fitted on 200 random steps."""
    return make_mbrl_pets(population, elites, iterations, particles, seed=0).agent


def row_flops(obs: int = 3, act: int = 1, hidden: int = 200, layers: int = 4) -> int:
    """Forward FLOPs per row of the 4x200 net; output mean + log-variance of the obs delta."""
    return 2 * ((obs + act) * hidden + (layers - 1) * hidden**2 + hidden * 2 * obs)


def bmm_gflops(repeats: int) -> float:
    a, b = torch.randn(7, 5000, 200), torch.randn(7, 200, 200)
    wall, _ = timed(lambda: torch.bmm(a, b), repeats)
    return 2 * 7 * 5000 * 200 * 200 / wall / 1e9


MATMUL_OPS = {"aten::bmm", "aten::baddbmm", "aten::addmm", "aten::mm", "aten::matmul"}


def outside_matmul_share(fn: Callable[[], object]) -> float:
    """Share of one ``fn()`` call's wall time spent outside matmul kernels, from torch.profiler
    (the matmul ops' self CPU time over the profiled call's wall time). A loose upper bound: the
    profiler's own cost, some microseconds per op over thousands of small ops, counts as outside.
    The tighter bound is ``1 - GFLOP/s / bmm GFLOP/s`` (matmuls no faster than one large bmm)."""
    fn()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        fn()
        wall = time.perf_counter() - start
    mm = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in MATMUL_OPS) / 1e6
    return max(0.0, 1.0 - mm / wall)


def batch16(agent: mb.PETS, starts: torch.Tensor, repeats: int) -> dict[str, float]:
    """Ours: 16 start states in one ``optimize`` call against 16 calls of one state."""
    cfg, opt = agent.config, agent.mpc.optimizer

    def plan(obs: torch.Tensor) -> None:
        score = imagined_return(
            agent.model_env,
            obs,
            cfg.num_particles,
            cfg.gamma,
            uncertainty_penalty=cfg.uncertainty_penalty,
        )
        opt.optimize(score, batch_size=len(obs))

    one_w, one_c = timed(lambda: plan(starts), repeats)
    sep_w, sep_c = timed(lambda: [plan(starts[i : i + 1]) for i in range(len(starts))], repeats)
    values = (one_w, sep_w, sep_w / one_w, one_c, sep_c, sep_c / one_c)
    return dict(zip(BATCH_KEYS, values, strict=True))


def part2(args: argparse.Namespace) -> None:
    record = common.start_record(args, seeds=[0], part="planning_speed")
    ok, why = mbrl_available()
    if not ok:
        print(f"mbrl-lib column skipped: not importable ({why})")
    reset_env = gym.make(ENV)
    obs = reset_env.reset(seed=0)[0]
    starts = torch.as_tensor(np.stack([reset_env.reset(seed=100 + i)[0] for i in range(16)]))
    bmm = bmm_gflops(max(3, args.repeats))
    out: dict[str, Any] = {"bmm_7x5000x200x200_gflops": bmm, "mbrl": why, "settings": {}}
    rows, batch_rows = [], []
    for name, (pop, elites, iters, particles) in SETTINGS.items():
        flops = iters * 15 * pop * particles * row_flops()
        agent = our_agent(pop, elites, iters, particles)
        plan = lambda agent=agent: agent.plan_action(obs, agent.model_env, agent.mpc)  # noqa: E731
        ours_w, ours_c = timed(plan, args.repeats)
        outside = outside_matmul_share(plan)
        r: dict[str, Any] = {
            "flops_per_action": flops,
            "ours_s": ours_w,
            "ours_cpu_s": ours_c,
            "ours_gflops": flops / ours_w / 1e9,
            "ours_outside_matmul": outside,
        }
        if ok:
            peer = mbrl_agent(pop, elites, iters, particles)
            mbrl_w, mbrl_c = timed(lambda peer=peer: peer.act(obs), args.repeats)
            r |= {
                "mbrl_s": mbrl_w,
                "mbrl_cpu_s": mbrl_c,
                "mbrl_gflops": flops / mbrl_w / 1e9,
                "ratio_mbrl_over_ours": mbrl_w / ours_w,
                "mbrl_outside_matmul": outside_matmul_share(lambda peer=peer: peer.act(obs)),
            }
        if name in args.batch_settings:
            r["batch16"] = b = batch16(agent, starts, args.batch_repeats)
            batch_rows.append([LABELS[name], *(b[k] for k in BATCH_KEYS)])
        out["settings"][name] = r
        rows.append(
            [
                LABELS[name],
                ours_w,
                r.get("mbrl_s"),
                r.get("ratio_mbrl_over_ours"),
                ours_c,
                r.get("mbrl_cpu_s"),
                r["ours_gflops"],
                r.get("mbrl_gflops"),
                bmm,
                1 - r["ours_gflops"] / bmm,
                r["ours_outside_matmul"],
                r.get("mbrl_gflops") and 1 - r["mbrl_gflops"] / bmm,
                r.get("mbrl_outside_matmul"),
            ]
        )
    common.print_table(
        [
            "setting",
            "ours s/action",
            "mbrl s/action",
            "mbrl/ours",
            "ours cpu s",
            "mbrl cpu s",
            "ours GFLOP/s",
            "mbrl GFLOP/s",
            "bmm GFLOP/s",
            "ours outside mm <=",
            "(profiled)",
            "mbrl outside mm <=",
            "(profiled)",
        ],
        rows,
        f"Planning one action, {ENV}, CEM + TS1, H 15, 1 thread (median of {args.repeats})",
    )
    common.print_table(
        [
            "setting",
            "1 call of 16 s",
            "16 calls of 1 s",
            "speedup",
            "cpu 1x16 s",
            "cpu 16x1 s",
            "speedup cpu",
        ],
        batch_rows,
        f"Ours: 16 start states per optimize call (median of {args.batch_repeats})",
    )
    path = common.append_record("pets_planning_speed", record, out)
    print(f"\nappended a record to {path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--part", choices=("1", "2", "both"), default="both")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--pets-steps", type=int, default=1500)
    p.add_argument("--pets-eval-every", type=int, default=100)
    p.add_argument("--pets-eval-episodes", type=int, default=5)
    p.add_argument("--sac-steps", type=int, default=10_000)
    p.add_argument("--sac-eval-every", type=int, default=500)
    p.add_argument("--sac-learning-starts", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=5, help="timed plans per contender (median)")
    p.add_argument("--batch-repeats", type=int, default=3)
    p.add_argument("--batch-settings", nargs="*", default=list(SETTINGS), help="for part (c)")
    args = p.parse_args()
    torch.set_num_threads(1)  # every contender, SB3 and mbrl-lib included
    if args.part in ("1", "both"):
        part1(args)
    if args.part in ("2", "both"):
        part2(args)


if __name__ == "__main__":
    main()
