"""Timing of mbrl-lib 0.2.0 (the peer library) for the ensemble benchmarks.

Measures, on mbrl-lib's own objects built through its Python API the way
``mbrl/algorithms/pets.py`` builds them (``mbrl.util.common.create_one_dim_tr_model`` with an
OmegaConf config, ``ReplayBuffer``, ``get_basic_buffer_iterators``, ``ModelTrainer``):

* the forward pass of a ``GaussianMLP`` ensemble (PETS' probabilistic ensemble, SiLU,
  ``propagation_method=None``) on an input of shape ``[E, batch, obs_dim + action_dim]``, under
  ``torch.no_grad()``: :func:`time_mbrl_forward`;
* one training epoch of ``ModelTrainer`` on given transitions (bootstrapped minibatches of
  ``batch_size`` rows per member, and by default its per-epoch evaluation):
  :func:`time_mbrl_train_epoch`.

mbrl-lib is never a dependency of modelbased: it is installed only in the benchmark virtual
environment (``.bench``, see ``shared/PEERS.md``: torch first, then ``mbrl==0.2.0``,
then ``hydra-core==1.3.2 omegaconf==2.3.0``). Every mbrl import here is lazy, so this module
imports without mbrl; call :func:`mbrl_available` first and report the peer as missing when it
returns ``False``. The caller pins torch threads (e.g. ``torch.set_num_threads(1)``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np

Clock = Callable[[], float]


def mbrl_available() -> tuple[bool, str]:
    """``(True, "mbrl <version>")`` when mbrl-lib and the parts used here import, else
    ``(False, "<exception type>: <message>")``."""
    try:
        import mbrl
        import mbrl.models  # noqa: F401
        import mbrl.util.common  # noqa: F401
        import mbrl.util.replay_buffer  # noqa: F401
    except Exception as exc:  # ImportError, or hydra/omegaconf failing on this Python
        return False, f"{type(exc).__name__}: {exc}"
    return True, f"mbrl {getattr(mbrl, '__version__', '?')}"


def _model_cfg(
    obs_dim: int,
    action_dim: int,
    ensemble_size: int,
    hidden: int,
    layers: int,
    propagation_method: str | None,
    learned_rewards: bool,
    device: str,
) -> Any:
    """The OmegaConf config read by ``create_one_dim_tr_model``: mbrl's
    ``dynamics_model/gaussian_mlp_ensemble.yaml`` plus the model part of ``algorithm/pets.yaml``.
    ``_recursive_: False`` is required with hydra 1.3 (else it instantiates the activation config
    itself and fails with ``Object of unsupported type: 'SiLU'``)."""
    import omegaconf

    return omegaconf.OmegaConf.create(
        {
            "dynamics_model": {
                "_target_": "mbrl.models.GaussianMLP",
                "_recursive_": False,
                "device": device,
                "num_layers": layers,
                "in_size": obs_dim + action_dim,
                "out_size": obs_dim + int(learned_rewards),
                "ensemble_size": ensemble_size,
                "hid_size": hidden,
                "deterministic": False,
                "propagation_method": propagation_method,
                "learn_logvar_bounds": False,
                "activation_fn_cfg": {"_target_": "torch.nn.SiLU"},
            },
            "algorithm": {
                "learned_rewards": learned_rewards,
                "target_is_delta": True,
                "normalize": True,
                "normalize_double_precision": True,
            },
            "overrides": {},
        }
    )


def make_mbrl_ensemble(
    obs_dim: int,
    action_dim: int,
    ensemble_size: int = 7,
    hidden: int = 200,
    layers: int = 4,
    seed: int = 0,
    *,
    propagation_method: str | None = None,
    learned_rewards: bool = True,
    device: str = "cpu",
) -> Any:
    """An ``mbrl.models.OneDTransitionRewardModel`` around a ``GaussianMLP`` of ``ensemble_size``
    members with ``layers`` hidden layers of ``hidden`` SiLU units, input ``obs + action``, output
    ``delta obs (+ reward)``, input normalisation in double precision (as PETS configures it).
    Weights are drawn under ``torch.manual_seed(seed)`` inside a forked RNG, so the caller's
    global torch RNG is left as it was."""
    import mbrl.util.common
    import torch

    cfg = _model_cfg(
        obs_dim,
        action_dim,
        ensemble_size,
        hidden,
        layers,
        propagation_method,
        learned_rewards,
        device,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return mbrl.util.common.create_one_dim_tr_model(cfg, (obs_dim,), (action_dim,))


def time_mbrl_forward(
    model: Any,
    batch_per_member: int,
    repeats: int,
    *,
    warmup: int = 1,
    clock: Clock = time.perf_counter,
) -> list[float]:
    """Seconds per call of the underlying ``GaussianMLP`` (``model.model``) on a random input of
    shape ``[E, batch_per_member, in_size]`` under ``torch.no_grad()`` (mean and log-variance of
    every member; no normalisation, no sampling). ``warmup`` calls are run first and not timed.
    ``clock=time.process_time`` gives CPU time instead of wall time."""
    import torch

    net = model.model
    x = torch.randn(net.num_members, batch_per_member, net.in_size, device=net.device)
    times: list[float] = []
    with torch.no_grad():
        for _ in range(warmup):
            net(x)
        for _ in range(repeats):
            t0 = clock()
            net(x)
            times.append(clock() - t0)
    return times


def time_mbrl_train_epoch(
    obs: np.ndarray,
    action: np.ndarray,
    reward: np.ndarray,
    next_obs: np.ndarray,
    batch_size: int = 256,
    epochs: int = 1,
    *,
    val_ratio: float = 0.2,
    evaluate: bool = True,
    warmup_epochs: int = 1,
    ensemble_size: int = 7,
    hidden: int = 200,
    layers: int = 4,
    lr: float = 7.5e-4,
    weight_decay: float = 3e-5,
    terminated: np.ndarray | None = None,
    seed: int = 0,
    clock: Clock = time.perf_counter,
) -> list[float]:
    """Seconds for each of ``epochs`` training epochs of ``mbrl.models.ModelTrainer``, after
    ``warmup_epochs`` untimed ones, on the transitions ``(obs, action, reward, next_obs)``.

    Setup (not timed), as ``train_model_and_save_model_and_data`` does it: a fresh
    :func:`make_mbrl_ensemble`, an mbrl ``ReplayBuffer`` (float64, as PETS with
    ``normalize_double_precision``) filled with the arrays, ``model.update_normalizer`` on all of
    it, ``get_basic_buffer_iterators`` with ``val_ratio`` held out (default 0.2, as mbrl's MBPO
    configs and ``pets_inv_pendulum``; its ``pets_cartpole`` config uses 0.0) and a bootstrap
    iterator with ``batch_size`` rows per member, and ``ModelTrainer(lr, weight_decay)`` (the
    ``pets_cartpole`` values). Then a single ``trainer.train(num_epochs=warmup_epochs + epochs,
    patience=None)`` runs and each epoch is timed between consecutive per-epoch callbacks, so an
    epoch is exactly what ModelTrainer does per epoch: ``model.update`` on every training batch
    and, when ``evaluate`` (ModelTrainer's default, used by PETS), one ``evaluate`` pass over the
    holdout (over the training rows when ``val_ratio == 0``) and the best-weights check.
    """
    import mbrl.models
    import mbrl.util.common
    import mbrl.util.replay_buffer

    obs = np.asarray(obs, dtype=np.float64)
    next_obs = np.asarray(next_obs, dtype=np.float64)
    action = np.asarray(action, dtype=np.float64)
    if action.ndim == 1:
        action = action[:, None]
    reward = np.asarray(reward, dtype=np.float64).reshape(-1)
    n = len(obs)
    term = np.zeros(n, dtype=bool) if terminated is None else np.asarray(terminated, dtype=bool)
    if not len(action) == len(reward) == len(next_obs) == len(term) == n:
        raise ValueError("obs, action, reward, next_obs (and terminated) must have equal lengths")

    model = make_mbrl_ensemble(
        obs.shape[1], action.shape[1], ensemble_size, hidden, layers, seed=seed
    )
    buffer = mbrl.util.replay_buffer.ReplayBuffer(
        n,
        obs.shape[1:],
        action.shape[1:],
        obs_type=np.float64,
        action_type=np.float64,
        reward_type=np.float64,
        rng=np.random.default_rng(seed),
    )
    buffer.add_batch(obs, action, next_obs, reward, term, np.zeros(n, dtype=bool))
    model.update_normalizer(buffer.get_all())
    train_iter, val_iter = mbrl.util.common.get_basic_buffer_iterators(
        buffer,
        batch_size,
        val_ratio,
        ensemble_size=len(model),
        shuffle_each_epoch=True,
        bootstrap_permutes=False,
    )
    trainer = mbrl.models.ModelTrainer(model, optim_lr=lr, weight_decay=weight_decay)

    stamps: list[float] = []

    def on_epoch_end(*_args: Any) -> None:
        stamps.append(clock())

    # The first epoch's start is not observable from a callback: it is a warm-up, never timed.
    warmup_epochs = max(warmup_epochs, 1)
    trainer.train(
        train_iter,
        dataset_val=val_iter,
        num_epochs=warmup_epochs + epochs,
        patience=None,
        callback=on_epoch_end,
        evaluate=evaluate,
        silent=True,
    )
    timed = stamps[warmup_epochs - 1 :]
    return [timed[i + 1] - timed[i] for i in range(epochs)]


def mbrl_pendulum_reward(act: Any, next_obs: Any) -> Any:
    """Pendulum's reward in mbrl's ``(act, next_obs) -> [B, 1]`` form (on the next state), the
    same known reward our PETS uses for Pendulum-v1."""
    import torch

    theta = torch.atan2(next_obs[:, 1], next_obs[:, 0])
    return -(theta**2 + 0.1 * next_obs[:, 2] ** 2 + 0.001 * act[:, 0] ** 2).view(-1, 1)


@dataclasses.dataclass
class MbrlPets:
    """mbrl-lib's PETS pieces, as ``mbrl/algorithms/pets.py`` holds them."""

    env: Any
    agent: Any
    model: Any
    trainer: Any
    buffer: Any
    cfg: Any


def make_mbrl_pets(
    population: int,
    elites: int,
    iterations: int,
    particles: int,
    seed: int = 0,
    horizon: int = 15,
    env_id: str = "Pendulum-v1",
) -> MbrlPets:
    """mbrl-lib's PETS on Pendulum-v1 built as ``mbrl/algorithms/pets.py`` builds it (its
    ``pets_cartpole`` model and trainer settings: 7x4x200 GaussianMLP, ``random_model`` (TS1)
    propagation, lr 7.5e-4, wd 3e-5, no validation split, 25 epochs per refit; CEM with the given
    population, elites, iterations; the known Pendulum reward), after its
    ``initial_exploration_steps`` = 200 random steps and the first model fit."""
    import gymnasium as gym
    import mbrl.env.termination_fns as termination_fns
    import mbrl.models
    import mbrl.planning
    import mbrl.util.common
    import omegaconf
    import torch

    env = gym.make(env_id)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    torch.manual_seed(seed)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    cfg = omegaconf.OmegaConf.create(
        {
            "seed": seed,
            "device": "cpu",
            "dynamics_model": {
                "_target_": "mbrl.models.GaussianMLP",
                "_recursive_": False,
                "device": "${device}",
                "num_layers": 4,
                "in_size": "???",
                "out_size": "???",
                "ensemble_size": 7,
                "hid_size": 200,
                "deterministic": False,
                "propagation_method": "random_model",
                "learn_logvar_bounds": False,
                "activation_fn_cfg": {"_target_": "torch.nn.SiLU"},
            },
            "algorithm": {
                "name": "pets",
                "agent": {
                    "_target_": "mbrl.planning.TrajectoryOptimizerAgent",
                    "_recursive_": False,
                    "action_lb": "???",
                    "action_ub": "???",
                    "planning_horizon": horizon,
                    "optimizer_cfg": "${action_optimizer}",
                    "replan_freq": 1,
                    "verbose": False,
                },
                "normalize": True,
                "normalize_double_precision": True,
                "target_is_delta": True,
                "initial_exploration_steps": 200,
                "freq_train_model": 200,
                "learned_rewards": False,
                "num_particles": particles,
            },
            "overrides": {
                "num_steps": 5000,
                "trial_length": 200,
                "num_elites": 5,
                "model_lr": 7.5e-4,
                "model_wd": 3e-5,
                "model_batch_size": 256,
                "validation_ratio": 0,
                "patience": 25,
                "num_epochs_train_model": 25,
            },
            "action_optimizer": {
                "_target_": "mbrl.planning.CEMOptimizer",
                "num_iterations": iterations,
                "elite_ratio": elites / population,
                "population_size": population,
                "alpha": 0.1,
                "lower_bound": "???",
                "upper_bound": "???",
                "return_mean_elites": True,
                "device": "${device}",
                "clipped_normal": False,
            },
        }
    )
    obs_shape, act_shape = env.observation_space.shape, env.action_space.shape
    model = mbrl.util.common.create_one_dim_tr_model(cfg, obs_shape, act_shape)
    buffer = mbrl.util.common.create_replay_buffer(
        cfg,
        obs_shape,
        act_shape,
        rng=np.random.default_rng(seed),
        obs_type=np.double,
        action_type=np.double,
        reward_type=np.double,
    )
    mbrl.util.common.rollout_agent_trajectories(
        env, 200, mbrl.planning.RandomAgent(env), {}, replay_buffer=buffer, trial_length=200
    )
    model_env = mbrl.models.ModelEnv(
        env, model, termination_fns.no_termination, mbrl_pendulum_reward, generator=generator
    )
    trainer = mbrl.models.ModelTrainer(model, optim_lr=7.5e-4, weight_decay=3e-5)
    mbrl.util.common.train_model_and_save_model_and_data(
        model, trainer, cfg.overrides, buffer, work_dir=None
    )  # sets the 5 elites
    agent = mbrl.planning.create_trajectory_optim_agent_for_model(
        model_env, cfg.algorithm.agent, num_particles=particles
    )
    return MbrlPets(env, agent, model, trainer, buffer, cfg)


def run_mbrl_pets_until(
    pets: MbrlPets, threshold: float, max_steps: int, clock: Clock = time.perf_counter
) -> list[dict[str, float]]:
    """mbrl-lib's PETS main loop (``mbrl/algorithms/pets.py``: planned trials of 200 steps, the
    model refitted every ``freq_train_model`` real steps) until a trial's return reaches
    ``threshold`` or ``max_steps`` real steps (the 200 random ones included) have passed. Each
    trial gives ``{"steps", "return", "clock"}`` (return NaN for one cut off by ``max_steps``)."""
    import mbrl.util.common

    cfg, steps, trials = pets.cfg, 200, []
    while steps < max_steps:
        obs, _ = pets.env.reset()
        pets.agent.reset()
        done, total = False, 0.0
        while not done and steps < max_steps:
            if steps % cfg.algorithm.freq_train_model == 0 and steps > 200:  # 200: fitted
                mbrl.util.common.train_model_and_save_model_and_data(
                    pets.model, pets.trainer, cfg.overrides, pets.buffer, work_dir=None
                )
            obs, reward, terminated, truncated, _ = mbrl.util.common.step_env_and_add_to_buffer(
                pets.env, obs, pets.agent, {}, pets.buffer
            )
            done, total, steps = terminated or truncated, total + reward, steps + 1
        trials.append({"steps": steps, "return": total if done else float("nan"), "clock": clock()})
        if done and total >= threshold:
            break
    return trials
