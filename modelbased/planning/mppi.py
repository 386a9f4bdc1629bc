"""Model predictive path integral control (MPPI) as a trajectory optimizer.

Williams et al. 2017, "Information theoretic MPC for model-based reinforcement learning":
perturb the current plan with Gaussian noise, score the ``population`` perturbed sequences and
move the plan by the return-weighted average of the perturbations, with weights
``softmax(returns / lambda)`` over the population (the temperature ``lambda`` trades greed,
``lambda -> 0`` takes the best sample, against averaging, ``lambda -> inf`` the plain mean).
Perturbations are clipped into the bounds before scoring and the update uses the clipped ones,
so the plan stays within the bounds. Temporal smoothing correlates the noise along time with a
first-order filter ``eps_t = rho eps_{t-1} + sqrt(1 - rho^2) n_t`` that keeps its variance, so
smoother sequences are explored without changing ``sigma`` (the role of the smoothing filters
of MPPI implementations and of PDDM's filtered sampling, Nagabandi et al. 2019, "Deep dynamics
models for learning dexterous manipulation").

This module owns :class:`MPPIConfig` and :class:`MPPI`; ``B`` start states are optimized at once
with one ``score`` call of ``[B, K, H, a]`` per iteration.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

import torch
from torch import Tensor

from modelbased.core.config import Config
from modelbased.planning.trajectory import (
    PlanResult,
    Score,
    TrajectoryOptimizer,
)


@dataclasses.dataclass(frozen=True)
class MPPIConfig(Config):
    """MPPI settings; an ``init_std`` passed to ``optimize`` is absolute and replaces ``sigma``."""

    kind: Literal["mppi"] = "mppi"  # the optimizer
    population: int = 500  # perturbed sequences per iteration (K)
    iterations: int = 1  # updates of the plan per call
    temperature: float = 1.0  # lambda, in units of the returns
    sigma: float = 0.5  # noise std, in units of the half-range (high - low) / 2
    smoothing: float = 0.0  # rho of the noise filter: 0 white, towards 1 smoother

    def validate(self) -> None:
        """Positive population, iterations, temperature and sigma; ``smoothing`` in [0, 1)."""
        self.require(self.population >= 1, "population", "must be >= 1")
        self.require(self.iterations >= 1, "iterations", "must be >= 1")
        self.require(self.temperature > 0, "temperature", "must be > 0")
        self.require(self.sigma > 0, "sigma", "must be > 0")
        self.require(0 <= self.smoothing < 1, "smoothing", "must be in [0, 1)")


def smoothing_filter(rho: float, horizon: int) -> Tensor:
    """``[H, H]`` lower-triangular ``L`` with ``(L @ n)_t = rho (L @ n)_{t-1} + sqrt(1 - rho^2)
    n_t`` and ``(L @ n)_0 = n_0``: white unit noise ``n`` becomes unit-variance AR(1) noise."""
    t = torch.arange(horizon, dtype=torch.float64)
    lag = t[:, None] - t[None, :]
    gain = torch.full((horizon,), math.sqrt(1 - rho**2), dtype=torch.float64)
    gain[0] = 1.0
    return torch.where(lag >= 0, rho ** lag.clamp(min=0) * gain, 0.0)


class MPPI(TrajectoryOptimizer):
    """MPPI over action sequences; see the module docstring. The plan is the updated mean and
    its value the softmax-weighted return of the last iteration's samples."""

    config_class = MPPIConfig
    config: MPPIConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        low = self.action_low
        rho = self.config.smoothing
        self._filter = (
            smoothing_filter(rho, self.horizon).to(dtype=low.dtype, device=low.device)
            if rho > 0
            else None
        )

    @torch.inference_mode()
    def optimize(
        self,
        score: Score,
        batch_size: int | None = None,
        init_mean: Tensor | None = None,
        init_std: Tensor | None = None,
    ) -> PlanResult:
        """MPPI iterations on ``score``, batched over ``B`` start states: perturb the mean,
        weight the samples by ``softmax(return / temperature)`` and move the mean to the weighted
        average; see :meth:`TrajectoryOptimizer.optimize` for the arguments."""
        c = self.config
        mean, sigma = self._start(batch_size, init_mean, init_std, c.sigma * self.half_range)
        B, H, a = mean.shape
        K = c.population
        normals = self._normals(B, c.iterations * K * H * a)
        sigma = sigma.unsqueeze(1)
        for i in range(c.iterations):
            noise = normals[:, i * K * H * a : (i + 1) * K * H * a].reshape(B, K, H, a)
            if self._filter is not None:
                noise = self._filter @ noise
            actions = self.clip(torch.addcmul(mean.unsqueeze(1), sigma, noise))
            returns = self._evaluate(score, actions)
            advantage = returns - returns.amax(dim=1, keepdim=True)
            weights = torch.softmax(advantage / c.temperature, dim=1)  # [B, K]
            perturbations = actions - mean.unsqueeze(1)
            mean = mean + (weights[:, :, None, None] * perturbations).sum(dim=1)
            mean = self.clip(mean)  # a convex combination already; guards rounding
            value = (weights * returns).sum(dim=1)
        return PlanResult(mean, value, mean, c.iterations, c.iterations * K)
