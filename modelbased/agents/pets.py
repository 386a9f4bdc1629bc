"""PETS and MPC agents: probabilistic ensembles with trajectory sampling, planned by
receding-horizon CEM (Chua et al. 2018, "Deep Reinforcement Learning in a Handful of Trials
using Probabilistic Dynamics Models", algorithm 1).

    collect `random_steps` steps with uniform random actions
    repeat:
        every `train_every` real steps: fit the ensemble on all data so far
        at every real step: plan H steps ahead in the model with `num_particles` particles
            per candidate (TS-inf or TS1), execute the first action of the best plan

``mpc`` is the same loop with a deterministic single-member model (Nagabandi et al. 2018) and
any optimizer. Where the env has known reward/termination functions (``envs.known_functions``)
they score imagined steps, as in PETS; otherwise the model learns them.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch

from modelbased.core.agent import Agent
from modelbased.core.config import Config
from modelbased.core.env_utils import env_name, require_box
from modelbased.core.errors import ConfigError
from modelbased.core.registry import register_agent
from modelbased.core.seeding import derive_seed
from modelbased.data.replay import ReplayBuffer
from modelbased.envs.reward_fns import PLANNING_REWARDS, known_functions, planning_reward
from modelbased.models.ensemble import EnsembleConfig, EnsembleModel
from modelbased.models.model_env import ModelEnv
from modelbased.models.value import ValueFunction
from modelbased.planning.cem import CEM, CEMConfig
from modelbased.planning.mpc import MPC, imagined_return
from modelbased.planning.mppi import MPPI, MPPIConfig
from modelbased.planning.trajectory import RandomShooting, RandomShootingConfig


@dataclasses.dataclass(frozen=True)
class PETSConfig(Config):
    """Model, planner and schedule settings (defaults: PETS / mbrl-lib ``pets_cartpole``)."""

    algo = "pets"
    # the ensemble
    ensemble_size: int = 7
    model_elites: int = 5
    hidden: int = 200
    layers: int = 4
    model_lr: float = 1e-3
    model_batch_size: int = 256
    model_epochs: int = 100  # at most, per refit (early stopping usually ends sooner)
    probabilistic: bool = True
    known_reward: bool = True  # use the env's known reward/termination functions if any
    # plan with the env's shaped planning reward (envs.planning_reward, a PETS-style cost) in
    # place of its own; returns are still the env's
    planning_reward: bool = False
    # the planner
    optimizer: Literal["cem", "icem", "mppi", "random"] = "cem"
    horizon: int = 15
    population: int = 350
    cem_elites: int = 35
    iterations: int = 5
    alpha: float = 0.1
    num_particles: int = 20
    propagation: Literal["ts1", "tsinf", "expectation", "mean-member"] = "tsinf"
    gamma: float = 1.0
    uncertainty_penalty: float = 0.0
    # an optional learned terminal value V(s_H) (TD(0) on the real data, refitted with the model)
    terminal_value: bool = False
    value_steps: int = 1_000  # TD updates per refit
    # the schedule
    random_steps: int = 200
    train_every: int = 200
    buffer_size: int = 100_000

    def validate(self) -> None:
        super().validate()
        for key in ("ensemble_size", "hidden", "layers", "model_batch_size", "model_epochs",
                    "horizon", "population", "iterations", "num_particles", "buffer_size",
                    "train_every"):  # fmt: skip
            self.require(getattr(self, key) >= 1, key, "must be >= 1")
        self.require(1 <= self.model_elites <= self.ensemble_size, "model_elites",
                     "must be in [1, ensemble_size]")  # fmt: skip
        self.require(1 <= self.cem_elites <= self.population, "cem_elites",
                     "must be in [1, population]")  # fmt: skip
        self.require(self.random_steps >= 1, "random_steps", "must be >= 1")
        self.require(0.0 < self.gamma <= 1.0, "gamma", "must be in (0, 1]")
        self.require(self.uncertainty_penalty >= 0.0, "uncertainty_penalty", "must be >= 0")
        self.require(self.value_steps >= 1, "value_steps", "must be >= 1")
        self.require(not self.terminal_value or self.gamma < 1.0, "gamma",
                     "must be < 1 with terminal_value=true (the value is discounted)")  # fmt: skip


@register_agent
class PETS(Agent):
    """Probabilistic ensemble + trajectory sampling + CEM MPC."""

    algo = "pets"
    Config = PETSConfig
    config: PETSConfig
    default_env = "Pendulum-v1"
    default_steps = 2_000

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        require_box(cls.algo, env, observation=True, action=True)

    def setup(self) -> None:
        cfg = self.config
        space = self.env.action_space
        self.low, self.high = space.low.astype(np.float32), space.high.astype(np.float32)
        self.buffer = ReplayBuffer.for_env(self.env, cfg.buffer_size)
        reward_fn, termination_fn = known_functions(self.env) if cfg.known_reward else (None, None)
        if cfg.planning_reward:
            reward_fn = planning_reward(self.env)
            if reward_fn is None:
                name = env_name(self.env)
                raise ConfigError(
                    f"planning_reward: {name} has no shaped planning reward (known: "
                    f"{', '.join(PLANNING_REWARDS)}); set planning_reward=false"
                )
        self.model = EnsembleModel(
            self.env.observation_space.shape[0], space.shape[0], self.model_config(reward_fn,
            termination_fn), seed=derive_seed(self.seed, "model"),
        )  # fmt: skip
        self.generator = torch.Generator().manual_seed(derive_seed(self.seed, "planning"))
        self.model_env = ModelEnv(self.model, reward_fn, termination_fn, cfg.propagation,
                                  self.generator)  # fmt: skip
        self.mpc = MPC(self.make_optimizer(self.generator))
        self.value = (
            ValueFunction(self.env.observation_space.shape[0], cfg.gamma,
                          seed=derive_seed(self.seed, "value"))
            if cfg.terminal_value else None
        )  # fmt: skip
        self.steps, self.trained = 0, False
        self._fit: dict[str, float] = {}
        self._plan_time, self._plans = 0.0, 0

    def model_config(self, reward_fn: Any, termination_fn: Any) -> EnsembleConfig:
        cfg = self.config
        return EnsembleConfig(
            ensemble_size=cfg.ensemble_size, elites=cfg.model_elites, hidden=cfg.hidden,
            layers=cfg.layers, weight_decay=(2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4)
            if cfg.layers == 4 else (5e-5,), lr=cfg.model_lr, batch_size=cfg.model_batch_size,
            max_epochs=cfg.model_epochs, probabilistic=cfg.probabilistic,
            learn_reward=reward_fn is None, learn_termination=termination_fn is None,
        )  # fmt: skip

    def make_optimizer(self, generator: torch.Generator) -> Any:
        cfg = self.config
        args = (self.low, self.high, cfg.horizon)
        if cfg.optimizer == "mppi":
            return MPPI(*args, MPPIConfig(population=cfg.population, iterations=cfg.iterations),
                        generator)  # fmt: skip
        if cfg.optimizer == "random":
            return RandomShooting(*args, RandomShootingConfig(population=cfg.population),
                                  generator)  # fmt: skip
        kw = {"population": cfg.population, "elites": cfg.cem_elites,
              "iterations": cfg.iterations, "alpha": cfg.alpha}  # fmt: skip
        cem = CEMConfig.icem(**kw) if cfg.optimizer == "icem" else CEMConfig(**kw)
        return CEM(*args, cem, generator)

    # -- the loop's hooks ---------------------------------------------------------------------
    def explore(self, obs: np.ndarray) -> np.ndarray:
        if not self.trained:
            return self.rng.uniform(self.low, self.high).astype(np.float32)
        return self.plan_action(obs, self.mpc)

    def observe(self, obs: Any, action: Any, reward: float, next_obs: Any,
                terminated: bool, truncated: bool) -> None:  # fmt: skip
        self.buffer.add(obs, action, reward, next_obs, terminated, truncated)
        self.steps += 1
        due = self.steps >= self.config.random_steps and (
            (self.steps - self.config.random_steps) % self.config.train_every == 0
        )
        if due:
            self.train_model()
        if terminated or truncated:
            self.mpc.reset()

    def train_model(self) -> None:
        report = self.model.fit(self.buffer, rng=self.rng)
        self.trained = True
        self._fit = {"model_epochs": float(report.epochs),
                     "model_holdout_mse": float(np.mean(report.holdout_mse)),
                     "model_fit_s": report.seconds}  # fmt: skip
        if self.value is not None:
            self._fit |= self.value.fit(self.buffer, self.config.value_steps, self.rng)

    def plan_action(self, obs: np.ndarray, mpc: MPC) -> np.ndarray:
        start = time.perf_counter()
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32)).unsqueeze(0)
        cfg = self.config
        score = imagined_return(self.model_env, obs_t, cfg.num_particles, cfg.gamma,
                                self.value, cfg.uncertainty_penalty)  # fmt: skip
        action = mpc.act(score)[0].numpy()
        self._plan_time += time.perf_counter() - start
        self._plans += 1
        return action

    def policy(self, obs: np.ndarray, deterministic: bool, rng: np.random.Generator) -> Any:
        if not self.trained:
            return rng.uniform(self.low, self.high).astype(np.float32)
        return self.plan_action(obs, self._eval_mpc)

    def evaluate(self, episodes: int = 10, seed: int | None = None) -> dict[str, Any]:
        """As :meth:`Agent.evaluate`, planning with its own controller and noise stream so
        that evaluation leaves the training plan and generator untouched."""
        state = self.generator.get_state()
        self.generator.manual_seed(derive_seed(self.seed if seed is None else seed, "eval-plan"))
        self._eval_mpc = MPC(self.make_optimizer(self.generator))
        try:
            return super().evaluate(episodes, seed)
        finally:
            self.generator.set_state(state)

    def train_scalars(self) -> dict[str, float]:
        out = dict(self._fit)
        if self._plans:
            out["plan_s_per_step"] = self._plan_time / self._plans
        self._plan_time, self._plans = 0.0, 0
        return out

    def state_dict(self) -> dict[str, Any]:
        state = {"model": self.model.to_checkpoint(), "buffer": self.buffer.state_dict(),
                 "steps": self.steps, "trained": self.trained, "fit": self._fit,
                 "generator": self.generator.get_state()}  # fmt: skip
        if self.value is not None:
            state["value"] = self.value.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(EnsembleModel.from_checkpoint(state["model"]).state_dict())
        self.buffer.load_state_dict(state["buffer"])
        self.steps, self.trained = int(state["steps"]), bool(state["trained"])
        self._fit = {k: float(v) for k, v in state["fit"].items()}
        self.generator.set_state(state["generator"])
        if self.value is not None:
            self.value.load_state_dict(state["value"])


@dataclasses.dataclass(frozen=True)
class MPCConfig(PETSConfig):
    """MPC with a deterministic neural model (Nagabandi et al. 2018): one MSE-trained network,
    one particle, random shooting by default; any optimizer of PETS is accepted."""

    algo = "mpc"
    ensemble_size: int = 1
    model_elites: int = 1
    probabilistic: bool = False
    optimizer: Literal["cem", "icem", "mppi", "random"] = "random"
    population: int = 1000
    cem_elites: int = 100
    num_particles: int = 1
    propagation: Literal["ts1", "tsinf", "expectation", "mean-member"] = "expectation"


@register_agent
class MPCAgent(PETS):
    """``mpc``: the PETS loop with a deterministic single-network model."""

    algo = "mpc"
    Config = MPCConfig
    config: MPCConfig
