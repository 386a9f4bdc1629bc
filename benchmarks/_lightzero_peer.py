"""LightZero's MuZero on CartPole-v1, run by ``muzero.py --part lightzero`` in LightZero's own venv:

    .lightzero/bin/python benchmarks/_lightzero_peer.py --seed 0 --steps 15000 --minutes 100

LightZero 0.2.0's shipped config ``zoo/classic_control/cartpole/config/cartpole_muzero_config.py``
(8 collector envs, 25 simulations, 100 updates per collect of 8 episodes, batch 256, the
self-supervised consistency loss on, BN MLP) with what a CPU run and a fair comparison need:
``CartPole-v1`` instead of its ``CartPole-v0`` (the 500-step task ours is measured on),
``cuda=False``, the ``base`` env manager (no subprocesses), ``stop_value`` out of reach (the run
is not stopped at the first crossing) and a wall-clock cap (``--minutes``) at which the next
evaluation ends the run. Its evaluator keeps its default of 3 episodes per evaluation (at about
1 env step/s per searched episode on this CPU, 10 would cost more than the training).

Evaluations are intercepted at ``MuZeroEvaluator.eval``: the env steps collected, the mean
return and the wall/CPU seconds spent learning so far (evaluations excluded). Prints one JSON
object on the last line of stdout.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import tempfile
import time
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=15_000)
    parser.add_argument("--minutes", type=float, default=100.0)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from lzero.entry import train_muzero
    from lzero.worker import muzero_evaluator

    zoo = importlib.import_module("zoo.classic_control.cartpole.config.cartpole_muzero_config")
    main_config, create_config = zoo.main_config, zoo.create_config
    main_config.env.env_id = "CartPole-v1"
    main_config.env.stop_value = 1e9
    main_config.policy.cuda = False
    main_config.policy.device = "cpu"
    create_config.env_manager.type = "base"
    workdir = tempfile.mkdtemp(prefix="lightzero-")
    main_config.exp_name = os.path.join(workdir, f"cartpole_muzero_seed{args.seed}")

    curve: list[dict[str, float]] = []
    clock = {"wall0": time.perf_counter(), "cpu0": time.process_time(), "eval_wall": 0.0}
    clock["eval_cpu"] = 0.0
    original = muzero_evaluator.MuZeroEvaluator.eval

    def timed_eval(
        self: Any,
        save_ckpt_fn: Any = None,
        train_iter: int = -1,
        envstep: int = -1,
        *rest: Any,
        **kw: Any,
    ) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        stop, info = original(self, save_ckpt_fn, train_iter, envstep, *rest, **kw)
        clock["eval_wall"] += time.perf_counter() - wall
        clock["eval_cpu"] += time.process_time() - cpu
        mean = info.get("eval_episode_return_mean") if isinstance(info, dict) else None
        point = {
            "steps": int(envstep),
            "return": float(mean) if mean is not None else float("nan"),
            "learn_wall_s": time.perf_counter() - clock["wall0"] - clock["eval_wall"],
            "learn_cpu_s": time.process_time() - clock["cpu0"] - clock["eval_cpu"],
            "train_iter": int(train_iter),
        }
        curve.append(point)
        print(f"lightzero eval {point}", flush=True)
        over = time.perf_counter() - clock["wall0"] > 60 * args.minutes
        return stop or over, info

    muzero_evaluator.MuZeroEvaluator.eval = timed_eval
    train_muzero([main_config, create_config], seed=args.seed, max_env_step=args.steps)
    print(
        json.dumps(
            {
                "curve": curve,
                "config": {
                    "num_simulations": main_config.policy.num_simulations,
                    "update_per_collect": main_config.policy.update_per_collect,
                    "batch_size": main_config.policy.batch_size,
                    "collector_env_num": main_config.env.collector_env_num,
                    "n_evaluator_episode": main_config.env.n_evaluator_episode,
                },
                "wall_s": time.perf_counter() - clock["wall0"],
                "cpu_s": time.process_time() - clock["cpu0"],
                "minutes_cap": args.minutes,
            }
        )
    )


if __name__ == "__main__":
    main()
