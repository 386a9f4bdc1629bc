"""Diagnostics that make a learned model's error visible (issue: world models).

* :func:`collect` — real transitions of a policy, with episode ids so that open-loop segments
  never cross an episode boundary.
* :func:`holdout_episodes` — which transitions to hold out: every fifth episode.
* :func:`one_step_report` — held-out one-step error in normalized units (NMSE: the MSE divided
  by the variance of the target, averaged over dimensions) and in original units (MSE), the
  Gaussian negative log-likelihood, and calibration of the predictive distribution (mixture of
  the members' Gaussians, moment-matched): coverage of the 1- and 2-sigma intervals and the
  expected calibration error over quantile levels (Kuleshov et al. 2018, "Accurate
  uncertainties for deep learning using calibrated regression").
* :func:`kstep_nmse` — the compounding-error curve: NMSE of open-loop predictions k = 1..H
  steps ahead from real states under the real action sequence, for each propagation mode of
  :class:`~modelbased.models.ModelEnv` (Talvitie 2014; Janner et al. 2019, figure 2).

Tensors follow the model: data go to ``model.device`` (where the model has one) and results
come back as Python floats.  Shapes: ``S`` segments, ``H`` horizon, ``o``/``a`` obs/action dims.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from modelbased.core.env_utils import make_env
from modelbased.core.seeding import derive_seed
from modelbased.data.replay import Batch, ReplayBuffer
from modelbased.models.model_env import PROPAGATIONS, ModelEnv

Policy = Callable[[np.ndarray], Any]
QUANTILES = np.linspace(0.05, 0.95, 19)


@dataclasses.dataclass
class Rollouts:
    """Real transitions in time order with the id of the episode each belongs to."""

    buffer: ReplayBuffer
    episode: np.ndarray  # [N] int


def collect(
    env: str | gym.Env, steps: int, policy: Policy | None = None, seed: int = 0
) -> Rollouts:
    """``steps`` real transitions of ``policy`` (uniform random actions if ``None``)."""
    env = make_env(env)
    buffer = ReplayBuffer.for_env(env, steps)
    episode = np.zeros(steps, dtype=np.int64)
    env.action_space.seed(derive_seed(seed, "diagnose-actions"))
    obs, _ = env.reset(seed=derive_seed(seed, "diagnose", 0))
    ep = 0
    for t in range(steps):
        action = env.action_space.sample() if policy is None else policy(obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, reward, next_obs, terminated, truncated)
        episode[t] = ep
        obs = next_obs
        if terminated or truncated:
            ep += 1
            obs, _ = env.reset(seed=derive_seed(seed, "diagnose", ep))
    return Rollouts(buffer, episode)


def holdout_episodes(episode: np.ndarray) -> np.ndarray:
    """Which transitions to hold out ``[N]`` bool, given each one's episode id ``[N]``: every
    fifth episode (ids 4, 9, ...); with fewer than five episodes, the last fifth of the rows."""
    holdout = episode % 5 == 4
    if not holdout.any():  # a single long episode: hold out its last fifth
        holdout = np.arange(len(holdout)) >= int(0.8 * len(holdout))
    return holdout


# the 2-sigma interval of a calibrated Gaussian holds 95.4% of the targets; a model whose
# held-out 2-sigma coverage falls in this band is called calibrated
CALIBRATED_2SIGMA = (0.90, 0.99)


def calibration_verdict(coverage_2sigma: float) -> str:
    """``calibrated`` if the held-out 2-sigma coverage lies in :data:`CALIBRATED_2SIGMA`,
    ``overconfident`` below it (intervals too narrow), ``underconfident`` above it."""
    low, high = CALIBRATED_2SIGMA
    if coverage_2sigma < low:
        return "overconfident"
    return "underconfident" if coverage_2sigma > high else "calibrated"


def predictive(model: Any, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
    """Moment-matched predictive mean and variance of ``next_obs`` over the elite members:
    ``var = mean of members' variances (aleatoric) + variance of their means (epistemic)``."""
    pred = model.predict(obs, action)
    elites = model.elites
    means, variances = pred.next_obs_mean[elites], pred.next_obs_var[elites]
    mean = means.mean(0)
    return mean, variances.mean(0) + means.var(0, unbiased=False)


def one_step_report(model: Any, batch: Batch) -> dict[str, float]:
    """One-step error and calibration of the next observation on held-out ``batch``.

    The predictive distribution is the moment-matched Gaussian of :func:`predictive` (variances
    floored at 1e-12), per observation dimension.

    Args:
        model: an ensemble with ``predict`` and ``elites`` (an ``EnsembleModel``).
        batch: held-out transitions; moved to the model's device.

    Returns:
        ``one_step_nmse`` (MSE divided by the target's variance, mean over dims), ``mse`` (mean
        squared error of the predictive mean in original units, mean over rows and dims),
        ``nll`` (Gaussian negative log-likelihood in nats with its constant, mean over rows and
        dims, in original units), ``coverage_1sigma`` and ``coverage_2sigma`` (share of targets
        within 1 and 2 predictive standard deviations of the mean) and ``ece`` (mean absolute
        gap between observed and nominal frequencies at the quantile levels ``QUANTILES``).
    """
    data = batch.to_torch(_device(model))
    with torch.inference_mode():
        mean, var = predictive(model, data["obs"], data["action"])
        target = data["next_obs"].to(mean.dtype)
        var = var.clamp_min(1e-12)
        sq_err = (target - mean) ** 2  # [B, o]
        z = (target - mean) / var.sqrt()
        nmse = sq_err.mean(0) / target.var(0).clamp_min(1e-12)
        nll = 0.5 * ((2 * math.pi * var).log() + sq_err / var)
        normal_cdf = 0.5 * (1.0 + torch.erf((z / math.sqrt(2.0)).double()))
        levels = torch.as_tensor(QUANTILES, device=z.device)  # [Q] float64
        observed = (normal_cdf <= levels.view(-1, 1, 1)).double().mean(dim=(1, 2))  # [Q]
        return {
            "one_step_nmse": float(nmse.mean()),
            "mse": float(sq_err.mean()),
            "nll": float(nll.mean()),
            "coverage_1sigma": float((z.abs() <= 1.0).double().mean()),
            "coverage_2sigma": float((z.abs() <= 2.0).double().mean()),
            "ece": float((observed - levels).abs().mean()),
        }


def _device(model: Any) -> torch.device:
    """The model's device (``EnsembleModel.device``), else the CPU."""
    return torch.device(getattr(model, "device", "cpu"))


def segments(
    rollouts: Rollouts,
    horizon: int,
    count: int,
    rng: np.random.Generator,
    rows: np.ndarray | None = None,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor]:
    """Up to ``count`` open-loop segments within one episode, starting at ``rows`` (default all):
    ``obs [S, H+1, o]`` (real states) and ``actions [S, H, a]``, float32 on ``device``."""
    ep = rollouts.episode
    n = len(ep)
    starts = np.arange(n - horizon + 1) if rows is None else rows[rows <= n - horizon]
    same_episode = ep[starts] == ep[starts + horizon - 1]
    all_data = rollouts.buffer.all()
    stops = np.concatenate([[0], np.cumsum(all_data.terminated)])
    no_stop = stops[starts + horizon - 1] == stops[starts]  # none before the last step
    valid = starts[same_episode & no_stop]
    if len(valid) == 0:
        raise ValueError(f"no {horizon}-step segment within one episode: collect more steps")
    chosen = rng.choice(valid, size=min(count, len(valid)), replace=False)
    offsets = np.arange(horizon)
    idx = chosen[:, None] + offsets[None, :]  # [S, H]
    obs = np.concatenate([all_data.obs[idx], all_data.next_obs[idx[:, -1:]]], axis=1)
    actions = all_data.action[idx]
    return (
        torch.as_tensor(obs, dtype=torch.float32, device=device),
        torch.as_tensor(actions, dtype=torch.float32, device=device),
    )


def kstep_nmse(
    model: Any,
    obs: Tensor,
    actions: Tensor,
    propagation: str,
    num_particles: int = 20,
    seed: int = 0,
) -> list[float]:
    """NMSE (normalized by the variance of the real states) of the particle-mean open-loop
    prediction k = 1..H steps ahead; ``obs [S, H+1, o]``, ``actions [S, H, a]`` (moved to the
    model's device, where the particles' noise is drawn)."""
    device = _device(model)
    obs, actions = obs.to(device), actions.to(device)
    generator = torch.Generator(device).manual_seed(seed)
    env = ModelEnv(model, propagation=propagation, generator=generator)  # type: ignore[arg-type]
    particles = 1 if propagation == "expectation" else num_particles
    out = env.rollout_actions(obs[:, 0], actions, particles)
    pred = out["obs"].mean(2)  # [H+1, S, o]
    real = obs.transpose(0, 1)  # [H+1, S, o]
    scale = obs.reshape(-1, obs.shape[-1]).var(0).clamp_min(1e-12)
    err = ((pred - real) ** 2 / scale).mean(-1).mean(-1)  # [H+1]
    return [float(e) for e in err[1:]]


def kstep_table(
    model: Any, obs: Tensor, actions: Tensor, num_particles: int = 20, seed: int = 0
) -> dict[str, list[float]]:
    """:func:`kstep_nmse` for every propagation mode."""
    return {
        mode: kstep_nmse(model, obs, actions, mode, num_particles, seed) for mode in PROPAGATIONS
    }
