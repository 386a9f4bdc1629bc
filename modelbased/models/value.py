"""A learned state-value function ``V(s)`` for the terminal value of model-predictive control:
the return beyond the planning horizon, so that a short horizon is not myopic (POLO: Lowrey et
al. 2019, "Plan Online, Learn Offline"; LOOP: Sikchi et al. 2021; TD-MPC: Hansen et al. 2022).

:class:`ValueFunction` is fitted by temporal-difference policy evaluation (TD(0), fitted value
iteration for the behaviour policy) on a replay buffer of real transitions, with a Polyak-
averaged target network and clipped double estimates: two members trained on the same
minibatches, the target and the planning value both taking their minimum (Fujimoto et al.
2018), which keeps the planner from chasing the value's optimistic errors. Truncated episodes
bootstrap, terminated ones do not. Inputs are standardised with statistics refitted on every
:meth:`fit`. The two members are one :class:`~modelbased.models.layers.EnsembleMLP`: one
batched matmul per layer.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modelbased.core.errors import ConfigError, DataError, TrainingDivergedError
from modelbased.data.replay import ReplayBuffer
from modelbased.models.layers import ensemble_mlp
from modelbased.models.normalizer import Normalizer


class ValueFunction(nn.Module):
    """``V(obs [..., o]) -> [...]``, the minimum of two TD-trained estimates."""

    def __init__(
        self,
        obs_dim: int,
        gamma: float = 0.99,
        hidden: int = 200,
        layers: int = 2,
        lr: float = 1e-3,
        tau: float = 0.01,
        batch_size: int = 256,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not 0.0 < gamma < 1.0:
            raise ConfigError(f"ValueFunction: gamma={gamma!r} must be in (0, 1)")
        self.obs_dim, self.gamma, self.tau, self.batch_size = obs_dim, gamma, tau, batch_size
        with torch.random.fork_rng(devices=[]):  # built on the CPU; .to(device) after
            torch.manual_seed(seed)
            self.net = ensemble_mlp(obs_dim, 1, hidden, layers, ensemble_size=2, init="linear")
        self.target = copy.deepcopy(self.net).requires_grad_(False)
        self.normalizer = Normalizer(obs_dim)
        self.lr = lr
        self._optimizer: torch.optim.Optimizer | None = None

    def _values(self, net: nn.Module, obs: Tensor) -> Tensor:
        """Both members' estimates ``[2, N]`` of ``obs [N, o]``."""
        return net(self.normalizer.normalize(obs)).squeeze(-1)

    def forward(self, obs: Tensor) -> Tensor:
        """``obs [..., o]`` -> ``V(obs) [...]``, the minimum of the two estimates."""
        shape = obs.shape[:-1]
        return self._values(self.net, obs.reshape(-1, self.obs_dim)).amin(0).reshape(shape)

    def fit(self, buffer: ReplayBuffer, steps: int, rng: np.random.Generator) -> dict[str, float]:
        """``steps`` TD(0) updates on minibatches from ``buffer``; returns the last TD loss and
        the mean value of the buffer's states. Raises :class:`TrainingDivergedError` (weights
        restored) when the loss stops being finite."""
        if len(buffer) == 0:
            raise DataError("ValueFunction.fit: the replay buffer is empty")
        if self._optimizer is None:
            self._optimizer = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        before = copy.deepcopy(self.state_dict())
        device = self.normalizer.mean.device
        data = buffer.all().to_torch(device)
        obs, next_obs = data["obs"].float(), data["next_obs"].float()
        reward = data["reward"].float().reshape(-1)
        alive = 1.0 - data["terminated"].float().reshape(-1)
        self.normalizer.fit(obs)
        loss = torch.zeros((), device=device)
        for _ in range(steps):
            idx = torch.from_numpy(rng.integers(0, len(obs), size=self.batch_size)).to(device)
            with torch.no_grad():
                next_v = self._values(self.target, next_obs[idx]).amin(0)
                target = reward[idx] + self.gamma * alive[idx] * next_v
            loss = F.mse_loss(self._values(self.net, obs[idx]), target.expand(2, -1))
            self._optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self._optimizer.step()
            with torch.no_grad():
                torch._foreach_lerp_(
                    list(self.target.parameters()), list(self.net.parameters()), self.tau
                )
        if not torch.isfinite(loss):
            self.load_state_dict(before)
            self._optimizer = None
            raise TrainingDivergedError(
                "ValueFunction.fit: the TD loss became non-finite; the previous weights were kept"
            )
        with torch.no_grad():
            mean_value = float(self(obs).mean())
        return {"value_td_loss": float(loss.detach()), "value_mean": mean_value}

    def to_checkpoint(self) -> dict[str, Any]:
        """The weights and ``gamma`` as tensors and plain data."""
        return {"state": self.state_dict(), "gamma": self.gamma}
