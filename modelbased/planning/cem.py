"""The cross-entropy method (CEM) for planning, with the options of iCEM.

* CEM (Rubinstein 1999; Botev et al. 2013, "The cross-entropy method for optimization"), as
  PETS plans with it (Chua et al. 2018, "Deep reinforcement learning in a handful of trials
  using probabilistic dynamics models"): sample ``population`` action sequences from a diagonal
  Gaussian over ``[H, a]``, keep the ``elites`` best, refit mean and variance to them with
  ``momentum``, repeat ``iterations`` times.
* iCEM (Pinneri et al. 2020, "Sample-efficient cross-entropy method for real-time planning"):
  colored noise with power spectral density ``~ 1/f^beta`` along time, a population that
  shrinks by ``population_decay`` per iteration (``N_i = max(N decay^-i, 2 elites)``), a
  fraction of the elites kept into the next iteration and, shifted by one step, into the next
  time step, the mean as a candidate in the last iteration, and the best sequence seen as the plan.

This module owns :class:`CEMConfig` (defaults are plain CEM), :class:`ICEMConfig` (the iCEM
options switched on) and :class:`CEM`, which runs either. All ``B`` start states are optimized
at once: one ``score`` call of ``[B, K, H, a]`` per iteration, elites by ``topk`` over ``K``
per start state.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import torch
from torch import Tensor

from modelbased.core.config import Config
from modelbased.planning.trajectory import (
    PlanResult,
    Score,
    TrajectoryOptimizer,
    noise_size,
    sequence_noise,
    truncated_normal,
)

Sampling = Literal["clipped", "truncated"]


@dataclasses.dataclass(frozen=True)
class CEMConfig(Config):
    """CEM settings (defaults: plain CEM as PETS plans); :class:`ICEMConfig` is iCEM's.

    ``sampling``: ``clipped`` draws ``N(mean, std^2)`` and clamps to the bounds; ``truncated``
    draws the normal truncated to the bounds (inverse CDF), so no mass piles up on them.
    """

    kind: Literal["cem"] = "cem"  # the optimizer
    population: int = 350  # action sequences sampled per iteration (N)
    elites: int = 35  # best sequences the distribution is refitted to
    iterations: int = 5  # refits per plan
    momentum: float = 0.1  # new = momentum * old + (1 - momentum) * elite statistic
    min_std: float = 1e-3  # floor of the std, in units of the half-range (high - low) / 2
    sampling: Sampling = "clipped"  # how samples are kept within the bounds
    # iCEM options; the defaults give plain CEM
    noise_beta: float = 0.0  # colored-noise exponent: 0 white, iCEM 2-3
    population_decay: float = 1.0  # N_i = N * decay^-i (iCEM's gamma, 1.25)
    keep_elites: float = 0.0  # fraction of elites carried to the next iteration; iCEM 0.3
    shift_elites: bool = False  # carry the kept elites, shifted one step, to the next call
    add_mean: bool = False  # the mean is a candidate in the last iteration
    execute_best: bool = False  # the plan is the best sequence seen, not the mean

    def validate(self) -> None:
        """Positive sizes with ``elites <= population``, ``momentum`` and ``keep_elites`` in [0,
        1], a positive ``min_std``, ``population_decay >= 1``, and kept elites when keeping or
        shifting."""
        for key in ("population", "elites", "iterations"):
            self.require(getattr(self, key) >= 1, key, "must be >= 1")
        self.require(
            self.elites <= self.population, "elites", f"must be <= population={self.population}"
        )
        self.require(0 <= self.momentum <= 1, "momentum", "must be in [0, 1]")
        self.require(self.min_std > 0, "min_std", "must be > 0")
        self.require(self.noise_beta >= 0, "noise_beta", "must be >= 0")
        self.require(self.population_decay >= 1, "population_decay", "must be >= 1")
        self.require(0 <= self.keep_elites <= 1, "keep_elites", "must be in [0, 1]")
        self.require(
            self.keep_elites == 0 or self.num_kept >= 1,
            "keep_elites",
            f"keeps no elite of elites={self.elites}; use 0 or a larger fraction",
        )
        self.require(
            not self.shift_elites or self.num_kept >= 1,
            "shift_elites",
            "needs keep_elites > 0 (the fraction of elites to shift)",
        )

    @property
    def num_kept(self) -> int:
        """Elites kept across iterations (and time steps with ``shift_elites``)."""
        return round(self.keep_elites * self.elites)

    def populations(self) -> list[int]:
        """Fresh samples per iteration: ``N_i = max(N gamma^-i, 2 elites)``, at most ``N``."""
        floor = min(self.population, 2 * self.elites)
        decay = self.population_decay
        return [max(int(self.population * decay**-i), floor) for i in range(self.iterations)]


@dataclasses.dataclass(frozen=True)
class ICEMConfig(CEMConfig):
    """iCEM's switches from the paper: colored noise (beta 2), a population decaying by 1.25,
    30% of the elites kept and shifted, the mean added, the best sequence executed."""

    kind: Literal["icem"] = "icem"  # type: ignore[assignment]
    noise_beta: float = 2.0
    population_decay: float = 1.25
    keep_elites: float = 0.3
    shift_elites: bool = True
    add_mean: bool = True
    execute_best: bool = True


class CEM(TrajectoryOptimizer):
    """CEM over action sequences with iCEM's options; see the module docstring.

    The initial std is ``(high - low) / 4`` unless ``init_std`` is given; the variance never
    falls below ``(min_std * (high - low) / 2)^2``. With ``shift_elites`` the optimizer keeps the
    last call's kept elites: call :meth:`reset` when the start states change unrelatedly (a new
    episode), and the kept elites are dropped whenever ``B`` changes.
    """

    config_class = CEMConfig
    config: CEMConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shifted_elites: Tensor | None = None  # [B, num_kept, H, a] from the last call

    def reset(self) -> None:
        """Drop the kept elites of the last call (a new episode)."""
        self._shifted_elites = None

    def sample(self, mean: Tensor, std: Tensor, z: Tensor) -> Tensor:
        """Candidates ``[B, K, H, a]`` within the bounds from ``mean, std [B, H, a]`` and unit
        noise ``z [B, K, H, a]``, clipped or truncated as the config says."""
        mean, std = mean.unsqueeze(1), std.unsqueeze(1)
        if self.config.sampling == "truncated":
            return truncated_normal(mean, std, self.action_low, self.action_high, z)
        return self.clip(torch.addcmul(mean, std, z))

    @torch.inference_mode()
    def optimize(
        self,
        score: Score,
        batch_size: int | None = None,
        init_mean: Tensor | None = None,
        init_std: Tensor | None = None,
    ) -> PlanResult:
        """CEM iterations on ``score``, batched over ``B`` start states: sample around the mean,
        refit mean and std to the elites (smoothed by ``momentum``); see
        :meth:`TrajectoryOptimizer.optimize` for the arguments."""
        c = self.config
        mean, std = self._start(batch_size, init_mean, init_std, self.half_range / 2)
        B, H, a = mean.shape
        var = std.square()
        min_var = (c.min_std * self.half_range).square()
        sizes = c.populations()
        per_sequence = noise_size(H, a, c.noise_beta)
        normals = self._normals(B, sum(sizes) * per_sequence)

        kept = self._shifted_elites
        if kept is not None and kept.shape[0] != B:
            kept = None
        best_value = torch.full((B,), -torch.inf, dtype=mean.dtype, device=mean.device)
        best = mean
        evaluations, offset = 0, 0
        for i, n in enumerate(sizes):
            z = normals[:, offset : offset + n * per_sequence].reshape(B, n, -1)
            offset += n * per_sequence
            samples = self.sample(mean, var.sqrt(), sequence_noise(z, H, a, c.noise_beta))
            candidates = [samples]
            if kept is not None:
                if i == 0:  # last call's elites, one step on; their new last step is sampled
                    kept = torch.cat([kept[:, :, 1:], samples[:, : kept.shape[1], -1:]], dim=2)
                candidates.append(kept)
            if c.add_mean and i == len(sizes) - 1:
                candidates.append(mean.unsqueeze(1))
            population = torch.cat(candidates, dim=1) if len(candidates) > 1 else samples
            returns = self._evaluate(score, population)
            evaluations += population.shape[1]

            elite_returns, index = returns.topk(c.elites, dim=1)  # sorted, best first
            elites = population.gather(1, index[:, :, None, None].expand(-1, -1, H, a))
            if c.execute_best:
                better = elite_returns[:, 0] > best_value
                best_value = torch.where(better, elite_returns[:, 0], best_value)
                best = torch.where(better[:, None, None], elites[:, 0], best)
            mean = c.momentum * mean + (1 - c.momentum) * elites.mean(dim=1)
            elite_var = elites.var(dim=1, unbiased=False)
            var = torch.maximum(c.momentum * var + (1 - c.momentum) * elite_var, min_var)
            kept = elites[:, : c.num_kept] if c.num_kept else None

        self._shifted_elites = kept if c.shift_elites else None
        if c.execute_best:
            return PlanResult(best, best_value, mean, len(sizes), evaluations)
        return PlanResult(mean, elite_returns.mean(dim=1), mean, len(sizes), evaluations)
