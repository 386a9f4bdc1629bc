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

TD-MPC's variant (Hansen et al. 2022, 2024, "Temporal Difference Learning for Model Predictive
Control", "TD-MPC2") is the same update restricted to the ``elites`` best samples, with the std
refitted to their weighted spread within ``[min_std, sigma]`` (``adapt_std``), trajectories of a
policy prior scored beside the samples (``proposals``), and the executed plan one of the
weighted samples drawn by its weight (``select="sample"``) rather than their mean.
:class:`CategoricalMPPI` is the same search over discrete actions: per-step categorical
distributions, one-hot sequences scored by the same kind of ``score``, probabilities moved to
the weighted frequencies of the elites.

This module owns :class:`MPPIConfig`, :class:`MPPI`, :class:`CategoricalMPPIConfig` and
:class:`CategoricalMPPI`; ``B`` start states are optimized at once with one ``score`` call of
``[B, K, H, a]`` per iteration.
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
    elites: int = 0  # weight only the best k samples (TD-MPC); 0: all of them (Williams et al.)
    adapt_std: bool = False  # refit the std to the weighted spread each iteration (TD-MPC)
    min_std: float = 0.05  # lower bound of an adapted std, in units of the half-range
    select: Literal["mean", "sample"] = "mean"  # executed plan: the mean, or a sample by weight

    def validate(self) -> None:
        """Positive population, iterations, temperature and sigma; ``smoothing`` in [0, 1);
        ``elites`` in [0, population]; ``min_std`` > 0 (below ``sigma`` when adapting)."""
        self.require(self.population >= 1, "population", "must be >= 1")
        self.require(self.iterations >= 1, "iterations", "must be >= 1")
        self.require(self.temperature > 0, "temperature", "must be > 0")
        self.require(self.sigma > 0, "sigma", "must be > 0")
        self.require(0 <= self.smoothing < 1, "smoothing", "must be in [0, 1)")
        self.require(0 <= self.elites <= self.population, "elites", "must be in [0, population]")
        self.require(self.min_std > 0, "min_std", "must be > 0")
        if self.adapt_std:
            self.require(self.min_std <= self.sigma, "min_std", "must be <= sigma")


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
        proposals: Tensor | None = None,
    ) -> PlanResult:
        """MPPI iterations on ``score``, batched over ``B`` start states: perturb the mean,
        weight the samples (the ``elites`` best, if set) by ``softmax(return / temperature)``
        and move the mean to the weighted average; see :meth:`TrajectoryOptimizer.optimize` for
        the arguments. ``proposals [B, P, H, a]`` (e.g. a policy prior's trajectories) are
        scored beside the ``K`` samples in every iteration."""
        c = self.config
        mean, sigma = self._start(batch_size, init_mean, init_std, c.sigma * self.half_range)
        B, H, a = mean.shape
        K = c.population
        normals = self._normals(B, c.iterations * K * H * a)
        sigma = sigma.unsqueeze(1)
        std_low, std_high = c.min_std * self.half_range, sigma
        extra = None if proposals is None else self.clip(proposals.to(mean.dtype))
        for i in range(c.iterations):
            noise = normals[:, i * K * H * a : (i + 1) * K * H * a].reshape(B, K, H, a)
            if self._filter is not None:
                noise = self._filter @ noise
            actions = self.clip(torch.addcmul(mean.unsqueeze(1), sigma, noise))
            if extra is not None:
                actions = torch.cat([actions, extra], dim=1)
            returns = self._evaluate(score, actions)
            if c.elites:
                returns, best = returns.topk(min(c.elites, returns.shape[1]), dim=1)
                actions = actions.gather(1, best[:, :, None, None].expand(-1, -1, H, a))
            advantage = returns - returns.amax(dim=1, keepdim=True)
            weights = torch.softmax(advantage / c.temperature, dim=1)  # [B, K]
            perturbations = actions - mean.unsqueeze(1)
            mean = mean + (weights[:, :, None, None] * perturbations).sum(dim=1)
            mean = self.clip(mean)  # a convex combination already; guards rounding
            value = (weights * returns).sum(dim=1)
            if c.adapt_std:
                spread = (weights[:, :, None, None] * (actions - mean.unsqueeze(1)).square()).sum(1)
                sigma = torch.minimum(torch.maximum(spread.sqrt(), std_low), std_high[:, 0])
                sigma = sigma.unsqueeze(1)
        plan = mean
        if c.select == "sample":
            pick = torch.multinomial(weights, 1, generator=self.generator)[:, 0]
            plan = actions[torch.arange(B, device=pick.device), pick]
        scored = K + (0 if extra is None else extra.shape[1])
        std = sigma[:, 0] if c.adapt_std else None
        return PlanResult(plan, value, mean, c.iterations, c.iterations * scored, std)


@dataclasses.dataclass(frozen=True)
class CategoricalMPPIConfig(Config):
    """MPPI over discrete actions: per-step categorical distributions (see the module
    docstring); ``temperature`` is in units of the returns."""

    kind: Literal["categorical_mppi"] = "categorical_mppi"  # the optimizer
    population: int = 256  # sampled sequences per iteration (K)
    iterations: int = 4  # updates of the distributions per call
    temperature: float = 1.0  # lambda, in units of the returns
    elites: int = 32  # weight only the best k samples; 0: all of them
    min_prob: float = 0.02  # floor of every action's probability after an update
    select: Literal["mode", "sample"] = "mode"  # executed plan: most likely, or a sample by weight

    def validate(self) -> None:
        """Positive population, iterations and temperature; ``elites`` in [0, population];
        ``min_prob`` in [0, 0.5)."""
        self.require(self.population >= 1, "population", "must be >= 1")
        self.require(self.iterations >= 1, "iterations", "must be >= 1")
        self.require(self.temperature > 0, "temperature", "must be > 0")
        self.require(0 <= self.elites <= self.population, "elites", "must be in [0, population]")
        self.require(0 <= self.min_prob < 0.5, "min_prob", "must be in [0, 0.5)")


class CategoricalMPPI(TrajectoryOptimizer):
    """MPPI over sequences of ``A`` discrete actions, as one-hot vectors: the bounds are
    ``[0, 1]^A``, ``init_mean [B, H, A]`` holds probabilities (a warm start), and ``score``
    receives one-hot sequences ``[B, K, H, A]``. The plan (``actions``) is one-hot, ``mean``
    the final probabilities."""

    config_class = CategoricalMPPIConfig
    config: CategoricalMPPIConfig

    def __init__(
        self,
        num_actions: int,
        horizon: int,
        config: CategoricalMPPIConfig | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        A = int(num_actions)
        low, high = torch.zeros(A, device=device), torch.ones(A, device=device)
        super().__init__(low, high, horizon, config, generator)
        if self.config.min_prob * A >= 1:
            raise ValueError(f"min_prob={self.config.min_prob} leaves no mass with {A} actions")

    @torch.inference_mode()
    def optimize(
        self,
        score: Score,
        batch_size: int | None = None,
        init_mean: Tensor | None = None,
        init_std: Tensor | None = None,
        proposals: Tensor | None = None,
    ) -> PlanResult:
        """Sample ``K`` one-hot sequences per start state from the per-step distributions,
        score them (with ``proposals [B, P, H, A]``, one-hot), and move the distributions to
        the weighted frequencies of the elites, floored at ``min_prob``. ``init_std`` is not
        used."""
        c = self.config
        A = self.action_dim
        uniform = torch.full_like(self.action_low, 1.0 / A)
        probs, _ = self._start(batch_size, init_mean, None, self.half_range)
        if init_mean is None:
            probs = uniform.expand_as(probs)
        probs = probs / probs.sum(-1, keepdim=True)
        B, H, _ = probs.shape
        K = c.population
        u = torch.rand(
            (B, c.iterations, K, H, 1), generator=self.generator, device=probs.device
        ).to(probs.dtype)
        eye = torch.eye(A, dtype=probs.dtype, device=probs.device)
        for i in range(c.iterations):
            cdf = probs.cumsum(-1).unsqueeze(1)  # [B, 1, H, A]
            index = (u[:, i] > cdf).sum(-1).clamp(max=A - 1)  # inverse-CDF draw, [B, K, H]
            actions = eye[index]
            if proposals is not None:
                actions = torch.cat([actions, proposals.to(probs.dtype)], dim=1)
            returns = self._evaluate(score, actions)
            if c.elites:
                returns, best = returns.topk(min(c.elites, returns.shape[1]), dim=1)
                actions = actions.gather(1, best[:, :, None, None].expand(-1, -1, H, A))
            weights = torch.softmax((returns - returns.amax(1, keepdim=True)) / c.temperature, 1)
            frequencies = (weights[:, :, None, None] * actions).sum(dim=1)  # [B, H, A]
            probs = frequencies * (1 - A * c.min_prob) + c.min_prob
            value = (weights * returns).sum(dim=1)
        if c.select == "sample":
            pick = torch.multinomial(weights, 1, generator=self.generator)[:, 0]
            plan = actions[torch.arange(B, device=pick.device), pick]
        else:
            plan = eye[probs.argmax(-1)]
        scored = K + (0 if proposals is None else proposals.shape[1])
        return PlanResult(plan, value, probs, c.iterations, c.iterations * scored)
