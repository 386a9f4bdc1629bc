"""LQR on a learned linear model: identify ``s' = A s + B a + c`` by least squares from the real
transitions, and act with the infinite-horizon LQR gain around a target state (Kalman 1960;
the "certainty-equivalent" adaptive LQR of Astrom & Wittenmark, "Adaptive Control", 1995,
ch. 5).

    collect `random_steps` steps with random actions
    repeat:
        at each episode end (and every `train_every` steps): fit (A, B, c) on all real data;
            (K, P) = DARE(A, B, Q, R); u* = the action holding s* still under the model
        act u = clip(u* - K (s - s*) + exploration noise)

The Riccati solution is :func:`modelbased.planning.lqr.lqr_infinite`; the model
:func:`modelbased.models.linear.fit_linear`. Suits tasks that stay near one operating point
(balancing), not swing-ups.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from modelbased.core.agent import Agent
from modelbased.core.config import AgentConfig
from modelbased.core.env_utils import require_box
from modelbased.core.registry import register_agent
from modelbased.core.schedule import due
from modelbased.core.timer import timed
from modelbased.data.replay import ReplayBuffer
from modelbased.models.linear import fit_linear
from modelbased.planning.lqr import lqr_infinite


@dataclasses.dataclass(frozen=True)
class LQRConfig(AgentConfig):
    """Cost weights, the target state and the identification schedule."""

    algo = "lqr"
    state_cost: tuple[float, ...] = ()  # diagonal of Q per observation dimension (empty: ones)
    control_cost: float = 0.1  # R = control_cost * I
    target: tuple[float, ...] = ()  # the state s* to hold (empty: zeros)
    ridge: float = 1e-6  # ridge penalty of the least-squares fit
    exploration_noise: float = 0.1  # Gaussian action noise while training, times the half range
    random_steps: int = 50  # random actions before the first model
    train_every: int = 0  # real steps between refits within an episode (0: episode ends only)
    buffer_size: int = 100_000  # real transitions kept

    def validate(self) -> None:
        """Non-negative costs and noise; positive counts."""
        super().validate()
        self.require(all(q >= 0 for q in self.state_cost), "state_cost", "must be >= 0")
        self.require(self.control_cost > 0, "control_cost", "must be > 0")
        self.require(self.ridge >= 0, "ridge", "must be >= 0")
        self.require(self.exploration_noise >= 0, "exploration_noise", "must be >= 0")
        self.require(self.random_steps >= 2, "random_steps", "must be >= 2")
        self.require(self.train_every >= 0, "train_every", "must be >= 0 (0: episode ends)")
        self.require(self.buffer_size >= 2, "buffer_size", "must be >= 2")


@register_agent
class LQRAgent(Agent):
    """Certainty-equivalent LQR on a least-squares linear model."""

    algo = "lqr"
    Config = LQRConfig
    config: LQRConfig
    default_env = "InvertedPendulum-v5"
    default_steps = 1_000

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        """Flat Box spaces only."""
        require_box(cls.algo, env, observation=True, action=True)

    def setup(self) -> None:
        """Buffer, cost matrices and the target."""
        cfg = self.config
        space: gym.spaces.Box = self.env.action_space  # type: ignore[assignment]
        obs_space: gym.spaces.Box = self.env.observation_space  # type: ignore[assignment]
        self.low, self.high = space.low.astype(np.float64), space.high.astype(np.float64)
        o, a = obs_space.shape[0], space.shape[0]
        for key, values in (("state_cost", cfg.state_cost), ("target", cfg.target)):
            self.config.require(len(values) in (0, o), key, f"needs {o} values (or none)")
        self.Q = torch.diag(torch.tensor(cfg.state_cost or (1.0,) * o, dtype=torch.float64))
        self.R = cfg.control_cost * torch.eye(a, dtype=torch.float64)
        self.target = np.asarray(cfg.target or (0.0,) * o, dtype=np.float64)
        self.buffer = ReplayBuffer.for_env(self.env, cfg.buffer_size)
        self.K = np.zeros((a, o))
        self.u_star = np.zeros(a)
        self.trained = False
        self._scalars: dict[str, float] = {}

    def explore(self, obs: np.ndarray) -> np.ndarray:
        """Random actions before the first model, then the LQR action plus Gaussian noise."""
        if not self.trained:
            return self.rng.uniform(self.low, self.high).astype(np.float32)
        noise = self.config.exploration_noise * (self.high - self.low) / 2
        return self._control(obs, self.rng.normal(0.0, 1.0, self.K.shape[0]) * noise)

    def observe(
        self, obs: Any, action: Any, reward: float, next_obs: Any, terminated: bool, truncated: bool
    ) -> None:
        """Store the transition and re-identify the model at episode ends (and periodically)."""
        cfg, step = self.config, self.loop.env_steps
        self.buffer.add(obs, action, reward, next_obs, terminated, truncated)
        periodic = cfg.train_every > 0 and due(step, cfg.train_every, cfg.random_steps)
        if step >= cfg.random_steps and (terminated or truncated or periodic):
            self.identify()

    @timed("model")
    def identify(self) -> None:
        """Fit ``(A, B, c)``, solve the DARE for ``K`` and the action ``u*`` holding ``s*``."""
        data = self.buffer.all()
        A, B, c, mse = fit_linear(data.obs, data.action, data.next_obs, self.config.ridge)
        try:
            K, _ = lqr_infinite(A, B, self.Q, self.R)
        except RuntimeError:  # not stabilisable under this model: keep the last gain
            self._scalars = {"model_mse": mse, "riccati_failed": 1.0}
            return
        s = torch.as_tensor(self.target)
        u_star = torch.linalg.lstsq(B, (s - A @ s - c)[:, None]).solution[:, 0]
        self.K, self.u_star = K.numpy(), u_star.numpy()
        self.trained = True
        closed = torch.linalg.eigvals(A - B @ K).abs().max()
        self._scalars = {"model_mse": mse, "closed_loop_radius": float(closed)}

    def _control(self, obs: np.ndarray, noise: np.ndarray | float = 0.0) -> np.ndarray:
        u = self.u_star - self.K @ (np.asarray(obs, dtype=np.float64) - self.target) + noise
        return np.clip(u, self.low, self.high).astype(np.float32)

    def policy(self, obs: np.ndarray, deterministic: bool, rng: np.random.Generator) -> Any:
        """``u* - K (s - s*)`` clipped to the bounds (random before the first model)."""
        if not self.trained:
            return rng.uniform(self.low, self.high).astype(np.float32)
        return self._control(obs)

    @property
    def policy_ready(self) -> bool:
        """Random actions until the first identification."""
        return self.trained

    def train_scalars(self) -> dict[str, float]:
        """The model's one-step MSE and the closed loop's spectral radius under it."""
        return dict(self._scalars)

    def state_dict(self) -> dict[str, Any]:
        """Gain, action offset, buffer."""
        return {
            "K": self.K,
            "u_star": self.u_star,
            "buffer": self.buffer.state_dict(),
            "trained": self.trained,
            "scalars": self._scalars,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.K, self.u_star = np.asarray(state["K"]), np.asarray(state["u_star"])
        self.buffer.load_state_dict(state["buffer"])
        self.trained = bool(state["trained"])
        self._scalars = {k: float(v) for k, v in state["scalars"].items()}
