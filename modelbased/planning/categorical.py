"""Trajectory optimization over discrete actions: CEM over per-step categorical distributions,
and exhaustive enumeration when ``|A|^H`` is small.

* Categorical CEM (Rubinstein 1999, the cross-entropy method for combinatorial optimization;
  de Boer et al. 2005, "A tutorial on the cross-entropy method", section 2.2): the sampling
  distribution of an ``H``-step plan is one categorical ``p_t`` over ``|A|`` actions per step.
  Sample ``population`` sequences, keep the ``elites`` best, set ``p_t`` to the elites' action
  frequencies at step ``t`` smoothed by ``momentum`` (``p <- momentum p + (1 - momentum)
  freq``, de Boer's smoothed update, which keeps an action the elites missed once from dying
  out), repeat ``iterations`` times. The plan is the mode of the last ``p`` (or, with
  ``execute_best``, the best sequence scored).
* Enumeration: every one of the ``|A|^H`` sequences is scored once and the best is the plan,
  the exact optimum of the score (a noisy score's optimum among its samples).

Actions are one-hot vectors, so these optimizers keep the contract of
:mod:`modelbased.planning.trajectory`: ``score(action_sequences [B, K, H, |A|]) -> [B, K]``,
plans ``[B, H, |A|]`` (the MPC controller executes the first step; its argmax is the action),
and the sampling state ``mean [B, H, |A|]`` holds the probabilities ``p``, which the MPC's
:func:`~modelbased.planning.trajectory.shift_plan` shifts into the next call's warm start. A
world model takes the one-hot action as its input (PETS's ensemble does).

This module owns :class:`CategoricalCEMConfig` (``planner.kind: categorical_cem``),
:class:`EnumerateConfig` (``planner.kind: enumerate``), :class:`CategoricalCEM` and
:class:`Enumerate`, batched over ``B`` start states and ``K`` candidates: one ``score`` call per
iteration.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from modelbased.core.config import Config
from modelbased.core.errors import ConfigError
from modelbased.planning.trajectory import PlanResult, Score, TrajectoryOptimizer


@dataclasses.dataclass(frozen=True)
class CategoricalCEMConfig(Config):
    """CEM over per-step categorical distributions (discrete actions)."""

    kind: Literal["categorical_cem"] = "categorical_cem"  # the optimizer
    population: int = 200  # action sequences sampled per iteration (N)
    elites: int = 20  # best sequences the probabilities are refitted to
    iterations: int = 4  # refits per plan
    momentum: float = 0.1  # p <- momentum * p + (1 - momentum) * elite frequencies
    # share of the shifted previous plan in the first distribution (the rest is uniform)
    warm_weight: float = 0.5
    execute_best: bool = False  # the plan is the best sequence scored, not the mode of p

    def validate(self) -> None:
        """Positive sizes with ``elites <= population``; ``momentum`` and ``warm_weight`` in
        [0, 1)."""
        for key in ("population", "elites", "iterations"):
            self.require(getattr(self, key) >= 1, key, "must be >= 1")
        self.require(
            self.elites <= self.population, "elites", f"must be <= population={self.population}"
        )
        self.require(0 <= self.momentum < 1, "momentum", "must be in [0, 1)")
        self.require(
            0 <= self.warm_weight < 1,
            "warm_weight",
            "must be in [0, 1) (1 would never sample an action the last plan ruled out)",
        )


@dataclasses.dataclass(frozen=True)
class EnumerateConfig(Config):
    """Score every action sequence (discrete actions, small ``|A|^H``)."""

    kind: Literal["enumerate"] = "enumerate"  # the optimizer
    max_sequences: int = 4096  # refuse an |A|^H above this (the score runs on all at once)

    def validate(self) -> None:
        """A positive cap."""
        self.require(self.max_sequences >= 1, "max_sequences", "must be >= 1")


class CategoricalPlanner(TrajectoryOptimizer):
    """Base of the discrete optimizers: ``num_actions`` one-hot actions, i.e. the bounds
    ``[0, 1]^|A|`` of the continuous base, on ``device``."""

    def __init__(
        self,
        num_actions: int,
        horizon: int,
        config: Any = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if num_actions < 2:
            raise ConfigError(f"{type(self).__name__}: needs >= 2 actions, got {num_actions}")
        zeros = torch.zeros(num_actions, device=device)
        super().__init__(zeros, torch.ones_like(zeros), horizon, config, generator)

    @property
    def num_actions(self) -> int:
        """``|A|``."""
        return self.action_dim

    def one_hot(self, index: Tensor) -> Tensor:
        """Action indices ``[...]`` -> one-hot actions ``[..., |A|]`` in the bounds' dtype."""
        return F.one_hot(index, self.num_actions).to(self.action_low.dtype)

    def uniform(self, batch_size: int) -> Tensor:
        """``[B, H, |A|]`` uniform probabilities."""
        shape = (batch_size, self.horizon, self.num_actions)
        return self.action_low.new_full(shape, 1.0 / self.num_actions)


class CategoricalCEM(CategoricalPlanner):
    """CEM over per-step categoricals; see the module docstring. ``init_mean`` (probabilities
    ``[B, H, |A|]``, e.g. the shifted last plan) is mixed with the uniform distribution by
    ``warm_weight``; ``init_std`` has no meaning here and is refused."""

    config_class = CategoricalCEMConfig
    config: CategoricalCEMConfig

    def sample(self, probs: Tensor, u: Tensor) -> Tensor:
        """Indices ``[B, K, H]`` drawn from ``probs [B, H, |A|]`` by inverting the CDF at the
        uniforms ``u [B, K, H]``."""
        cdf = probs.cumsum(-1).unsqueeze(1)  # [B, 1, H, |A|]
        index = (u.unsqueeze(-1) >= cdf).sum(-1)
        return index.clamp_max(self.num_actions - 1)  # u above a CDF rounded below 1

    @torch.inference_mode()
    def optimize(
        self,
        score: Score,
        batch_size: int | None = None,
        init_mean: Tensor | None = None,
        init_std: Tensor | None = None,
    ) -> PlanResult:
        """CEM iterations on ``score`` for ``B`` start states (see
        :meth:`TrajectoryOptimizer.optimize`): sample one-hot sequences from ``p``, refit ``p``
        to the elites' frequencies."""
        if init_std is not None:
            raise ValueError("CategoricalCEM has no std: init_std must be None")
        c = self.config
        if batch_size is None:
            batch_size = init_mean.shape[0] if init_mean is not None and init_mean.dim() == 3 else 1
        probs = self.uniform(batch_size)
        if init_mean is not None:
            warm, _ = self._start(batch_size, init_mean, None, self.half_range)
            warm = warm / warm.sum(-1, keepdim=True).clamp_min(1e-12)
            probs = c.warm_weight * warm + (1 - c.warm_weight) * probs
        B, H, n = probs.shape
        K = c.population
        uniforms = torch.special.ndtr(self._normals(B, c.iterations * K * H))
        best_value = torch.full((B,), -torch.inf, dtype=probs.dtype, device=probs.device)
        best = probs.new_zeros(B, H, n)
        for i in range(c.iterations):
            u = uniforms[:, i * K * H : (i + 1) * K * H].reshape(B, K, H)
            candidates = self.one_hot(self.sample(probs, u))  # [B, K, H, |A|]
            returns = self._evaluate(score, candidates)
            elite_returns, index = returns.topk(c.elites, dim=1)  # best first
            elites = candidates.gather(1, index[:, :, None, None].expand(-1, -1, H, n))
            better = elite_returns[:, 0] > best_value
            best_value = torch.where(better, elite_returns[:, 0], best_value)
            best = torch.where(better[:, None, None], elites[:, 0], best)
            probs = c.momentum * probs + (1 - c.momentum) * elites.mean(dim=1)
        if c.execute_best:
            return PlanResult(best, best_value, probs, c.iterations, c.iterations * K)
        mode = self.one_hot(probs.argmax(-1))
        return PlanResult(mode, elite_returns.mean(dim=1), probs, c.iterations, c.iterations * K)


class Enumerate(CategoricalPlanner):
    """Every sequence of ``|A|^H`` scored in one call; the best is the plan. Raises
    :class:`ConfigError` when ``|A|^H`` exceeds ``max_sequences``."""

    config_class = EnumerateConfig
    config: EnumerateConfig

    def __init__(self, num_actions: int, horizon: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(num_actions, horizon, *args, **kwargs)
        count = num_actions**horizon
        if count > self.config.max_sequences:
            raise ConfigError(
                f"enumerate: |A|^H = {num_actions}^{horizon} = {count} sequences exceed "
                f"planner.max_sequences={self.config.max_sequences}; lower the horizon, raise "
                "the cap, or use planner.kind=categorical_cem"
            )
        index = torch.tensor(
            list(itertools.product(range(num_actions), repeat=horizon)),
            dtype=torch.long,
            device=self.action_low.device,
        )
        self.sequences = self.one_hot(index)  # [|A|^H, H, |A|], lexicographic order

    @torch.inference_mode()
    def optimize(
        self,
        score: Score,
        batch_size: int | None = None,
        init_mean: Tensor | None = None,
        init_std: Tensor | None = None,
    ) -> PlanResult:
        """The best of all sequences for ``B`` start states; a warm start has nothing to add
        (only its batch size is read) and ties go to the first sequence in lexicographic
        order."""
        if batch_size is None:
            batch_size = init_mean.shape[0] if init_mean is not None and init_mean.dim() == 3 else 1
        K = len(self.sequences)
        candidates = self.sequences.unsqueeze(0).expand(batch_size, *self.sequences.shape)
        value, index = self._evaluate(score, candidates).max(dim=1)
        plan = self.sequences[index]
        return PlanResult(plan, value, plan, iterations=1, evaluations=K)
