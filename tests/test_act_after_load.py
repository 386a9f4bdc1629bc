"""``act()`` works for every registered algorithm straight after ``load`` in a fresh process,
and ``diagnose --policy RUN_DIR`` acts with a trained PETS agent."""

import json
import subprocess
import sys
import textwrap

import numpy as np

import modelbased as mb

PLANNER = {"kind": "icem", "population": 16, "elites": 4, "iterations": 2}
TINY_MODEL = {"ensemble_size": 2, "elites": 1, "hidden": 16, "layers": 2, "max_epochs": 3}
# per algorithm: env, real steps, overrides small enough for a few seconds of training
BRIEF = {
    "q-learning": ("modelbased/DynaMaze-v0", 50, {}),
    "dyna-q": ("modelbased/DynaMaze-v0", 50, {}),
    "dyna-q-plus": ("modelbased/DynaMaze-v0", 50, {}),
    "prioritized-sweeping": ("modelbased/DynaMaze-v0", 50, {}),
    "value-iteration": ("FrozenLake-v1", 5, {}),
    "policy-iteration": ("FrozenLake-v1", 40, {"model": "learned", "model_steps": 20}),
    "pets": (
        "Pendulum-v1",
        40,
        {
            "model": TINY_MODEL,
            "planner": PLANNER,
            "horizon": 5,
            "num_particles": 2,
            "random_steps": 30,
            "train_every": 30,
        },
    ),
    "mpc": (
        "Pendulum-v1",
        40,
        {
            "model": TINY_MODEL | {"ensemble_size": 1},
            "horizon": 5,
            "planner": {"population": 32},
            "random_steps": 30,
        },
    ),
    "sac": (
        "Pendulum-v1",
        40,
        {"learning_starts": 30, "batch_size": 16, "sac": {"hidden": [16, 16]}},
    ),
    "mbpo": (
        "Pendulum-v1",
        40,
        {
            "learning_starts": 30,
            "batch_size": 16,
            "model": TINY_MODEL,
            "sac": {"hidden": [16, 16]},
            "rollouts_per_step": 4,
            "model_train_every": 30,
            "gradient_steps": 1,
        },
    ),
    "alphazero": (
        "modelbased/TicTacToe-v0",
        10,
        {
            "parallel_games": 2,
            "eval_simulations": 4,
            "search": {"num_simulations": 4},
            "updates_per_iteration": 1,
            "batch_size": 4,
        },
    ),
    "mcts": ("modelbased/TicTacToe-v0", 5, {"search": {"num_simulations": 4}}),
    "dreamer": (
        "Pendulum-v1",
        40,
        {
            "model": {"deter": 16, "hidden": 16, "stoch": 4, "classes": 4},
            "batch_size": 4,
            "seq_len": 8,
            "replay_ratio": 16,
            "learning_starts": 20,
        },
    ),
    "planet": (
        "Pendulum-v1",
        40,
        {
            "model": {"deter": 16, "hidden": 16, "stoch": 4},
            "planner": {"population": 16, "elites": 4, "iterations": 2},
            "horizon": 4,
            "batch_size": 4,
            "seq_len": 8,
            "replay_ratio": 16,
            "learning_starts": 20,
        },
    ),
    "pilco": (
        "InvertedPendulum-v5",
        40,
        {
            "random_steps": 20,
            "horizon": 3,
            "policy_iterations": 2,
            "policy": {"basis": 4},
            "model": {"max_points": 20, "fit_iterations": 5},
        },
    ),
    "lqr": ("InvertedPendulum-v5", 40, {"random_steps": 20}),
    "muzero": (
        "CartPole-v1",
        40,
        {
            "num_envs": 2,
            "eval_simulations": 4,
            "search": {"num_simulations": 4},
            "learning_starts": 20,
            "batch_size": 8,
            "net": {"hidden": 16, "state_dim": 8},
        },
    ),
    "tdmpc": (
        "Pendulum-v1",
        40,
        {
            "net": {"latent_dim": 16, "enc_dim": 16, "mlp_dim": 16, "num_q": 2, "num_bins": 21},
            "planner": {"population": 16, "iterations": 2, "elites": 4},
            "num_pi_trajs": 2,
            "seed_steps": 30,
            "pretrain_updates": 5,
            "batch_size": 8,
        },
    ),
}


def test_every_registered_algorithm_is_covered():
    assert set(BRIEF) == set(mb.ALGORITHMS)


def test_act_after_load_in_a_fresh_process(tmp_path):
    paths = {}
    for algo, (env_id, steps, overrides) in BRIEF.items():
        agent = mb.agent_class(algo)(env_id, seed=0, eval_episodes=0, **overrides)
        agent.learn(steps)
        paths[algo] = str(tmp_path / f"{algo}.pt")
        agent.save(paths[algo])
    script = textwrap.dedent(
        """
        import json, sys
        import gymnasium as gym
        import modelbased as mb
        out = {}
        for algo, path in json.loads(sys.argv[1]).items():
            agent = mb.load(path)
            env = gym.make(agent.env_id)
            obs, _ = env.reset(seed=123)
            actions = [agent.act(obs) for _ in range(2)]
            agent.reset_policy()
            actions.append(agent.act(obs, deterministic=False))
            out[algo] = [type(agent).__name__, [env.action_space.contains(a) for a in actions]]
        print(json.dumps(out))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(paths)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    for algo, (name, contained) in result.items():
        assert name == mb.agent_class(algo).__name__
        assert all(contained), (algo, contained)


def test_policy_draws_randomness_only_from_its_rng():
    """Two acts with equal generators give equal actions, whatever happened in between."""
    env_id, steps, overrides = BRIEF["pets"]
    agent = mb.PETS(env_id, seed=0, eval_episodes=0, **overrides).learn(steps)
    obs = np.array([0.5, 0.8, -0.3], dtype=np.float32)
    first = agent.policy(obs, True, np.random.default_rng(5))
    agent.learn(5)  # training plans move the training controller and its generator
    agent.reset_policy()
    assert np.array_equal(agent.policy(obs, True, np.random.default_rng(5)), first)


def test_diagnose_acts_with_a_pets_run(tmp_path):
    run_dir = tmp_path / "pets"
    env_id, _, overrides = BRIEF["pets"]
    sets = [
        x
        for k, v in overrides.items()
        for x in ("--set", f"{k}={json.dumps(v)}")
        if not isinstance(v, dict)
    ]
    sets += [
        x
        for section in ("model", "planner")
        for k, v in overrides[section].items()
        for x in ("--set", f"{section}.{k}={v}")
    ]
    cli = [sys.executable, "-m", "modelbased"]
    train = subprocess.run(
        [
            *cli,
            "train",
            "pets",
            "--env",
            env_id,
            "--steps",
            "40",
            "--out",
            str(run_dir),
            "--quiet",
            *sets,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert train.returncode == 0, train.stderr
    diag = subprocess.run(
        [
            *cli,
            "diagnose",
            "--env",
            env_id,
            "--steps",
            "200",
            "--horizon",
            "5",
            "--policy",
            str(run_dir),
            "--json",
            "--out",
            str(tmp_path / "d"),
            "--set",
            "ensemble_size=2",
            "--set",
            "elites=1",
            "--set",
            "hidden=16",
            "--set",
            "layers=2",
            "--set",
            "max_epochs=3",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert diag.returncode == 0, diag.stderr
    report = json.loads(diag.stdout)
    assert report["steps"] == 200 and 0.0 <= report["coverage_2sigma"] <= 1.0
