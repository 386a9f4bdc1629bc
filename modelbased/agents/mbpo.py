"""MBPO: model-based policy optimization, short model rollouts branched from real states
feeding SAC (Janner et al. 2019, "When to Trust Your Model: Model-Based Policy Optimization",
algorithm 2 and appendix C).

    collect `learning_starts` steps with uniform random actions into D_env
    for each real step from then on (epoch = step // epoch_length):
        every `model_train_every` (F) steps: fit the ensemble (7 members, 5 elites) on D_env;
            k <- rollout_schedule(epoch); D_model keeps the last `model_retain_epochs` epochs
        every `rollout_every` steps: branch `rollouts_per_step` (M) rollouts per step from
            states drawn uniformly from D_env, k steps of pi in the model (a random elite per
            step, known termination functions, rollouts stop at predicted termination)
        take one step of pi in the env, add it to D_env
        every `train_freq` steps: `gradient_steps` (G) SAC updates on batches of `real_ratio`
            D_env + the rest D_model

Discrete action spaces run on discrete SAC (:class:`~modelbased.agents.sac.SAC`'s branch): the
ensemble takes the action one-hot, D_model keeps indices.

The rollout-length schedule ``[start_epoch, end_epoch, min_k, max_k]`` holds ``min_k`` up to
``start_epoch``, then grows linearly to ``max_k`` at ``end_epoch`` (truncated to an integer).
The model buffer holds ``model_retain_epochs * epoch_length * M * k`` transitions, resized
(newest kept) when ``k`` changes. The SAC networks and update are :mod:`~modelbased.agents.sac`'s.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from modelbased.agents.sac import SAC, SACConfig
from modelbased.core.env_utils import action_size, env_name
from modelbased.core.registry import register_agent
from modelbased.core.schedule import due
from modelbased.core.seeding import derive_seed
from modelbased.core.timer import timed
from modelbased.data.replay import ReplayBuffer
from modelbased.envs.reward_fns import known_functions
from modelbased.models.ensemble import EnsembleConfig
from modelbased.models.hybrid import HybridConfig, make_world_model
from modelbased.models.model_env import ModelEnv


def rollout_length(schedule: tuple[int, ...], epoch: int) -> int:
    """MBPO's schedule ``[start_epoch, end_epoch, min_k, max_k]`` at ``epoch``."""
    start, end, min_k, max_k = schedule
    if epoch <= start:
        return min_k
    frac = min((epoch - start) / (end - start), 1.0)
    return int(min_k + frac * (max_k - min_k))


@dataclasses.dataclass(frozen=True)
class MBPOConfig(SACConfig):
    """MBPO's knobs on top of SAC's (defaults: the paper's Hopper settings)."""

    algo = "mbpo"
    moved = SACConfig.moved | {
        "ensemble_size": "model.ensemble_size",
        "model_elites": "model.elites",
        "model_hidden": "model.hidden",
        "model_layers": "model.layers",
        "model_lr": "model.lr",
        "model_batch_size": "model.batch_size",
        "model_epochs": "model.max_epochs",
    }
    learning_starts: int = 5000  # random exploration steps before the first model
    gradient_steps: int = 20  # G: SAC updates per real step
    # the ensemble (its reward head is learned unless known_reward), or (kind: hybrid) analytic
    # physics with the ensemble learning its residual
    model: EnsembleConfig | HybridConfig = EnsembleConfig()
    known_reward: bool = False  # MBPO learns the reward; true: the env's known one if any
    model_train_every: int = 250  # F: real steps between model refits
    # branched rollouts
    rollouts_per_step: int = 400  # M: rollouts branched per real step
    rollout_every: int = 1  # branch M * rollout_every rollouts every rollout_every steps
    # [start_epoch, end_epoch, min_k, max_k]: rollout length k grows linearly between epochs
    rollout_schedule: tuple[int, ...] = (20, 100, 1, 15)
    epoch_length: int = 1000  # real steps per epoch (the schedule's unit)
    model_retain_epochs: int = 1  # epochs of rollouts D_model keeps
    real_ratio: float = 0.05  # share of real transitions in each SAC batch

    def validate(self) -> None:
        """Positive schedule counts, a real ratio in [0, 1] and a well-formed rollout schedule."""
        super().validate()
        for key in (
            "model_train_every",
            "rollouts_per_step",
            "rollout_every",
            "epoch_length",
            "model_retain_epochs",
        ):
            self.require(getattr(self, key) >= 1, key, "must be >= 1")
        self.require(
            self.learning_starts >= 1,
            "learning_starts",
            "must be >= 1 (the first model needs data)",
        )
        self.require(0.0 <= self.real_ratio <= 1.0, "real_ratio", "must be in [0, 1]")
        s = self.rollout_schedule
        self.require(
            len(s) == 4, "rollout_schedule", "must be [start_epoch, end_epoch, min_k, max_k]"
        )
        self.require(
            s[0] >= 0 and s[1] > s[0], "rollout_schedule", "needs 0 <= start_epoch < end_epoch"
        )
        self.require(1 <= s[2] <= s[3], "rollout_schedule", "needs 1 <= min_k <= max_k")


@register_agent
class MBPO(SAC):
    """SAC trained on short branched rollouts of a probabilistic ensemble."""

    algo = "mbpo"
    Config = MBPOConfig
    config: MBPOConfig
    default_steps = 1_500

    def setup(self) -> None:
        """SAC's setup plus the ensemble, the imagined env (TS1 over elites) and D_model."""
        super().setup()
        cfg = self.config
        obs_dim, action_dim = (
            self.env.observation_space.shape[0],
            action_size(self.env.action_space),
        )
        reward_fn, termination_fn = known_functions(self.env)
        reward_fn = reward_fn if cfg.known_reward else None
        self.model = make_world_model(
            cfg.model,
            env_name(self.env),
            obs_dim,
            action_dim,
            derive_seed(self.seed, "model"),
            learn_reward=reward_fn is None,
            learn_termination=termination_fn is None,
            owner=self.algo,
        ).to(self.device)
        self.generator = torch.Generator(self.device)
        self.generator.manual_seed(derive_seed(self.seed, "rollouts"))
        self.model_env = ModelEnv(
            self.model, reward_fn, termination_fn, "ts1", self.generator, elites_only=True
        )
        self.rollout_length = cfg.rollout_schedule[2]
        self.model_buffer = self.make_model_buffer(self.rollout_length)
        self.trained = False
        self._fit: dict[str, float] = {}

    def make_model_buffer(self, k: int) -> ReplayBuffer:
        """An empty D_model for rollouts of length ``k``."""
        cfg = self.config
        capacity = cfg.model_retain_epochs * cfg.epoch_length * cfg.rollouts_per_step * k
        buffer = self.buffer
        return ReplayBuffer(
            capacity, buffer.obs_shape, buffer.action_shape, action_dtype=buffer.action_dtype
        )

    # -- the loop's hooks ---------------------------------------------------------------------
    def observe(
        self, obs: Any, action: Any, reward: float, next_obs: Any, terminated: bool, truncated: bool
    ) -> None:
        """Store the real step in D_env; refit, branch rollouts and update SAC when due."""
        self.buffer.add(obs, action, reward, next_obs, terminated, truncated)
        step, cfg = self.loop.env_steps, self.config
        if due(step, cfg.model_train_every, cfg.learning_starts):
            self.train_model()
        if due(step, cfg.rollout_every, cfg.learning_starts):
            self.rollout(cfg.rollouts_per_step * cfg.rollout_every)
        if due(step, cfg.train_freq, cfg.learning_starts):
            self.train_policy(cfg.gradient_steps)

    @timed("model")
    def train_model(self) -> None:
        """Refit the ensemble on D_env; set k from the schedule and resize D_model."""
        report = self.model.fit(self.buffer, rng=self.rng)
        self.trained = True
        self._fit = {
            "model_epochs": float(report.epochs),
            "model_holdout_mse": float(np.mean(report.holdout_mse)),
        }
        epoch = self.loop.env_steps // self.config.epoch_length
        k = rollout_length(self.config.rollout_schedule, epoch)
        if k != self.rollout_length:
            old, self.model_buffer = self.model_buffer, self.make_model_buffer(k)
            if len(old):
                keep = np.arange(max(0, len(old) - self.model_buffer.capacity), len(old))
                self.model_buffer.add_batch(*vars(old.get(keep)).values())
            self.rollout_length = k

    @timed("rollout")
    def rollout(self, count: int) -> int:
        """Branch ``count`` rollouts of ``rollout_length`` steps from real states into D_model
        (one batched model step for all of them); returns the transitions stored."""
        start = torch.as_tensor(self.buffer.sample(count, self.rng).obs, device=self.device)
        out = self.model_env.rollout_policy(
            start, lambda s: self.to_env(self.sac.act(s, deterministic=False)), self.rollout_length
        )
        alive = out["alive"]  # [k, count]: steps taken before a predicted termination
        fields = [out[k][alive].cpu().numpy() for k in ("obs", "action", "reward", "next_obs")]
        done = out["terminated"][alive].cpu().numpy()
        self.model_buffer.add_batch(*fields, done, np.zeros_like(done))
        return int(alive.sum())

    def sample_batch(self) -> dict[str, torch.Tensor]:
        """``real_ratio`` of the batch from D_env, the rest from D_model (all real while D_model
        is empty)."""
        cfg = self.config
        n_real = int(cfg.batch_size * cfg.real_ratio) if len(self.model_buffer) else cfg.batch_size
        parts = [self.buffer.sample(n_real, self.rng).to_torch(self.device)] if n_real else []
        if n_real < cfg.batch_size:
            batch = self.model_buffer.sample(cfg.batch_size - n_real, self.rng)
            parts.append(batch.to_torch(self.device))
        batch = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        return self._tensors(batch)

    @property
    def policy_ready(self) -> bool:
        """Whether the policy acts from a learned model or plan yet."""
        return self.trained  # the model is fitted (and SAC trained) from learning_starts

    def train_scalars(self) -> dict[str, float]:
        """SAC's scalars plus the last fit's epochs and holdout MSE, ``k`` and D_model's size."""
        out = super().train_scalars() | self._fit
        out |= {
            "rollout_length": float(self.rollout_length),
            "model_buffer": float(len(self.model_buffer)),
        }
        return out

    def state_dict(self) -> dict[str, Any]:
        """SAC's state plus ensemble, D_model, ``k`` and the rollout generator."""
        return super().state_dict() | {
            "model": self.model.to_checkpoint(),
            "model_buffer": self.model_buffer.state_dict(),
            "rollout_length": self.rollout_length,
            "trained": self.trained,
            "fit": self._fit,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` wrote."""
        super().load_state_dict(state)
        self.model.load_checkpoint(state["model"])
        self.rollout_length = int(state["rollout_length"])
        self.model_buffer = self.make_model_buffer(self.rollout_length)
        self.model_buffer.load_state_dict(state["model_buffer"])
        self.trained = bool(state["trained"])
        self._fit = {k: float(v) for k, v in state["fit"].items()}
        self.generator.set_state(state["generator"])
