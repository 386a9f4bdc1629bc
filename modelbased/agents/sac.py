"""SAC: soft actor-critic with twin Q networks, Polyak-averaged targets, a tanh-squashed
Gaussian policy and automatic entropy tuning (Haarnoja et al. 2018, "Soft Actor-Critic" and
"Soft Actor-Critic Algorithms and Applications"), the library's model-free baseline.

    for each real step:
        a ~ uniform(action space) during the first `learning_starts` steps, else a ~ pi(.|s)
        store (s, a, r, s', terminated) in the replay buffer D
        every `train_freq` steps from step `learning_starts` on: `gradient_steps` times
            sample a batch of `batch_size` from D
            alpha  <- alpha - lr * grad[-log alpha (log pi(a~|s) + target_entropy)]  (autotune)
            qf1, qf2 <- regress on r + gamma (1 - terminated) (min targ_qf(s', a')
                                                                 - alpha log pi(a'|s'))
            pi     <- minimize alpha log pi(a~|s) - min(qf1, qf2)(s, a~)
            targ_qf <- (1 - tau) targ_qf + tau qf

Discrete action spaces (``CartPole-v1``) take the discrete variant of Christodoulou 2019
(:class:`~modelbased.models.actor_critic.DiscreteSACUpdate`: a categorical policy, expected soft
Q over the actions, target entropy ``target_entropy_scale * log |A|``), chosen from the action
space; the loop and the config are the same.

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
from modelbased.core.config import AgentConfig
from modelbased.core.env_utils import action_size, require_box, require_box_or_discrete
from modelbased.core.registry import register_agent
from modelbased.core.schedule import due
from modelbased.core.seeding import derive_seed
from modelbased.core.timer import timed
from modelbased.data.replay import ReplayBuffer
from modelbased.models.actor_critic import DiscreteSACUpdate, SACUpdate, SACUpdateConfig


@dataclasses.dataclass(frozen=True)
class SACConfig(AgentConfig):
    """SAC hyperparameters; defaults are Stable-Baselines3's."""

    algo = "sac"
    moved = {
        k: f"sac.{k}"
        for k in (
            "learning_rate",
            "tau",
            "gamma",
            "autotune",
            "target_entropy",
            "target_update_interval",
            "hidden",
        )
    }
    moved |= {"alpha": "sac.ent_coef"}
    buffer_size: int = 1_000_000  # transitions kept in the replay buffer
    learning_starts: int = 100  # uniform random actions for this many steps, then updates
    batch_size: int = 256  # transitions per gradient step
    train_freq: int = 1  # env steps between rounds of gradient steps
    gradient_steps: int = 1  # gradient steps per round
    sac: SACUpdateConfig = SACUpdateConfig()  # the learner: networks, rates, entropy

    def validate(self) -> None:
        """Sizes and frequencies >= 1, ``learning_starts`` >= 0."""
        super().validate()
        for key in ("buffer_size", "batch_size", "train_freq", "gradient_steps"):
            self.require(getattr(self, key) >= 1, key, "must be >= 1")
        self.require(self.learning_starts >= 0, "learning_starts", "must be >= 0")


@register_agent
class SAC(Agent):
    """Soft actor-critic for continuous (Box) actions, and its discrete variant for Discrete
    actions."""

    algo = "sac"
    Config = SACConfig
    config: SACConfig
    default_env = "Pendulum-v1"
    default_steps = 10_000

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        """Accept a flat Box observation space and a flat Box or a Discrete action space."""
        require_box(cls.algo, env, observation=True, action=False)
        require_box_or_discrete(cls.algo, env)

    def setup(self) -> None:
        """Bounds, the replay buffer and the SAC networks and update (the discrete variant for
        a Discrete action space)."""
        cfg = self.config
        space = self.env.action_space
        self.discrete = isinstance(space, gym.spaces.Discrete)
        if not self.discrete:
            self.low, self.high = space.low.astype(np.float32), space.high.astype(np.float32)
            self._center = torch.as_tensor((self.high + self.low) / 2, device=self.device)
            self._half = torch.as_tensor((self.high - self.low) / 2, device=self.device)
        obs_dim, action_dim = self.env.observation_space.shape[0], action_size(space)
        self.buffer = ReplayBuffer.for_env(self.env, cfg.buffer_size)
        learner = DiscreteSACUpdate if self.discrete else SACUpdate
        self.sac = learner(obs_dim, action_dim, cfg.sac, derive_seed(self.seed, "sac"), self.device)

    # -- action scaling between the policy's [-1, 1] and the env's bounds ---------------------
    def to_env(self, action: torch.Tensor) -> torch.Tensor:
        """Map ``[-1, 1]`` actions to the env's bounds (discrete: indices pass)."""
        if self.discrete:
            return action
        return self._center + self._half * action

    def from_env(self, action: torch.Tensor) -> torch.Tensor:
        """Map actions in the env's bounds to ``[-1, 1]`` (discrete: indices as long)."""
        if self.discrete:
            return action.long()
        return (action - self._center) / self._half

    def random_action(self) -> Any:
        """A uniform random action: an index, or a point within the bounds."""
        if self.discrete:
            return int(self.rng.integers(self.env.action_space.n))
        return self.rng.uniform(self.low, self.high).astype(np.float32)

    def sample_batch(self) -> dict[str, torch.Tensor]:
        """A training batch from the real replay buffer (actions normalized to [-1, 1])."""
        batch = self.buffer.sample(self.config.batch_size, self.rng)
        return self._tensors(batch.to_torch(self.device))

    def _tensors(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        keys = ("obs", "reward", "next_obs", "terminated")
        return {k: batch[k] for k in keys} | {"action": self.from_env(batch["action"])}

    @timed("sac")
    def train_policy(self, updates: int) -> None:
        """``updates`` SAC gradient steps on batches from :meth:`sample_batch`."""
        for _ in range(updates):
            self.sac.update(**self.sample_batch())

    # -- the loop's hooks ---------------------------------------------------------------------
    def explore(self, obs: np.ndarray) -> Any:
        """Uniform random actions for ``learning_starts`` steps, then a sample of the policy."""
        if self.loop.env_steps < self.config.learning_starts:
            return self.random_action()
        action = self.to_env(self.sac.act(self.obs_tensor(obs), deterministic=False))[0]
        return int(action) if self.discrete else action.cpu().numpy()

    def observe(
        self, obs: Any, action: Any, reward: float, next_obs: Any, terminated: bool, truncated: bool
    ) -> None:
        """Store the transition and run ``gradient_steps`` updates every ``train_freq`` steps."""
        self.buffer.add(obs, action, reward, next_obs, terminated, truncated)
        cfg = self.config
        if due(self.loop.env_steps, cfg.train_freq, cfg.learning_starts):
            self.train_policy(cfg.gradient_steps)

    def obs_tensor(self, obs: Any) -> torch.Tensor:
        """One observation as a ``[1, o]`` float tensor on the agent's device."""
        return torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)[None]

    def policy(self, obs: np.ndarray, deterministic: bool, rng: np.random.Generator) -> Any:
        """The actor's mean (``deterministic``) or a sample with noise from ``rng``, squashed by
        tanh and scaled to the env's bounds; discrete: the most probable action, or a sample
        drawn with ``rng``."""
        with torch.inference_mode():
            if self.discrete:
                probs = self.sac.actor(self.obs_tensor(obs))[0].softmax(-1).cpu().numpy()
                if deterministic:
                    return int(probs.argmax())
                return int(min(np.searchsorted(probs.cumsum(), rng.random()), len(probs) - 1))
            mean, log_std = self.sac.actor(self.obs_tensor(obs))
            if not deterministic:
                noise = torch.from_numpy(rng.standard_normal(mean.shape).astype(np.float32))
                mean = mean + log_std.exp() * noise.to(self.device)
            return self.to_env(torch.tanh(mean))[0].cpu().numpy()

    def train_scalars(self) -> dict[str, float]:
        """Mean losses, entropy coefficient and the update count since the last call."""
        return self.sac.scalars() | {"updates": float(self.sac.updates)}

    def state_dict(self) -> dict[str, Any]:
        """The learner's networks and optimizers, and the replay buffer."""
        return {"sac": self.sac.state_dict(), "buffer": self.buffer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` wrote."""
        self.sac.load_state_dict(state["sac"])
        self.buffer.load_state_dict(state["buffer"])
