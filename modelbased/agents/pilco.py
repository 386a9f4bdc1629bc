"""PILCO: probabilistic inference for learning control (Deisenroth & Rasmussen 2011, "PILCO: A
Model-Based and Data-Efficient Approach to Policy Search", algorithm 1).

    apply random controls for `random_steps` steps
    repeat:
        learn the GP dynamics model on all real data (subset of data beyond max_points)
        improve the policy: L-BFGS on the predicted expected saturating cost of H steps from
            p(x0), by moment matching through the GP and gradients through the trajectory
        apply the policy to the system for one episode (or `train_every` steps), record data

The GP (:mod:`modelbased.models.gp`) models the change of the observation given observation
and action; the policy search is :mod:`modelbased.planning.pilco`. ``p(x0)`` is a mixture of
``start_components`` Gaussians fitted (k-means) to ``start_samples`` resets of the env: one
Gaussian for a narrow start (the swing-ups hanging down), several for Pendulum-v1's uniform
angle. The cost is the env's saturating cost (``envs.reward_fns.SATURATING_COSTS``). Written in
plain torch (no gpytorch): the moment matching needs the kernel's closed forms, not a GP
library's inference.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from modelbased.core.agent import Agent
from modelbased.core.config import AgentConfig
from modelbased.core.env_utils import env_name, require_box
from modelbased.core.errors import ConfigError
from modelbased.core.registry import register_agent
from modelbased.core.schedule import due
from modelbased.core.seeding import derive_seed
from modelbased.core.timer import timed
from modelbased.data.replay import ReplayBuffer
from modelbased.envs.reward_fns import SATURATING_COSTS, saturating_cost
from modelbased.models.gp import GaussianProcess, GPConfig
from modelbased.planning.pilco import PolicyConfig, SaturatingCost, SquashedPolicy, optimize_policy


@dataclasses.dataclass(frozen=True)
class PILCOConfig(AgentConfig):
    """GP model, policy and schedule settings (defaults: the paper's cart-pole where it says)."""

    algo = "pilco"
    model: GPConfig = GPConfig()  # the GP dynamics model
    policy: PolicyConfig = PolicyConfig()  # RBF (the paper's) or linear, sin-squashed
    horizon: int = 40  # predicted steps H of the policy evaluation
    gamma: float = 1.0  # discount of the predicted costs
    policy_iterations: int = 50  # L-BFGS iterations per policy improvement
    random_steps: int = 200  # random-control steps before the first model
    # real steps between improvements within an episode (0: at episode ends only)
    train_every: int = 0
    start_components: int = 1  # Gaussians of the start-state mixture p(x0)
    start_samples: int = 200  # env resets drawn to fit p(x0) (resets are not steps)
    start_jitter: float = 1e-4  # variance added to each start component
    buffer_size: int = 20_000  # real transitions kept

    def validate(self) -> None:
        """Positive horizon, iterations and counts; a discount in (0, 1]."""
        super().validate()
        for key in ("horizon", "policy_iterations", "random_steps", "start_components"):
            self.require(getattr(self, key) >= 1, key, "must be >= 1")
        self.require(self.train_every >= 0, "train_every", "must be >= 0 (0: episode ends)")
        self.require(
            self.start_samples >= self.start_components,
            "start_samples",
            "must be >= start_components",
        )
        self.require(self.start_jitter >= 0, "start_jitter", "must be >= 0")
        self.require(0.0 < self.gamma <= 1.0, "gamma", "must be in (0, 1]")
        self.require(self.buffer_size >= 2, "buffer_size", "must be >= 2")


def start_mixture(
    states: np.ndarray, components: int, jitter: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights ``[K]``, means ``[K, o]`` and covariances ``[K, o, o]`` of a k-means mixture of
    ``states [N, o]`` (Lloyd's algorithm, 20 rounds)."""
    centres = states[rng.choice(len(states), components, replace=False)]
    for _ in range(20):
        label = ((states[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        centres = np.stack([states[label == k].mean(0) if (label == k).any() else centres[k]
                            for k in range(components)])  # fmt: skip
    label = ((states[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
    weights, covs = np.zeros(components), []
    for k in range(components):
        member = states[label == k]
        weights[k] = len(member) / len(states)
        cov = np.cov(member.T) if len(member) > 1 else np.zeros((states.shape[1],) * 2)
        covs.append(np.atleast_2d(cov) + jitter * np.eye(states.shape[1]))
    return weights, centres, np.stack(covs)


@register_agent
class PILCO(Agent):
    """GP dynamics + analytic policy evaluation + gradient-based policy improvement."""

    algo = "pilco"
    Config = PILCOConfig
    config: PILCOConfig
    default_env = "InvertedPendulum-v5"
    default_steps = 1_000

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        """Flat Box spaces and a known saturating cost."""
        require_box(cls.algo, env, observation=True, action=True)
        if saturating_cost(env) is None:
            raise ConfigError(
                f"pilco: {env_name(env)} has no saturating cost (known: "
                f"{', '.join(SATURATING_COSTS)})"
            )

    def setup(self) -> None:
        """Buffer, GP, policy, cost and the start-state mixture ``p(x0)``."""
        cfg = self.config
        space: gym.spaces.Box = self.env.action_space  # type: ignore[assignment]
        obs_space: gym.spaces.Box = self.env.observation_space  # type: ignore[assignment]
        self.low, self.high = space.low.astype(np.float32), space.high.astype(np.float32)
        obs_dim, act_dim = obs_space.shape[0], space.shape[0]
        self.buffer = ReplayBuffer.for_env(self.env, cfg.buffer_size)
        self.gp = GaussianProcess(obs_dim + act_dim, obs_dim, cfg.model, self.device)
        self.generator = torch.Generator().manual_seed(derive_seed(self.seed, "policy"))
        low, high = (torch.as_tensor(b, device=self.device) for b in (self.low, self.high))
        self.policy_net = SquashedPolicy(obs_dim, low, high, cfg.policy, self.generator)
        self.policy_net.to(self.device)
        projection, target, width = saturating_cost(self.env)  # type: ignore[misc]
        kw: dict[str, Any] = {"dtype": torch.float64, "device": self.device}
        self.cost = SaturatingCost(
            torch.tensor(projection, **kw), torch.tensor(target, **kw), width
        )
        starts = np.stack([
            self.env.reset(seed=derive_seed(self.seed, "start", i))[0]
            for i in range(cfg.start_samples)
        ]).astype(np.float64)  # fmt: skip
        w, m, s = start_mixture(starts, cfg.start_components, cfg.start_jitter, self.rng)
        self.start = tuple(torch.as_tensor(a, **kw) for a in (w, m, s))
        self.trained = False
        self._scalars: dict[str, float] = {}

    # -- the loop's hooks ---------------------------------------------------------------------
    def explore(self, obs: np.ndarray) -> np.ndarray:
        """Random controls until the first policy, then the policy (PILCO explores through the
        model's uncertainty, not through action noise)."""
        if not self.trained:
            return self.rng.uniform(self.low, self.high).astype(np.float32)
        return self.policy(obs, True, self.rng)

    def observe(
        self, obs: Any, action: Any, reward: float, next_obs: Any, terminated: bool, truncated: bool
    ) -> None:
        """Store the transition; learn the model and improve the policy at the end of each
        episode (and every ``train_every`` steps) once ``random_steps`` are collected."""
        cfg, step = self.config, self.loop.env_steps
        self.buffer.add(obs, action, reward, next_obs, terminated, truncated)
        periodic = cfg.train_every > 0 and due(step, cfg.train_every, cfg.random_steps)
        if step >= cfg.random_steps and (terminated or truncated or periodic):
            self.learn_model()
            self.improve_policy()
            self.trained = True

    @timed("model")
    def learn_model(self) -> None:
        """Fit the GP to ``(obs, action) -> next_obs - obs`` on all real data."""
        data = self.buffer.all()
        inputs = np.concatenate([data.obs, data.action], 1)
        self._scalars |= self.gp.fit(inputs, data.next_obs - data.obs, self.rng)

    @timed("policy")
    def improve_policy(self) -> None:
        """L-BFGS on the predicted cost of ``horizon`` steps from ``p(x0)``."""
        cfg = self.config
        if not self.trained:
            states = torch.as_tensor(self.buffer.all().obs, device=self.device)
            self.policy_net.initialise(states, self.generator)
        w, m0, s0 = self.start
        self._scalars |= optimize_policy(
            self.gp, self.policy_net, self.cost, m0, s0, w, cfg.horizon,
            cfg.policy_iterations, cfg.gamma,
        )  # fmt: skip

    def policy(self, obs: np.ndarray, deterministic: bool, rng: np.random.Generator) -> Any:
        """The squashed policy's action (uniform random before the first improvement)."""
        if not self.trained:
            return rng.uniform(self.low, self.high).astype(np.float32)
        x = torch.as_tensor(np.asarray(obs, dtype=np.float64), device=self.device)[None]
        with torch.no_grad():
            return self.policy_net(x)[0].cpu().numpy().astype(np.float32)

    @property
    def policy_ready(self) -> bool:
        """Random controls until the first policy improvement."""
        return self.trained

    def train_scalars(self) -> dict[str, float]:
        """The last GP fit's likelihood and the predicted cost before/after the improvement."""
        return dict(self._scalars)

    def state_dict(self) -> dict[str, Any]:
        """GP data and hyperparameters, policy parameters, buffer and the generator."""
        return {
            "gp": self.gp.state_dict(),
            "policy": {k: v.cpu() for k, v in self.policy_net.state_dict().items()},
            "buffer": self.buffer.state_dict(),
            "trained": self.trained,
            "scalars": self._scalars,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` wrote."""
        self.gp.load_state_dict(state["gp"])
        self.policy_net.load_state_dict(state["policy"])
        self.buffer.load_state_dict(state["buffer"])
        self.trained = bool(state["trained"])
        self._scalars = {k: float(v) for k, v in state["scalars"].items()}
        self.generator.set_state(state["generator"])
