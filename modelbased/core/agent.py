"""The Agent base class: one face for every algorithm, close to Stable-Baselines3.

    agent = modelbased.DynaQ("modelbased/DynaMaze-v0", seed=0, planning_steps=50)
    agent.learn(total_steps=5_000)
    action = agent.act(obs, deterministic=True)
    stats = agent.evaluate(episodes=10)
    agent.save("runs/dyna.pt"); agent = modelbased.DynaQ.load("runs/dyna.pt")

A subclass sets ``algo`` and ``Config``, checks its spaces in ``check_env``, builds its tables
or networks in ``setup`` and implements the step-level hooks the shared loop calls
(``explore``, ``observe``, ``policy``, ``train_scalars``) plus ``state_dict``/``load_state_dict``.
Agents with their own outer loop (self-play, replay ratios) override ``training_loop`` and
report through the same callbacks; ``learn`` wraps any loop with what every agent shares: a
stop on SIGINT/SIGTERM with a checkpoint of the state at the stop
(:mod:`modelbased.core.interrupt`), and an evaluation left pending by such a stop redone first.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from modelbased.core import loop as _loop
from modelbased.core.callbacks import Callback, CallbackList, as_callback
from modelbased.core.checkpoint import atomic_save, safe_load
from modelbased.core.config import AgentConfig
from modelbased.core.device import flush_denormal, resolve_device
from modelbased.core.env_utils import (
    check_observation,
    env_id,
    env_state,
    load_env_state,
    make_env,
    make_eval_env,
)
from modelbased.core.errors import CheckpointError, ConfigError
from modelbased.core.interrupt import StopOnSignal, TrainingInterrupted, requested, stop_signals
from modelbased.core.seeding import derive_seed, make_rng, seed_everything, set_rng_state
from modelbased.core.timer import PhaseTimer
from modelbased.core.version import package_version

CHECKPOINT_FORMAT = 1


class Agent:
    """Base of every algorithm; see the module docstring."""

    algo: ClassVar[str] = "base"
    Config: ClassVar[type[AgentConfig]] = AgentConfig
    default_env: ClassVar[str | None] = None  # what ``modelbased train ALGO`` uses without --env
    default_steps: ClassVar[int] = 10_000

    def __init__(
        self,
        env: str | gym.Env,
        config: AgentConfig | Mapping[str, Any] | None = None,
        *,
        seed: int = 0,
        device: str = "auto",
        **overrides: Any,
    ) -> None:
        self.device = resolve_device(device)
        self.env = make_env(env)
        self.eval_env = make_eval_env(env)
        self.env_id = env if isinstance(env, str) else env_id(self.env)
        self.check_env(self.env)
        self.config = self._resolve_config(config, overrides)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ConfigError(f"seed must be a whole number, got {seed!r}")
        self.seed = int(seed)
        seed_everything(self.seed)
        self.rng = make_rng(self.seed, "agent")
        self._act_rng = make_rng(self.seed, "act")
        self.loop = _loop.LoopState()
        self.timer = PhaseTimer()  # phase timings, reported with the train scalars
        self.checkpoint_clock = time.monotonic()  # when the last checkpoint was asked for
        self.setup()

    # -- what subclasses provide ------------------------------------------------------------
    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        """Raise :class:`UnsupportedSpaceError` for spaces this algorithm cannot handle."""

    def setup(self) -> None:
        """Allocate tables, models and networks from ``self.config`` and the env's spaces."""

    def explore(self, obs: Any) -> Any:
        """The behaviour action for a training step (uses ``self.rng``)."""
        raise NotImplementedError

    def observe(
        self, obs: Any, action: Any, reward: float, next_obs: Any, terminated: bool, truncated: bool
    ) -> None:
        """Take one real transition: store it, update the model, value function, plan."""
        raise NotImplementedError

    def policy(self, obs: Any, deterministic: bool, rng: np.random.Generator) -> Any:
        """The action of the learned policy; randomness only from ``rng``."""
        raise NotImplementedError

    def reset_policy(self) -> None:
        """Forget what the policy keeps between calls (a planner's warm start); called at the
        start of every evaluation episode, and by users at the start of their own episodes."""

    @property
    def policy_ready(self) -> bool:
        """Whether the policy acts from what was learned (e.g. a planner has a model): False
        while it can only act at random or on nothing learned (PETS before its first model fit,
        value iteration before it plans). Scheduled evaluations record it (``eval.csv``'s
        ``policy_ready``) and plots mark the evaluations taken before it."""
        return True

    def training_loop(self, steps: int, callback: Callback) -> None:
        """Advance by ``steps`` real env steps: the shared loop, unless the algorithm drives its
        own (self-play, replay ratios) and reports through the same callbacks."""
        _loop.run_loop(self, steps, callback)

    def train_scalars(self) -> dict[str, float]:
        """Losses and diagnostics since the last call (for ``train.csv``); reset accumulators."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Everything learned, as tensors/arrays and plain data."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""

    # -- the public face ----------------------------------------------------------------------
    def learn(
        self, total_steps: int, callback: Callback | Iterable[Callback] | None = None
    ) -> Agent:
        """Train for ``total_steps`` more real env steps through :meth:`training_loop`.

        SIGINT or SIGTERM stops training after the current step (or self-play iteration): the
        state at that point goes to ``on_checkpoint`` and :class:`TrainingInterrupted` (a
        ``KeyboardInterrupt``) is raised; a second signal raises it at once, unsaved.
        """
        if isinstance(total_steps, bool) or not isinstance(total_steps, (int, np.integer)):
            raise ConfigError(f"total_steps must be a whole number, got {total_steps!r}")
        if total_steps < 0:
            raise ConfigError(f"total_steps must be >= 0, got {total_steps}")
        cb = CallbackList([as_callback(callback), StopOnSignal()])
        with stop_signals(), flush_denormal():
            cb.on_learn_start(self, int(total_steps))
            self.checkpoint_clock = time.monotonic()
            if self.loop.eval_pending:  # cut short by a stop signal: redo it first
                _loop.evaluate_now(self, cb)
            self.training_loop(int(total_steps), cb)
            signum = requested()
            if signum is not None:
                _loop.request_checkpoint(self, cb)
                raise TrainingInterrupted(signum)
            cb.on_learn_end(self)  # not after an exception: the last consistent checkpoint stays
        return self

    def act(self, obs: Any, deterministic: bool = True) -> Any:
        """The policy's action for one observation (a :class:`DataError` if it does not fit the
        env's observation space)."""
        check_observation(self.env.observation_space, obs)
        return self.policy(obs, deterministic, self._act_rng)

    def evaluate(self, episodes: int = 10, seed: int | None = None) -> dict[str, Any]:
        """Mean/std return and mean length of deterministic episodes on the evaluation env."""
        seed = derive_seed(self.seed, "evaluate") if seed is None else seed
        rng = make_rng(seed, "act")
        return _loop.evaluate_policy(  # in the world as training sees it now
            lambda obs: self.policy(obs, True, rng),
            self.eval_env,
            episodes,
            seed,
            world=env_state(self.env),
            on_episode_start=self.reset_policy,
        )

    def save(self, path: str | Path) -> None:
        """Write an atomic checkpoint that loads with ``torch.load(weights_only=True)``."""
        atomic_save(self.checkpoint(), path)

    def checkpoint(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "algo": self.algo,
            "version": package_version(),
            "env_id": self.env_id,
            "seed": self.seed,
            "config": self.config.to_dict(),
            "agent": self.state_dict(),
            "loop": dataclasses.asdict(self.loop),
            "rng": {
                "agent": self.rng.bit_generator.state,
                "act": self._act_rng.bit_generator.state,
            },
            "env_state": env_state(self.env),
        }

    @classmethod
    def load(
        cls, path: str | Path, env: str | gym.Env | None = None, device: str = "auto"
    ) -> Agent:
        """Rebuild an agent from :meth:`save` on ``device`` (any device, whichever saved it);
        ``env`` is needed only if it had no id."""
        data = safe_load(path)
        if cls.algo != Agent.algo and data["algo"] != cls.algo:
            raise CheckpointError(f"{path} holds a {data['algo']!r} agent, not {cls.algo!r}")
        return cls.from_checkpoint(data, env, device)

    @classmethod
    def from_checkpoint(
        cls, data: dict[str, Any], env: str | gym.Env | None = None, device: str = "auto"
    ) -> Agent:
        from modelbased.core.registry import agent_class

        klass = agent_class(data["algo"]) if cls.algo == Agent.algo else cls
        env = env if env is not None else data.get("env_id")
        if env is None:
            raise CheckpointError("the checkpoint's env had no id; pass env= to load()")
        # a config written by an earlier version has its moved keys moved (ConfigError if not)
        config = klass.Config.from_dict(data["config"], migrate=True)
        try:
            agent = klass(env, config, seed=data["seed"], device=device)
            agent.load_state_dict(data["agent"])
            agent.loop = _loop.LoopState(**data["loop"])
            set_rng_state(agent.rng, data["rng"]["agent"])
            set_rng_state(agent._act_rng, data["rng"]["act"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"checkpoint does not fit {klass.algo}: {exc}") from exc
        load_env_state(agent.env, data.get("env_state"))
        return agent

    # -- helpers --------------------------------------------------------------------------------
    def _resolve_config(
        self, config: AgentConfig | Mapping[str, Any] | None, overrides: dict
    ) -> AgentConfig:
        if isinstance(config, AgentConfig):
            if not isinstance(config, self.Config):
                raise ConfigError(
                    f"{self.algo} takes a {self.Config.__name__}, got {type(config).__name__}"
                )
            return config.replace(**overrides) if overrides else config
        return self.Config.resolve(self.env_id, {**dict(config or {}), **overrides})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(env={self.env_id!r}, seed={self.seed})"
