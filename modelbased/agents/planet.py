"""PlaNet (Hafner et al. 2019, "Learning latent dynamics for planning from pixels"): the RSSM
world model of Dreamer, and no actor: every action is planned by CEM in latent space.

    initialise the replay D with `learning_starts` steps of random actions
    for each env step:
        s_t ~ q(s | s_{t-1}, a_{t-1}, o_t)                         (filter the observation)
        plan: CEM over action sequences a_{t:t+H} scored by sum_k r(s_{t+k}) along the prior's
              mean from s_t; execute the first action (+ Gaussian exploration noise in training)
        add (o_{t+1}, a_t, r_{t+1}, first, terminal) to D
        for each gradient step due at the replay ratio: the world-model loss on B chunks of T
              steps (reconstruction + reward + KL with free nats)

The world model, replay, loop, checkpoints and stop signals are Dreamer's (this class derives
from :class:`~modelbased.agents.dreamer.Dreamer` and replaces behaviour learning by planning);
the optimizer is the planning layer's :class:`~modelbased.planning.cem.CEM`, one batched
``score`` call of ``[1, K, H, A]`` per iteration.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from modelbased.agents.dreamer import Dreamer
from modelbased.core.config import AgentConfig
from modelbased.core.env_utils import env_name
from modelbased.core.errors import UnsupportedSpaceError
from modelbased.core.registry import register_agent
from modelbased.models.rssm import Latent
from modelbased.models.rssm_world_model import Size, WorldModelConfig
from modelbased.planning.cem import CEM, CEMConfig


@dataclasses.dataclass(frozen=True)
class PlaNetConfig(AgentConfig):
    """PlaNet's settings (defaults: the paper's, with a smaller model and planner for a CPU)."""

    algo = "planet"
    size: Size = "xs"  # model size for widths left at 0 (xs, s, m)
    # the RSSM with Gaussian latents, plain KL with 3 free nats, MSE heads (the paper's)
    model: WorldModelConfig = WorldModelConfig(
        deter=200,
        hidden=200,
        stoch=30,
        classes=0,
        symlog_obs=False,
        reward_head="mse",
        kl_dyn=1.0,
        kl_rep=1.0,
        free_bits=3.0,
        free_average=True,
        lr=1e-3,
        eps=1e-4,
    )
    # CEM in latent space (the paper: 1000 candidates, 100 elites, 10 iterations)
    planner: CEMConfig = CEMConfig(population=1000, elites=100, iterations=10, momentum=0.0)
    horizon: int = 12  # H, planning horizon in env steps
    buffer_size: int = 1_000_000  # env steps kept in the sequence replay
    batch_size: int = 50  # B, chunks per gradient step
    seq_len: int = 50  # T, steps per chunk
    replay_ratio: float = 1250.0  # replayed steps per env step (the paper: 100 steps per episode)
    learning_starts: int = 1000  # env steps of random actions before the first update
    expl_noise: float = 0.3  # std of Gaussian noise on planned actions in training

    def validate(self) -> None:
        """Positive sizes, horizon and ratio."""
        super().validate()
        for key in ("buffer_size", "batch_size", "seq_len", "horizon"):
            self.require(getattr(self, key) >= 1, key, "must be >= 1")
        self.require(self.replay_ratio > 0, "replay_ratio", "must be > 0")
        self.require(self.learning_starts >= 0, "learning_starts", "must be >= 0")
        self.require(self.expl_noise >= 0, "expl_noise", "must be >= 0")
        self.require(self.buffer_size >= self.seq_len, "buffer_size", "must hold one chunk")


@register_agent
class PlaNet(Dreamer):
    """PlaNet: Dreamer's world model, CEM in latent space instead of an actor."""

    algo = "planet"
    Config = PlaNetConfig  # type: ignore[assignment]
    config: PlaNetConfig  # type: ignore[assignment]
    default_env = "modelbased/CartPoleSwingUp-v0"
    default_steps = 4_000

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        """Dreamer's observations; Box actions (CEM optimizes continuous sequences)."""
        super().check_env(env)
        if not isinstance(env.action_space, gym.spaces.Box):
            raise UnsupportedSpaceError(
                f"{cls.algo} plans continuous actions; {env_name(env)} has {env.action_space}"
            )

    def setup_behavior(self) -> None:
        """No actor or critic: the CEM optimizer over actions in ``[-1, 1]^A``."""
        self.behavior = None
        ones = torch.ones(self.action_dim, device=self.device)
        self.planner = CEM(-ones, ones, self.config.horizon, self.config.planner, self.gen)

    def learn_behavior(self, post: Latent, batch: dict[str, Tensor]) -> dict[str, Any]:
        """Nothing: PlaNet plans instead."""
        return {}

    def plan(self, state: Latent, generator: torch.Generator) -> Tensor:
        """CEM from ``state [1]``: the first action ``[1, A]`` of the best plan."""
        rssm, reward = self.model.rssm, self.model.reward

        def score(actions: Tensor) -> Tensor:  # [1, K, H, A] -> predicted returns [1, K]
            B, K, H, A = actions.shape
            s = Latent(state.deter.expand(B * K, -1), state.stoch.expand(B * K, -1))
            feats = []
            for t in range(H):
                s, _ = rssm.img_step(s, actions[:, :, t].reshape(B * K, A), None)
                feats.append(s.feat())
            r = reward.mean(reward(torch.cat(feats)))  # [H * K]
            return r.view(H, B, K).sum(0)

        self.planner.generator = generator
        ones = torch.ones(1, self.config.horizon, self.action_dim, device=self.device)
        result = self.planner.optimize(score, 1, init_mean=0 * ones, init_std=ones)
        return result.actions[:, 0].clone()

    def choose(self, state: Latent, sample: bool) -> Tensor:
        """The planned action (the training generator's draws)."""
        return self.plan(state, self.gen)

    def policy_action(self, state: Latent, deterministic: bool, rng: np.random.Generator) -> Tensor:
        """The planned action, CEM's randomness drawn from ``rng``; Gaussian noise of
        ``expl_noise`` when not ``deterministic``."""
        gen = torch.Generator(device=self.device)
        gen.manual_seed(int(rng.integers(2**62)))
        action = self.plan(state, gen)
        if not deterministic and self.config.expl_noise:
            noise = rng.normal(0.0, self.config.expl_noise, self.action_dim).astype(np.float32)
            action = (action + torch.as_tensor(noise, device=self.device)).clamp(-1, 1)
        return action
