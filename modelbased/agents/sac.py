"""SAC: soft actor-critic with twin Q networks, Polyak-averaged targets, a tanh-squashed
Gaussian policy and automatic entropy tuning (Haarnoja et al. 2018, "Soft Actor-Critic" and
"Soft Actor-Critic Algorithms and Applications"), the library's model-free baseline.

    for each real step:
        a ~ uniform(action space) during the first `learning_starts` steps, else a ~ pi(.|s)
        store (s, a, r, s', terminated) in the replay buffer D
        every `train_freq` steps: `gradient_steps` times
            sample a batch of `batch_size` from D
            alpha  <- alpha - lr * grad[-log alpha (log pi(a~|s) + target_entropy)]  (autotune)
            qf1, qf2 <- regress on r + gamma (1 - terminated) (min targ_qf(s', a')
                                                                 - alpha log pi(a'|s'))
            pi     <- minimize alpha log pi(a~|s) - min(qf1, qf2)(s, a~)
            targ_qf <- (1 - tau) targ_qf + tau qf

Defaults follow Stable-Baselines3's ``SAC`` (lr 3e-4, buffer 1e6, learning_starts 100, batch
256, tau 0.005, gamma 0.99, one update per step, entropy coefficient learned from 1.0 toward
-dim(A), 256x256 ReLU networks) so that results compare directly. The networks and the
update live in :mod:`modelbased.models.actor_critic`, shared with MBPO.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from modelbased.core.agent import Agent
from modelbased.core.config import Config
from modelbased.core.env_utils import require_box
from modelbased.core.registry import register_agent
from modelbased.core.seeding import derive_seed
from modelbased.data.replay import ReplayBuffer
from modelbased.models.actor_critic import SACUpdate


@dataclasses.dataclass(frozen=True)
class SACConfig(Config):
    """SAC hyperparameters; defaults are Stable-Baselines3's."""

    algo = "sac"
    learning_rate: float = 3e-4
    buffer_size: int = 1_000_000
    learning_starts: int = 100  # uniform random actions before this many steps
    batch_size: int = 256
    tau: float = 0.005
    gamma: float = 0.99
    train_freq: int = 1
    gradient_steps: int = 1
    autotune: bool = True  # learn alpha toward target_entropy
    alpha: float = 1.0  # initial entropy coefficient when autotuning, else the fixed one
    target_entropy: float | None = None  # None: -dim(A)
    target_update_interval: int = 1
    hidden: tuple[int, ...] = (256, 256)

    def validate(self) -> None:
        super().validate()
        for key in ("buffer_size", "batch_size", "train_freq", "gradient_steps",
                    "target_update_interval"):  # fmt: skip
            self.require(getattr(self, key) >= 1, key, "must be >= 1")
        self.require(self.learning_starts >= 0, "learning_starts", "must be >= 0")
        self.require(self.learning_rate > 0, "learning_rate", "must be > 0")
        self.require(0.0 < self.tau <= 1.0, "tau", "must be in (0, 1]")
        self.require(0.0 <= self.gamma < 1.0, "gamma", "must be in [0, 1)")
        self.require(self.alpha > 0, "alpha", "must be > 0")
        self.require(len(self.hidden) >= 1 and min(self.hidden) >= 1, "hidden",
                     "must be one or more layer widths >= 1")  # fmt: skip
        self.require(len(set(self.hidden)) == 1, "hidden",
                     "must have equal widths (the twin critics are one network)")  # fmt: skip


@register_agent
class SAC(Agent):
    """Soft actor-critic for continuous (Box) actions."""

    algo = "sac"
    Config = SACConfig
    config: SACConfig
    default_env = "Pendulum-v1"
    default_steps = 10_000

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        require_box(cls.algo, env, observation=True, action=True)

    def setup(self) -> None:
        cfg = self.config
        space = self.env.action_space
        self.low, self.high = space.low.astype(np.float32), space.high.astype(np.float32)
        self._center = torch.as_tensor((self.high + self.low) / 2)
        self._half = torch.as_tensor((self.high - self.low) / 2)
        obs_dim, action_dim = self.env.observation_space.shape[0], space.shape[0]
        self.buffer = ReplayBuffer.for_env(self.env, cfg.buffer_size)
        self.sac = SACUpdate(
            obs_dim, action_dim, hidden=cfg.hidden, lr=cfg.learning_rate, gamma=cfg.gamma,
            tau=cfg.tau, ent_coef="auto" if cfg.autotune else cfg.alpha, init_ent_coef=cfg.alpha,
            target_entropy=cfg.target_entropy, target_update_interval=cfg.target_update_interval,
            seed=derive_seed(self.seed, "sac"),
        )  # fmt: skip
        self.steps = 0

    # -- action scaling between the policy's [-1, 1] and the env's bounds ---------------------
    def to_env(self, action: torch.Tensor) -> torch.Tensor:
        return self._center + self._half * action

    def from_env(self, action: torch.Tensor) -> torch.Tensor:
        return (action - self._center) / self._half

    def sample_batch(self) -> dict[str, torch.Tensor]:
        """A training batch from the real replay buffer (actions normalized to [-1, 1])."""
        return self._tensors(self.buffer.sample(self.config.batch_size, self.rng).to_torch())

    def _tensors(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        keys = ("obs", "reward", "next_obs", "terminated")
        return {k: batch[k] for k in keys} | {"action": self.from_env(batch["action"])}

    def train_policy(self, updates: int) -> None:
        for _ in range(updates):
            self.sac.update(**self.sample_batch())

    # -- the loop's hooks ---------------------------------------------------------------------
    def explore(self, obs: np.ndarray) -> np.ndarray:
        if self.steps < self.config.learning_starts:
            return self.rng.uniform(self.low, self.high).astype(np.float32)
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32)).unsqueeze(0)
        return self.to_env(self.sac.act(obs_t, deterministic=False))[0].numpy()

    def observe(self, obs: Any, action: Any, reward: float, next_obs: Any,
                terminated: bool, truncated: bool) -> None:  # fmt: skip
        self.buffer.add(obs, action, reward, next_obs, terminated, truncated)
        self.steps += 1
        cfg = self.config
        if self.steps > cfg.learning_starts and self.steps % cfg.train_freq == 0:
            self.train_policy(cfg.gradient_steps)

    def policy(self, obs: np.ndarray, deterministic: bool, rng: np.random.Generator) -> Any:
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32)).unsqueeze(0)
        with torch.inference_mode():
            mean, log_std = self.sac.actor(obs_t)
            if not deterministic:
                noise = rng.standard_normal(mean.shape).astype(np.float32)
                mean = mean + log_std.exp() * torch.from_numpy(noise)
            return self.to_env(torch.tanh(mean))[0].numpy()

    def train_scalars(self) -> dict[str, float]:
        return self.sac.scalars() | {"updates": float(self.sac.updates)}

    def state_dict(self) -> dict[str, Any]:
        return {"sac": self.sac.state_dict(), "buffer": self.buffer.state_dict(),
                "steps": self.steps}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sac.load_state_dict(state["sac"])
        self.buffer.load_state_dict(state["buffer"])
        self.steps = int(state["steps"])
