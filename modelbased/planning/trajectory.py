"""Trajectory optimization for model-predictive control: the shared base and random shooting.

A trajectory optimizer searches open-loop action sequences ``[H, a]`` within the action bounds
against any batched ``score(action_sequences [B, K, H, a]) -> returns [B, K]`` (higher is
better), for ``B`` independent start states at once: one ``score`` call per iteration, no Python
loop over start states or candidates (mbrl-lib plans one start state per call, its issue #132).
The MPC controller builds the score from a ``ModelEnv`` and executes the first action of the
plan, warm-starting the next plan from :func:`shift_plan` of this one.

This module owns:

* :data:`Score`, :class:`PlanResult` and :class:`TrajectoryOptimizer` — the contract, the
  bounds, the initial distribution, the per-call random draw and the scoring;
* :func:`shift_plan` — the receding-horizon warm start;
* :func:`colored_noise` (Timmer & Koenig 1995, as iCEM samples: Pinneri et al. 2020) and
  :func:`truncated_normal` — the samplers that CEM and MPPI share;
* :class:`RandomShooting` — the best of ``K`` uniform sequences (Nagabandi et al. 2018, "Neural
  network dynamics for model-based deep RL with model-free fine-tuning").

CEM/iCEM live in :mod:`modelbased.planning.cem`, MPPI in :mod:`modelbased.planning.mppi`.

Randomness: each ``optimize`` call draws all its standard normals as one ``[B, n]`` tensor, row
``b`` owning a contiguous block (``n`` padded to a multiple of 16, the block size of torch's
CPU normal sampler), so on CPU a batched call gives exactly the plans of ``B`` single-state calls
made one after another with the same generator.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor

from modelbased.core.config import Config
from modelbased.core.errors import ConfigError, UnsupportedSpaceError

Score = Callable[[Tensor], Tensor]
"""``action_sequences [B, K, H, a] -> returns [B, K]``, higher is better."""

_BLOCK = 16  # torch's CPU randn fills blocks of 16: rows of whole blocks draw like separate calls


@dataclasses.dataclass
class PlanResult:
    """The outcome of :meth:`TrajectoryOptimizer.optimize` for ``B`` start states."""

    actions: Tensor  # [B, H, a] the plan to execute (the final mean, or the best sequence seen)
    value: Tensor  # [B] its estimated return (best return, elite mean, or MPPI weighted mean)
    mean: Tensor  # [B, H, a] the final sampling mean, to warm-start the next plan
    iterations: int
    evaluations: int  # sequences scored per start state
    std: Tensor | None = None  # [B, H, a] the final sampling std, where the optimizer adapts it


def shift_plan(actions: Tensor, fill: Tensor | float | None = None) -> Tensor:
    """The MPC warm start: ``actions [..., H, a]`` without its first step, ``fill`` appended.

    ``fill`` broadcasts to ``[..., a]`` (e.g. the middle of the bounds, ``optimizer.middle``);
    by default the last step is repeated.
    """
    if actions.dim() < 2:
        raise ValueError(f"shift_plan needs actions [..., H, a], got shape {tuple(actions.shape)}")
    if fill is None:
        last = actions[..., -1:, :]
    else:
        fill = torch.as_tensor(fill, dtype=actions.dtype, device=actions.device)
        last = fill.broadcast_to(actions[..., -1, :].shape).unsqueeze(-2)
    return torch.cat([actions[..., 1:, :], last], dim=-2)


def noise_size(horizon: int, action_dim: int, beta: float = 0.0) -> int:
    """Standard normals that :func:`sequence_noise` consumes per action sequence."""
    per_dim = 2 * (horizon // 2 + 1) if beta != 0 else horizon
    return per_dim * action_dim


def sequence_noise(z: Tensor, horizon: int, action_dim: int, beta: float = 0.0) -> Tensor:
    """``z [B, K, noise_size]`` standard normals -> unit-variance noise ``[B, K, H, a]``, white
    for ``beta = 0``, else colored along time with power spectral density ``~ 1/f^beta``."""
    B, K = z.shape[:2]
    if beta == 0:
        return z.reshape(B, K, horizon, action_dim)
    per_dim = z.reshape(B, K, action_dim, -1)
    return colored_noise(per_dim, beta, horizon).transpose(-1, -2)


def colored_noise(z: Tensor, beta: float, horizon: int) -> Tensor:
    """Gaussian noise with power spectral density ``~ 1/f^beta`` along the last axis, drawn in
    the frequency domain and brought back by one inverse FFT (Timmer & Koenig 1995, "On
    generating power law noise"; iCEM's action noise, Pinneri et al. 2020).

    ``z [..., 2 * (horizon // 2 + 1)]`` standard normals (real parts, then imaginary parts of
    the spectrum) -> ``[..., horizon]`` with zero mean and unit variance at every step.
    ``beta = 0`` is white noise; ``beta = 2`` (Brownian-like) puts most power on slow changes.
    """
    n_freq = horizon // 2 + 1
    freq = torch.fft.rfftfreq(horizon, dtype=z.dtype, device=z.device)
    freq[0] = 1.0 / horizon  # the mean (f = 0) gets the amplitude of the lowest frequency
    scale = freq.pow(-beta / 2)
    # Bins without an imaginary part (f = 0, and f = 1/2 for even H) get sqrt(2) on the real
    # part so that each carries the power of a complex bin.
    real_only = torch.zeros(n_freq, dtype=torch.bool, device=z.device)
    real_only[0] = True
    real_only[-1] = horizon % 2 == 0
    real = z[..., :n_freq] * torch.where(real_only, math.sqrt(2.0), 1.0) * scale
    imag = torch.where(real_only, 0.0, z[..., n_freq:] * scale)
    noise = torch.fft.irfft(torch.complex(real, imag), n=horizon, dim=-1)
    # var(noise_t) = (2 * sum_real scale^2 + 4 * sum_complex scale^2) / H^2, the same for all t
    power = (torch.where(real_only, 2.0, 4.0) * scale.square()).sum()
    return noise * (horizon / power.sqrt())


def truncated_normal(mean: Tensor, std: Tensor, low: Tensor, high: Tensor, z: Tensor) -> Tensor:
    """``N(mean, std^2)`` truncated to ``[low, high]`` by inverting its CDF, driven by standard
    normals ``z`` (any shapes that broadcast, e.g. mean/std ``[B, 1, H, a]``, z ``[B, K, H, a]``).

    ``z`` keeps its quantile: ``Phi(z)`` is mapped to the same quantile of the truncated law.
    Each sign of ``z`` works from its own tail with ``erfc`` (``torch.special.ndtr`` loses the
    lower tail in float32), so large ``|z|`` stay accurate when the mean lies within the bounds.
    """
    alpha, beta = (low - mean) / std, (high - mean) / std
    cdf_low, sf_high = _tail(-alpha), _tail(beta)  # the mass below low and above high
    scaled_tail = _tail(z.abs()) * (1 - cdf_low - sf_high)
    upper = z > 0
    x = torch.special.ndtri(scaled_tail + torch.where(upper, sf_high, cdf_low))
    return (mean + std * torch.where(upper, -x, x)).clamp(low, high)


def _tail(t: Tensor) -> Tensor:
    """``P(N(0, 1) > t) = erfc(t / sqrt(2)) / 2``, accurate far into the upper tail."""
    return 0.5 * torch.erfc(t * math.sqrt(0.5))


class TrajectoryOptimizer:
    """Base of the trajectory optimizers: action bounds ``[a]``, a horizon ``H``, a config and
    an optional ``torch.Generator`` (the global RNG if ``None``). Bounds set device and dtype."""

    config_class: ClassVar[type] = object

    def __init__(
        self,
        action_low: Tensor | np.ndarray | float,
        action_high: Tensor | np.ndarray | float,
        horizon: int,
        config: Any = None,
        generator: torch.Generator | None = None,
    ) -> None:
        name = type(self).__name__
        if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
            raise ConfigError(f"{name}: horizon={horizon!r} must be an integer >= 1")
        config = self.config_class() if config is None else config
        if not isinstance(config, self.config_class):
            expected, got = self.config_class.__name__, type(config).__name__
            raise ConfigError(f"{name}: config must be a {expected}, got {got}")
        self.action_low, self.action_high = _bounds(action_low, action_high)
        self.horizon = int(horizon)
        self.config = config
        self.generator = generator

    @property
    def action_dim(self) -> int:
        """The action dimension ``a``."""
        return self.action_low.shape[0]

    @property
    def middle(self) -> Tensor:
        """``[a]`` the middle of the bounds, the default mean."""
        return (self.action_low + self.action_high) / 2

    @property
    def half_range(self) -> Tensor:
        """``[a]`` half the width of the bounds: the unit of relative std settings."""
        return (self.action_high - self.action_low) / 2

    def optimize(
        self,
        score: Score,
        batch_size: int | None = None,
        init_mean: Tensor | None = None,
        init_std: Tensor | None = None,
    ) -> PlanResult:
        """Plan for ``B`` start states: ``batch_size`` (default: from ``init_mean [B, H, a]``,
        else 1). ``init_mean`` warm-starts the search (default: the middle of the bounds);
        ``init_std`` (absolute, broadcast to ``[B, H, a]``) replaces the config's spread."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget state kept between calls (iCEM's shifted elites); call at episode start."""

    def clip(self, actions: Tensor) -> Tensor:
        """``actions [..., a]`` clamped to the bounds."""
        return actions.clamp(self.action_low, self.action_high)

    def _start(
        self,
        batch_size: int | None,
        init_mean: Tensor | None,
        init_std: Tensor | None,
        default_std: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """The initial ``mean, std [B, H, a]``; the mean is clipped into the bounds."""
        rows = init_mean.shape[0] if init_mean is not None and init_mean.dim() == 3 else None
        if batch_size is None:
            batch_size = rows or 1
        if batch_size < 1 or (rows is not None and rows != batch_size):
            raise ValueError(f"batch_size={batch_size} does not match init_mean rows {rows}")
        shape = (batch_size, self.horizon, self.action_dim)
        mean = self.middle if init_mean is None else self._as(init_mean, shape, "init_mean")
        std = default_std if init_std is None else self._as(init_std, shape, "init_std")
        if init_std is not None and not bool((std > 0).all()):
            raise ValueError("init_std must be > 0 everywhere")
        return self.clip(mean.broadcast_to(shape)), std.broadcast_to(shape)

    def _as(self, value: Tensor | float, shape: tuple[int, ...], name: str) -> Tensor:
        value = torch.as_tensor(value, dtype=self.action_low.dtype, device=self.action_low.device)
        try:
            return value.broadcast_to(shape)
        except RuntimeError:
            raise ValueError(
                f"{name} of shape {tuple(value.shape)} does not broadcast to [B, H, a] = {shape}"
            ) from None

    def _normals(self, batch_size: int, per_row: int) -> Tensor:
        """``[B, n >= per_row]`` standard normals in one draw, row ``b`` a contiguous block."""
        padded = -(-max(per_row, 1) // _BLOCK) * _BLOCK
        low = self.action_low
        z = torch.randn(
            (batch_size, padded), generator=self.generator, dtype=low.dtype, device=low.device
        )
        return z[:, :per_row]

    def _evaluate(self, score: Score, candidates: Tensor) -> Tensor:
        """``score(candidates [B, K, H, a]) -> [B, K]``; NaN counts as the lowest return."""
        returns = score(candidates)
        if not isinstance(returns, Tensor) or returns.shape != candidates.shape[:2]:
            got = tuple(returns.shape) if isinstance(returns, Tensor) else type(returns).__name__
            raise ValueError(
                f"score must map action sequences [B, K, H, a] = {tuple(candidates.shape)} to "
                f"returns [B, K]; got {got}"
            )
        if not returns.is_floating_point():
            returns = returns.to(self.action_low.dtype)
        info = torch.finfo(returns.dtype)
        return torch.nan_to_num(returns, nan=info.min, posinf=info.max, neginf=info.min)


def _bounds(low: Any, high: Any) -> tuple[Tensor, Tensor]:
    """Bounds as two 1-D tensors of the action dimension (float32 unless given as a float
    tensor); they must be finite with ``low < high``."""
    like = low if isinstance(low, Tensor) and low.is_floating_point() else None
    dtype = like.dtype if like is not None else torch.get_default_dtype()
    device = like.device if like is not None else None
    low_t = torch.as_tensor(low, dtype=dtype, device=device).reshape(-1)
    high_t = torch.as_tensor(high, dtype=dtype, device=low_t.device).reshape(-1)
    ok = low_t.shape == high_t.shape and low_t.numel() > 0
    ok = ok and bool(torch.isfinite(low_t).all() and torch.isfinite(high_t).all())
    if not ok or not bool((low_t < high_t).all()):
        raise UnsupportedSpaceError(
            "trajectory optimizers need finite action bounds with low < high in every "
            f"dimension; got low={low_t.tolist()}, high={high_t.tolist()}"
        )
    return low_t, high_t


@dataclasses.dataclass(frozen=True)
class RandomShootingConfig(Config):
    """Random shooting: ``population`` uniform sequences per start state."""

    kind: Literal["random"] = "random"  # the optimizer
    population: int = 1000  # uniform action sequences scored per plan

    def validate(self) -> None:
        """A positive population."""
        self.require(self.population >= 1, "population", "must be >= 1")


class RandomShooting(TrajectoryOptimizer):
    """Score ``population`` action sequences drawn uniformly within the bounds and keep the
    best. A given ``init_mean`` (e.g. the shifted previous plan) joins as one more candidate, so
    the plan never gets worse than the warm start under a deterministic score."""

    config_class = RandomShootingConfig
    config: RandomShootingConfig

    @torch.inference_mode()
    def optimize(
        self,
        score: Score,
        batch_size: int | None = None,
        init_mean: Tensor | None = None,
        init_std: Tensor | None = None,
    ) -> PlanResult:
        """``population`` uniform sequences (plus ``init_mean`` if given) scored once, the best
        kept; see :meth:`TrajectoryOptimizer.optimize` for the arguments."""
        mean, _ = self._start(batch_size, init_mean, init_std, self.half_range)
        B, H, a = mean.shape
        K = self.config.population
        u = torch.special.ndtr(self._normals(B, K * H * a)).reshape(B, K, H, a)
        candidates = self.clip(self.action_low + u * (self.action_high - self.action_low))
        if init_mean is not None:
            candidates = torch.cat([candidates, mean.unsqueeze(1)], dim=1)
        value, best = self._evaluate(score, candidates).max(dim=1)
        plan = candidates[torch.arange(B, device=best.device), best]
        return PlanResult(plan, value, plan, iterations=1, evaluations=candidates.shape[1])
