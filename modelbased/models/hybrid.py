"""Analytic and hybrid world models: physics alone, or physics plus a learned residual.

A *hybrid* model corrects imperfect analytic physics ``f_0`` (equations of motion with wrong
masses or lengths) with a probabilistic ensemble that learns what the physics gets wrong::

    s' = f_0(s, a) + delta_theta(s, a),     delta_theta = the ensemble's next-state change

the residual ("grey-box") scheme of e.g. Johannink et al. 2019, "Residual reinforcement
learning for robot control", and Zeng et al. 2020, "TossingBot" (residual physics), here with
PETS's ensemble (Chua et al. 2018) as the residual learner. The ensemble is trained on the
pseudo-transitions ``(s, a) -> s + (s' - f_0(s, a))``, so its usual delta target *is* the
residual; with a zero residual the hybrid is exactly the analytic model. The reward (if not
known) is learned by the ensemble as usual.

This module owns :class:`HybridConfig` (``model.kind: hybrid``), :class:`AnalyticConfig`
(``model.kind: analytic``: the physics alone, nothing learned), :class:`HybridModel`,
:class:`AnalyticModel` and :func:`make_world_model`, which builds any ``model`` section
(``ensemble``, ``hybrid``, ``analytic``) for an env. Both models have the ensemble's face
(``ensemble_size``, ``elites``, ``predict``, ``sample``, ``fit``, checkpoints), so
:class:`~modelbased.models.ModelEnv`, PETS, MPC and iLQR use them as any learned model.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from modelbased.core.config import Config
from modelbased.core.errors import CheckpointError, ConfigError
from modelbased.envs.known_dynamics import ANALYTIC_ENVS, Physics, analytic_dynamics
from modelbased.models.ensemble import EnsembleConfig, EnsembleModel, FitReport, Prediction

_HYBRID = "modelbased.HybridModel/1"
_ANALYTIC = "modelbased.AnalyticModel/1"


@dataclasses.dataclass(frozen=True)
class HybridConfig(EnsembleConfig):
    """An analytic model plus an ensemble (these keys) learning its residual."""

    kind: Literal["hybrid"] = "hybrid"  # type: ignore[assignment]
    mass_scale: float = 1.0  # the physics' masses relative to the env's (1.3: 30% heavier)
    length_scale: float = 1.0  # the physics' lengths relative to the env's

    def validate(self) -> None:
        """The ensemble's checks and positive scales."""
        super().validate()
        self.require(self.mass_scale > 0, "mass_scale", "must be > 0")
        self.require(self.length_scale > 0, "length_scale", "must be > 0")


@dataclasses.dataclass(frozen=True)
class AnalyticConfig(Config):
    """The analytic model alone (nothing is learned; the reward must be known)."""

    kind: Literal["analytic"] = "analytic"  # the world model
    mass_scale: float = 1.0  # the physics' masses relative to the env's (1.3: 30% heavier)
    length_scale: float = 1.0  # the physics' lengths relative to the env's

    def validate(self) -> None:
        """Positive scales."""
        self.require(self.mass_scale > 0, "mass_scale", "must be > 0")
        self.require(self.length_scale > 0, "length_scale", "must be > 0")


WorldModelConfig = EnsembleConfig | HybridConfig | AnalyticConfig


def _transitions(data: Any) -> dict[str, np.ndarray]:
    """The rows of a ReplayBuffer, a Batch or a mapping of arrays as numpy arrays."""
    if not hasattr(data, "obs") and not isinstance(data, Mapping) and hasattr(data, "all"):
        data = data.all()
    get = data.get if isinstance(data, Mapping) else lambda k: getattr(data, k, None)
    out = {}
    for key in ("obs", "action", "reward", "next_obs", "terminated"):
        value = get(key)
        if value is not None:
            out[key] = value.cpu().numpy() if torch.is_tensor(value) else np.asarray(value)
    return out


def _physics_step(physics: Physics, obs: np.ndarray, action: np.ndarray) -> np.ndarray:
    """``f_0`` on numpy rows, in float64."""
    with torch.no_grad():
        x = torch.as_tensor(obs, dtype=torch.float64)
        u = torch.as_tensor(action, dtype=torch.float64).reshape(len(x), -1)
        return physics.step(x, u).numpy()


class HybridModel(nn.Module):
    """``f_0(s, a)`` plus an :class:`EnsembleModel` residual; see the module docstring.

    ``predict``/``sample`` take what the ensemble takes (``[E, B, o]`` or ``[B, o]`` inputs) and
    return per-member next states ``f_0 + delta_e`` with the ensemble's variances, rewards and
    termination logits.
    """

    def __init__(
        self,
        physics: Physics,
        obs_dim: int,
        action_dim: int,
        config: EnsembleConfig,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.physics, self.config = physics, config
        keys = [k for k in EnsembleConfig.keys() if k != "kind"]  # noqa: SIM118 (a classmethod)
        residual = EnsembleConfig.from_dict({k: getattr(config, k) for k in keys})
        self.residual = EnsembleModel(obs_dim, action_dim, residual, seed=seed)
        self.ensemble_size = config.ensemble_size

    @property
    def elites(self) -> Tensor:
        """The residual ensemble's elites."""
        return self.residual.elites

    @property
    def device(self) -> torch.device:
        """The residual's device."""
        return self.residual.device

    def _base(self, obs: Tensor, action: Tensor) -> Tensor:
        obs = torch.as_tensor(obs, dtype=self.residual.dtype, device=self.device)
        action = self.residual.action_features(torch.as_tensor(action, device=self.device))
        return self.physics.step(obs, action)

    def predict(self, obs: Tensor, action: Tensor) -> Prediction:
        """Per-member means and variances of ``f_0 + delta`` (see :class:`Prediction`)."""
        p = self.residual.predict(obs, action)
        obs_t = torch.as_tensor(obs, dtype=self.residual.dtype, device=self.device)
        next_obs = self._base(obs, action) + (p.next_obs_mean - obs_t)
        return dataclasses.replace(p, next_obs_mean=next_obs)

    def sample(
        self,
        obs: Tensor,
        action: Tensor,
        generator: torch.Generator | None = None,
        deterministic: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One transition per member, the residual sampled as the ensemble samples."""
        next_obs, reward, terminated = self.residual.sample(obs, action, generator, deterministic)
        obs_t = torch.as_tensor(obs, dtype=self.residual.dtype, device=self.device)
        return self._base(obs, action) + (next_obs - obs_t), reward, terminated

    def fit(self, data: Any, rng: np.random.Generator | None = None, **kwargs: Any) -> FitReport:
        """Fit the residual on ``(s, a) -> s + (s' - f_0(s, a))``; arguments and report as
        :meth:`EnsembleModel.fit`."""
        rows = _transitions(data)
        base = _physics_step(self.physics, rows["obs"], rows["action"])
        rows["next_obs"] = (rows["obs"] + (rows["next_obs"] - base)).astype(np.float32)
        return self.residual.fit(rows, rng=rng, **kwargs)

    def to_checkpoint(self) -> dict[str, Any]:
        """The residual's checkpoint under this model's format."""
        return {"format": _HYBRID, "residual": self.residual.to_checkpoint()}

    def load_checkpoint(self, data: Any) -> None:
        """Load what :meth:`to_checkpoint` wrote (the physics comes from the config)."""
        if not isinstance(data, dict) or data.get("format") != _HYBRID:
            raise CheckpointError(f"not a HybridModel checkpoint (expected format {_HYBRID})")
        self.residual.load_checkpoint(data["residual"])


class AnalyticModel(nn.Module):
    """The physics alone behind the ensemble's face: one member, zero variance, no reward
    (the known reward scores it), nothing to fit."""

    ensemble_size = 1

    def __init__(self, physics: Physics) -> None:
        super().__init__()
        self.physics = physics
        self.register_buffer("elites", torch.zeros(1, dtype=torch.long))
        self.config = AnalyticConfig()

    def predict(self, obs: Tensor, action: Tensor) -> Prediction:
        """``f_0`` as a one-member prediction ``[1, B, o]`` with zero variance and reward."""
        next_obs = self.physics.step(obs, action)
        if obs.dim() == 2:
            next_obs = next_obs.unsqueeze(0)
        zeros = next_obs.new_zeros(next_obs.shape[:-1])
        return Prediction(next_obs, torch.zeros_like(next_obs), zeros, zeros, None)

    def sample(
        self,
        obs: Tensor,
        action: Tensor,
        generator: torch.Generator | None = None,
        deterministic: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``f_0`` for ``[E, B, ·]`` inputs; reward 0 (known reward used), never terminated."""
        next_obs = self.physics.step(obs, action)
        reward = next_obs.new_zeros(next_obs.shape[:-1])
        return next_obs, reward, torch.zeros_like(reward, dtype=torch.bool)

    def fit(self, data: Any, rng: np.random.Generator | None = None, **kwargs: Any) -> FitReport:
        """Nothing to learn: the report's ``holdout_mse`` is the physics' one-step error on
        all of ``data`` (mean over dims), for comparison with learned models."""
        start = time.perf_counter()
        rows = _transitions(data)
        error = _physics_step(self.physics, rows["obs"], rows["action"]) - rows["next_obs"]
        mse = float(np.mean(np.square(error)))
        return FitReport(0, [], [], [mse], [0], False, time.perf_counter() - start)

    def to_checkpoint(self) -> dict[str, Any]:
        """Nothing is learned: just the format."""
        return {"format": _ANALYTIC}

    def load_checkpoint(self, data: Any) -> None:
        """Check the format (the physics comes from the config)."""
        if not isinstance(data, dict) or data.get("format") != _ANALYTIC:
            raise CheckpointError(f"not an AnalyticModel checkpoint (expected {_ANALYTIC})")


WorldModel = EnsembleModel | HybridModel | AnalyticModel


def make_world_model(
    config: WorldModelConfig,
    env_id: str,
    obs_dim: int,
    action_dim: int,
    seed: int | None,
    learn_reward: bool,
    learn_termination: bool,
    owner: str = "model",
) -> WorldModel:
    """The world model a ``model`` section describes, for ``env_id``.

    ``learn_reward``/``learn_termination`` say whether the env's functions are unknown (the
    ensemble, or the hybrid's residual, then learns them). Raises :class:`ConfigError` when an
    analytic or hybrid model is asked for an env without analytic physics, or an analytic
    model for an env whose reward or termination is unknown.
    """
    if isinstance(config, EnsembleConfig) and not isinstance(config, HybridConfig):
        cfg = config.replace(learn_reward=learn_reward, learn_termination=learn_termination)
        return EnsembleModel(obs_dim, action_dim, cfg, seed=seed)
    physics = analytic_dynamics(env_id, config.mass_scale, config.length_scale)
    if physics is None:
        raise ConfigError(
            f"{owner}: model.kind={config.kind!r} needs analytic physics; {env_id} has none "
            f"(known: {', '.join(ANALYTIC_ENVS)}); use model.kind=ensemble"
        )
    if isinstance(config, HybridConfig):
        cfg = config.replace(learn_reward=learn_reward, learn_termination=learn_termination)
        return HybridModel(physics, obs_dim, action_dim, cfg, seed=seed)
    if learn_reward or learn_termination:
        raise ConfigError(
            f"{owner}: model.kind='analytic' needs the env's known reward and termination "
            "(known_reward=true and planning_reward=false, or a hybrid model)"
        )
    return AnalyticModel(physics)
