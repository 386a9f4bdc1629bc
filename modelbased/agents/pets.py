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

Discrete action spaces (``CartPole-v1``) plan with ``planner.kind=categorical_cem`` (CEM over
per-step categorical distributions) or ``enumerate`` (every sequence, for small ``|A|^H``):
the ensemble takes the action one-hot, the buffer keeps its index.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch

from modelbased.core.agent import Agent
from modelbased.core.config import AgentConfig
from modelbased.core.env_utils import env_name, require_box, require_box_or_discrete
from modelbased.core.errors import ConfigError
from modelbased.core.registry import register_agent
from modelbased.core.schedule import due
from modelbased.core.seeding import derive_seed
from modelbased.core.timer import timed
from modelbased.data.replay import ReplayBuffer
from modelbased.envs.reward_fns import PLANNING_REWARDS, known_functions, planning_reward
from modelbased.models.ensemble import EnsembleConfig
from modelbased.models.hybrid import (
    AnalyticConfig,
    HybridConfig,
    make_world_model,
)
from modelbased.models.model_env import ModelEnv
from modelbased.models.value import ValueFunction
from modelbased.planning.categorical import (
    CategoricalCEM,
    CategoricalCEMConfig,
    Enumerate,
    EnumerateConfig,
)
from modelbased.planning.cem import CEM, CEMConfig, ICEMConfig
from modelbased.planning.ilqr import ILQR, ILQRConfig
from modelbased.planning.mpc import MPC, imagined_return
from modelbased.planning.mppi import MPPI, MPPIConfig
from modelbased.planning.trajectory import (
    RandomShooting,
    RandomShootingConfig,
    TrajectoryOptimizer,
)

OPTIMIZERS = {"cem": CEM, "icem": CEM, "mppi": MPPI, "random": RandomShooting, "ilqr": ILQR}
DISCRETE_OPTIMIZERS = {"categorical_cem": CategoricalCEM, "enumerate": Enumerate}


Planner = (
    CEMConfig
    | ICEMConfig
    | MPPIConfig
    | RandomShootingConfig
    | ILQRConfig
    | CategoricalCEMConfig
    | EnumerateConfig
)
Model = EnsembleConfig | HybridConfig | AnalyticConfig
PROPAGATION = Literal["ts1", "tsinf", "expectation", "mean-member"]
_MOVED_MODEL = {
    "ensemble_size": "ensemble_size",
    "model_elites": "elites",
    "hidden": "hidden",
    "layers": "layers",
    "model_lr": "lr",
    "model_batch_size": "batch_size",
    "model_epochs": "max_epochs",
    "probabilistic": "probabilistic",
}
_MOVED_PLANNER = {
    "optimizer": "kind",
    "population": "population",
    "cem_elites": "elites",
    "iterations": "iterations",
    "alpha": "momentum",
}


@dataclasses.dataclass(frozen=True)
class PETSConfig(AgentConfig):
    """Model, planner and schedule settings (defaults: PETS / mbrl-lib ``pets_cartpole``)."""

    algo = "pets"
    moved = {k: f"model.{v}" for k, v in _MOVED_MODEL.items()} | {
        k: f"planner.{v}" for k, v in _MOVED_PLANNER.items()
    }
    # the probabilistic ensemble (kind: ensemble), or analytic physics with a learned residual
    # (hybrid) or alone (analytic)
    model: Model = EnsembleConfig(max_epochs=100)
    known_reward: bool = True  # use the env's known reward/termination functions if any
    # plan with the env's shaped planning reward (envs.planning_reward, a PETS-style cost) in
    # place of its own; returns are still the env's
    planning_reward: bool = False
    # the trajectory optimizer (kind: cem, icem, mppi, random, ilqr; for discrete actions
    # categorical_cem or enumerate)
    planner: Planner = CEMConfig()
    horizon: int = 15  # planning horizon H, in env steps
    num_particles: int = 20  # particles P per candidate sequence
    propagation: PROPAGATION = "tsinf"  # how particles pick ensemble members
    gamma: float = 1.0  # discount of imagined rewards
    uncertainty_penalty: float = 0.0  # subtracted per unit of ensemble disagreement
    # an optional learned terminal value V(s_H) (TD(0) on the real data, refitted with the model)
    terminal_value: bool = False
    value_steps: int = 1_000  # TD updates per refit
    random_steps: int = 200  # uniform random actions before the first model
    train_every: int = 200  # real steps between model refits
    buffer_size: int = 100_000  # real transitions kept

    def validate(self) -> None:
        """Positive horizon, particles and schedule counts; a terminal value needs ``gamma < 1``."""
        super().validate()
        for key in (
            "horizon",
            "num_particles",
            "buffer_size",
            "train_every",
            "random_steps",
            "value_steps",
        ):
            self.require(getattr(self, key) >= 1, key, "must be >= 1")
        self.require(0.0 < self.gamma <= 1.0, "gamma", "must be in (0, 1]")
        self.require(self.uncertainty_penalty >= 0.0, "uncertainty_penalty", "must be >= 0")
        self.require(
            not self.terminal_value or self.gamma < 1.0,
            "gamma",
            "must be < 1 with terminal_value=true (the value is discounted)",
        )


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
        """Accept a flat Box observation space and a flat Box or a Discrete action space."""
        require_box(cls.algo, env, observation=True, action=False)
        require_box_or_discrete(cls.algo, env)

    def setup(self) -> None:
        """The buffer, the ensemble (with the env's known functions), an optional terminal value
        and two controllers (training and acting) with their own noise streams."""
        cfg = self.config
        space = self.env.action_space
        self.discrete = isinstance(space, gym.spaces.Discrete)
        self.check_planner()
        if self.discrete:
            self.num_actions = action_dim = int(space.n)
        else:
            self.low, self.high = space.low.astype(np.float32), space.high.astype(np.float32)
            action_dim = space.shape[0]
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
        obs_dim, seed = self.env.observation_space.shape[0], derive_seed(self.seed, "model")
        self.model = make_world_model(
            cfg.model,
            env_name(self.env),
            obs_dim,
            action_dim,
            seed,
            learn_reward=reward_fn is None,
            learn_termination=termination_fn is None,
            owner=self.algo,
        ).to(self.device)
        self.value = (
            ValueFunction(obs_dim, cfg.gamma, seed=derive_seed(self.seed, "value")).to(self.device)
            if cfg.terminal_value
            else None
        )
        # one controller for training and one for acting, each with its own noise stream, so
        # that evaluations leave the training plan and its randomness untouched
        self.generator = self.make_generator(derive_seed(self.seed, "planning"))
        self.model_env, self.mpc = self.controller(reward_fn, termination_fn, self.generator)
        self.act_generator = self.make_generator(derive_seed(self.seed, "act-plan"))
        self.act_model_env, self.act_mpc = self.controller(
            reward_fn, termination_fn, self.act_generator
        )
        self.trained = False
        self._fit: dict[str, float] = {}

    def make_generator(self, seed: int) -> torch.Generator:
        """A torch generator on the agent's device seeded with ``seed``."""
        return torch.Generator(self.device).manual_seed(seed)

    def controller(
        self, reward_fn: Any, termination_fn: Any, generator: torch.Generator
    ) -> tuple[ModelEnv, MPC]:
        """A ``ModelEnv`` over the ensemble and an MPC controller, both drawing from
        ``generator``."""
        cfg = self.config
        model_env = ModelEnv(self.model, reward_fn, termination_fn, cfg.propagation, generator)
        optimizer: TrajectoryOptimizer
        if self.discrete:
            kind = DISCRETE_OPTIMIZERS[cfg.planner.kind]
            optimizer = kind(self.num_actions, cfg.horizon, cfg.planner, generator, self.device)
        else:
            low, high = (torch.as_tensor(b, device=self.device) for b in (self.low, self.high))
            optimizer = OPTIMIZERS[cfg.planner.kind](low, high, cfg.horizon, cfg.planner, generator)
        return model_env, MPC(optimizer)

    def check_planner(self) -> None:
        """Raise :class:`ConfigError` when ``planner.kind`` does not fit the action space."""
        kind, name = self.config.planner.kind, env_name(self.env)
        if self.discrete and kind not in DISCRETE_OPTIMIZERS:
            raise ConfigError(
                f"{self.algo}: planner.kind={kind!r} plans continuous actions; {name} has "
                f"{self.env.action_space}: set planner.kind=categorical_cem or enumerate"
            )
        if not self.discrete and kind in DISCRETE_OPTIMIZERS:
            raise ConfigError(
                f"{self.algo}: planner.kind={kind!r} plans discrete actions; {name} has "
                f"{self.env.action_space}: use cem, icem, mppi, random or ilqr"
            )

    def random_action(self, rng: np.random.Generator) -> Any:
        """A uniform random action: an index, or a point within the bounds."""
        if self.discrete:
            return int(rng.integers(self.num_actions))
        return rng.uniform(self.low, self.high).astype(np.float32)

    # -- the loop's hooks ---------------------------------------------------------------------
    def explore(self, obs: np.ndarray) -> np.ndarray:
        """Uniform random actions until the first model, then the training controller's MPC
        action."""
        if not self.trained:
            return self.random_action(self.rng)
        return self.plan_action(obs, self.model_env, self.mpc)

    def observe(
        self, obs: Any, action: Any, reward: float, next_obs: Any, terminated: bool, truncated: bool
    ) -> None:
        """Store the transition, refit when due, and drop the warm start at an episode end."""
        self.buffer.add(obs, action, reward, next_obs, terminated, truncated)
        if due(self.loop.env_steps, self.config.train_every, self.config.random_steps):
            self.train_model()
        if terminated or truncated:
            self.mpc.reset()

    @timed("model")
    def train_model(self) -> None:
        """Refit the ensemble on all real data (and the terminal value, if any)."""
        report = self.model.fit(self.buffer, rng=self.rng)
        self.trained = True
        self._fit = {
            "model_epochs": float(report.epochs),
            "model_holdout_mse": float(np.mean(report.holdout_mse)),
        }
        if self.value is not None:
            self._fit |= self.value.fit(self.buffer, self.config.value_steps, self.rng)

    @timed("plan")
    def plan_action(self, obs: np.ndarray, model_env: ModelEnv, mpc: MPC) -> Any:
        """The first action of the plan from ``obs`` (PETS algorithm 1, lines 6-8): an index
        for discrete actions (the argmax of the one-hot plan step)."""
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)[None]
        cfg = self.config
        score = imagined_return(
            model_env, obs_t, cfg.num_particles, cfg.gamma, self.value, cfg.uncertainty_penalty
        )
        action = mpc.act(score)[0]
        if self.discrete:
            return int(action.argmax())
        return action.cpu().numpy()

    def policy(self, obs: np.ndarray, deterministic: bool, rng: np.random.Generator) -> Any:
        """The acting controller's MPC action (uniform random before the first model); its
        generator is reseeded from ``rng``, so the action depends on ``rng`` alone."""
        if not self.trained:
            return self.random_action(rng)
        self.act_generator.manual_seed(int(rng.integers(2**63)))  # randomness only from rng
        return self.plan_action(obs, self.act_model_env, self.act_mpc)

    def reset_policy(self) -> None:
        """Forget the acting controller's warm start."""
        self.act_mpc.reset()

    @property
    def policy_ready(self) -> bool:
        """Whether the policy acts from a learned model or plan yet."""
        return self.trained  # random actions until the first model fit

    def train_scalars(self) -> dict[str, float]:
        """The last fit's epochs and holdout MSE (and the value's losses)."""
        return dict(self._fit)

    def state_dict(self) -> dict[str, Any]:
        """Ensemble, buffer, fit state and the training planner's generator (and the value)."""
        state = {
            "model": self.model.to_checkpoint(),
            "buffer": self.buffer.state_dict(),
            "trained": self.trained,
            "fit": self._fit,
            "generator": self.generator.get_state(),
        }
        if self.value is not None:
            state["value"] = self.value.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` wrote."""
        self.model.load_checkpoint(state["model"])
        self.buffer.load_state_dict(state["buffer"])
        self.trained = bool(state["trained"])
        self._fit = {k: float(v) for k, v in state["fit"].items()}
        self.generator.set_state(state["generator"])
        if self.value is not None:
            self.value.load_state_dict(state["value"])


@dataclasses.dataclass(frozen=True)
class MPCConfig(PETSConfig):
    """MPC with a deterministic neural model (Nagabandi et al. 2018): one MSE-trained network,
    one particle, random shooting by default; any planner of PETS is accepted."""

    algo = "mpc"
    model: Model = EnsembleConfig(ensemble_size=1, elites=1, probabilistic=False, max_epochs=100)
    planner: Planner = RandomShootingConfig(population=1000)
    num_particles: int = 1
    propagation: PROPAGATION = "expectation"


@register_agent
class MPCAgent(PETS):
    """``mpc``: the PETS loop with a deterministic single-network model."""

    algo = "mpc"
    Config = MPCConfig
    config: MPCConfig
