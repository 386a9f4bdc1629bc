"""Probabilistic ensembles of dynamics models: PETS (Chua et al. 2018, "Deep Reinforcement
Learning in a Handful of Trials using Probabilistic Dynamics Models") and MBPO (Janner et al.
2019, "When to Trust Your Model").

This module owns the learned one-step world model of both papers:

* :class:`EnsembleConfig` — its hyperparameters (PETS/MBPO defaults: 7 members, 5 elites,
  4 x 200 SiLU, per-layer weight decay, soft log-variance bounds);
* :class:`EnsembleModel` — ``E`` MLPs evaluated as one batched network (a leading ensemble
  dimension, :mod:`modelbased.models.layers`) that map normalized ``(s, a)`` to a Gaussian over
  the next-state delta (or absolute value for chosen dims) and the reward, plus an optional
  termination logit; its predictive API (means and variances in original units, samples,
  aleatoric/epistemic uncertainty), its checkpoints, and the public training surface that
  :mod:`modelbased.models.ensemble_training` fits it through (bootstrap resamples, holdout
  early stopping, per-member best-weight restore, elites, recalibration).

Tensors follow the model: inputs are moved to its device and float dtype (``.to(device)``,
``.double()``), and every tensor it makes is made there.

Shapes: ``E`` members, ``B`` rows, ``o`` obs dims, ``a`` action dims (one-hot for integer
actions).  Targets ``T`` are ``o`` next-obs columns, then the reward if learned (``G`` Gaussian
columns), then the termination logit if learned.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modelbased.core.checkpoint import atomic_save, load_tensors
from modelbased.core.config import Config
from modelbased.core.errors import CheckpointError, ConfigError, DataError
from modelbased.models.ensemble_training import Callback, FitReport, fit_ensemble, make_optimizer
from modelbased.models.layers import ACTIVATIONS, ensemble_mlp
from modelbased.models.normalizer import Normalizer

__all__ = ["EnsembleConfig", "EnsembleModel", "FitReport", "Prediction"]

_FORMAT = "modelbased.EnsembleModel/1"
# PETS's per-layer weight decay for its 4 x 200 networks (mbrl-lib's pets configs)
PETS_WEIGHT_DECAY = (2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4)


@dataclasses.dataclass(frozen=True)
class EnsembleConfig(Config):
    """Hyperparameters of :class:`EnsembleModel`; invalid values raise :class:`ConfigError`."""

    kind: Literal["ensemble"] = "ensemble"  # the world model (ensemble, hybrid, analytic)
    ensemble_size: int = 7  # members E
    elites: int = 5  # members with the lowest holdout error, used for prediction
    hidden: int = 200  # units per hidden layer
    layers: int = 4  # hidden layers
    activation: str = "silu"  # hidden activation (see models.layers.ACTIVATIONS)
    probabilistic: bool = True  # Gaussian heads with learned variance (false: MSE, mean only)
    learn_reward: bool = True  # predict the reward (false: a known reward function is used)
    learn_termination: bool = False  # predict a termination logit
    absolute_dims: tuple[int, ...] = ()  # obs dims predicted as absolute values, others as deltas
    # L2 per linear layer (layers + 1 values) or one for all; empty: PETS's
    # 2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4 with 4 hidden layers, else 5e-5
    weight_decay: tuple[float, ...] = ()
    lr: float = 1e-3  # Adam step size
    batch_size: int = 256  # rows per minibatch per member
    holdout_fraction: float = 0.2  # share of the data kept out for early stopping and elites
    patience: int = 5  # epochs without holdout improvement before stopping
    max_epochs: int = 200  # at most, per fit (early stopping usually ends sooner)
    # an epoch is at least this many minibatch updates (several passes over a small dataset),
    # so that early stopping's patience is not counted in single updates on tiny data
    min_epoch_updates: int = 20
    min_logvar: float = -10.0  # soft lower bound of the predicted log-variance
    max_logvar: float = 0.5  # soft upper bound of the predicted log-variance
    logvar_reg: float = 0.01  # weight of the bounds' penalty in the loss
    bootstrap: bool = True  # each member trains on its own resample of the data
    calibrate: bool = True  # rescale aleatoric variances on the holdout (Malik et al. 2019)
    # a refit after the first: "warm" trains on from the current model (normalizers refitted
    # with the function kept), "fresh" trains new random weights, "both" does the one then the
    # other; the previous model and every epoch compete per member on the holdout
    refit: Literal["warm", "fresh", "both"] = "both"

    def validate(self) -> None:
        """Sizes >= 1, ``elites <= ensemble_size``, a known activation, well-formed dims and
        weight decay, positive ``lr``, a holdout fraction in [0, 1), ordered log-variance bounds."""
        for key in ("ensemble_size", "hidden", "layers", "batch_size", "patience", "max_epochs"):
            self.require(getattr(self, key) >= 1, key, "must be >= 1")
        self.require(self.min_epoch_updates >= 0, "min_epoch_updates", "must be >= 0")
        self.require(
            1 <= self.elites <= self.ensemble_size,
            "elites",
            f"must be between 1 and ensemble_size={self.ensemble_size}",
        )
        self.require(
            self.activation in ACTIVATIONS,
            "activation",
            f"must be one of {', '.join(sorted(ACTIVATIONS))}",
        )
        dims = self.absolute_dims
        self.require(all(d >= 0 for d in dims), "absolute_dims", "must be ints >= 0")
        self.require(len(set(dims)) == len(dims), "absolute_dims", "has repeated dims")
        wd = self.weight_decay
        self.require(all(w >= 0 for w in wd), "weight_decay", "must be numbers >= 0")
        self.require(
            len(wd) in (0, 1, self.layers + 1),
            "weight_decay",
            f"needs one value per layer ({self.layers + 1} for layers={self.layers}: "
            "the hidden layers and the output layer), a single value, or none",
        )
        self.require(self.lr > 0, "lr", "must be > 0")
        self.require(0 <= self.holdout_fraction < 1, "holdout_fraction", "must be in [0, 1)")
        self.require(
            self.min_logvar < self.max_logvar,
            "min_logvar",
            f"must be < max_logvar={self.max_logvar}",
        )
        self.require(self.logvar_reg >= 0, "logvar_reg", "must be >= 0")

    @property
    def layer_weight_decay(self) -> tuple[float, ...]:
        """The weight decay of each of the ``layers + 1`` linear layers."""
        wd = self.weight_decay
        if not wd:
            wd = PETS_WEIGHT_DECAY if self.layers == 4 else (5e-5,)
        return wd * (self.layers + 1) if len(wd) == 1 else wd


@dataclasses.dataclass
class Prediction:
    """The ensemble's predictive distribution per member, in original units."""

    next_obs_mean: Tensor  # [E, B, o]
    next_obs_var: Tensor  # [E, B, o]  (zeros for deterministic models)
    reward_mean: Tensor  # [E, B]  (zeros if the reward is not learned)
    reward_var: Tensor  # [E, B]
    termination_logit: Tensor | None  # [E, B], None if termination is not learned


class EnsembleModel(nn.Module):
    """``E`` probabilistic (or deterministic) MLP dynamics models trained and run as one.

    Each member maps normalized ``[obs, action]`` to the mean and bounded log-variance of a
    diagonal Gaussian over the normalized targets ``[next_obs - obs (or next_obs for
    absolute_dims), reward]``, and optionally a termination logit.
    """

    elites: Tensor
    absolute_mask: Tensor

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        config: EnsembleConfig | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        config = EnsembleConfig() if config is None else config
        if any(d >= obs_dim for d in config.absolute_dims):
            raise ConfigError(
                f"EnsembleConfig: absolute_dims={config.absolute_dims!r} must be < obs_dim="
                f"{obs_dim}"
            )
        self.config, self.obs_dim, self.action_dim, self.seed = config, obs_dim, action_dim, seed
        self.ensemble_size = config.ensemble_size
        self.num_gaussian = obs_dim + int(config.learn_reward)
        in_dim = obs_dim + action_dim
        out_dim = self.num_gaussian * (2 if config.probabilistic else 1)
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self.net = ensemble_mlp(
                in_dim,
                out_dim + int(config.learn_termination),
                config.hidden,
                config.layers,
                config.ensemble_size,
                config.activation,
                init="truncated_normal",
            )
        if config.probabilistic:
            self.max_logvar = nn.Parameter(torch.full((self.num_gaussian,), config.max_logvar))
            self.min_logvar = nn.Parameter(torch.full((self.num_gaussian,), config.min_logvar))
        else:
            self.register_parameter("max_logvar", None)
            self.register_parameter("min_logvar", None)
        self.input_normalizer = Normalizer(in_dim)
        self.target_normalizer = Normalizer(self.num_gaussian)
        mask = torch.zeros(obs_dim, dtype=torch.bool)
        mask[list(config.absolute_dims)] = True
        self.register_buffer("absolute_mask", mask, persistent=False)
        self.register_buffer("elites", torch.arange(config.elites))
        # log of the per-target scale of the aleatoric variance, fitted by recalibration
        self.register_buffer("log_var_scale", torch.zeros(self.num_gaussian))
        # the data split, bootstrap and shuffling of fit() calls given no rng
        self.rng = np.random.default_rng(seed)
        # Adam with its moments, carried from one fit to the next; None until the first fit
        self.optimizer: torch.optim.Optimizer | None = None

    def _apply(self, fn, recurse=True):  # .to(), .double(), ...: Adam moments would not follow
        self.optimizer = None
        return super()._apply(fn, recurse)

    @property
    def device(self) -> torch.device:
        """The device of the weights; inputs are moved there."""
        return self.log_var_scale.device

    @property
    def dtype(self) -> torch.dtype:
        """The float dtype of the weights; inputs are cast to it."""
        return self.log_var_scale.dtype

    # ----------------------------------------------------------------------------- network
    def _encode(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """``obs [.., B, o]``, ``action [.., B, a]`` (or integer ``[.., B]``) -> (obs as
        float tensor, normalized input ``[.., B, o + a]``), broadcasting the member dim."""
        obs = torch.as_tensor(obs, dtype=self.dtype, device=self.device)
        action = self.action_features(torch.as_tensor(action, device=self.device), obs.dim())
        if obs.shape[-1] != self.obs_dim or action.shape[-1] != self.action_dim:
            raise DataError(
                f"expected obs [..., {self.obs_dim}] and action [..., {self.action_dim}], got "
                f"{list(obs.shape)} and {list(action.shape)}"
            )
        if obs.shape[:-1] != action.shape[:-1]:
            lead = torch.broadcast_shapes(obs.shape[:-1], action.shape[:-1])
            obs = obs.expand(*lead, self.obs_dim)
            action = action.expand(*lead, self.action_dim)
        return obs, self.input_normalizer.normalize(torch.cat([obs, action], dim=-1))

    def action_features(self, action: Tensor, obs_rank: int = 2) -> Tensor:
        """Actions as network input ``[.., B, a]`` in the model's dtype: integer actions ``[..,
        B]`` (or ``[.., B, 1]`` when ``obs`` has rank ``obs_rank``) one-hot, a 1-dim action
        ``[.., B]`` unsqueezed.  Raises :class:`DataError` for out-of-range integers."""
        if not action.is_floating_point():
            if action.dim() == obs_rank:  # integer actions stored as [.., B, 1]
                action = action.squeeze(-1)
            if action.numel() and (action.min() < 0 or action.max() >= self.action_dim):
                raise DataError(f"integer actions must lie in [0, {self.action_dim})")
            return F.one_hot(action.long(), self.action_dim).to(self.dtype)
        if self.action_dim == 1 and (action.dim() == 1 or action.shape[-1] != 1):
            action = action.unsqueeze(-1)  # [.., B] -> [.., B, 1]
        return action.to(self.dtype)

    def heads(self, x: Tensor) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Normalized input ``[E, B, in]`` or ``[B, in]`` -> mean ``[E, B, G]``, bounded
        log-variance ``[E, B, G]`` (None if deterministic), termination logit ``[E, B]``."""
        out = self.net(x)
        g = self.num_gaussian
        mean, logvar, logit = out[..., :g], None, None
        if self.config.probabilistic:
            logvar = self.max_logvar - F.softplus(self.max_logvar - out[..., g : 2 * g])
            logvar = self.min_logvar + F.softplus(logvar - self.min_logvar)
        if self.config.learn_termination:
            logit = out[..., -1]
        return mean, logvar, logit

    def forward(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """``obs [E, B, o]`` or ``[B, o]`` (the same rows for every member), action likewise
        -> ``(mean, logvar)``, each ``[E, B, T]`` in normalized target space.

        The termination column (last, if learned) of ``mean`` is the Bernoulli logit and its
        ``logvar`` is 0; a deterministic model returns ``logvar`` zeros (it has no variance
        head; :meth:`predict` reports variance 0).
        """
        _, x = self._encode(obs, action)
        mean, logvar, logit = self.heads(x)
        if logvar is None:
            logvar = torch.zeros_like(mean)
        if logit is not None:
            mean = torch.cat([mean, logit.unsqueeze(-1)], dim=-1)
            logvar = torch.cat([logvar, torch.zeros_like(logit).unsqueeze(-1)], dim=-1)
        return mean, logvar

    def _next_obs(self, obs: Tensor, target: Tensor) -> Tensor:
        """Obs-part of a target in original units ``[E, B, o]`` -> next observation (the
        inverse of :meth:`training_targets`)."""
        if not self.config.absolute_dims:
            return obs + target
        return torch.where(self.absolute_mask, target, obs + target)

    # ----------------------------------------------------------------------------- predict
    def predict(self, obs: Tensor, action: Tensor) -> Prediction:
        """Per-member predictive means and variances in original units (see :class:`Prediction`);
        inputs as in :meth:`forward`."""
        obs, x = self._encode(obs, action)
        mean_n, logvar, logit = self.heads(x)
        norm = self.target_normalizer
        mean = norm.denormalize(mean_n)
        if logvar is None:
            var = torch.zeros_like(mean)
        else:
            var = norm.denormalize_var((logvar + self.log_var_scale).exp())
        o = self.obs_dim
        if self.config.learn_reward:
            reward_mean, reward_var = mean[..., o], var[..., o]
        else:
            reward_mean = reward_var = mean.new_zeros(mean.shape[:-1])
        return Prediction(
            self._next_obs(obs, mean[..., :o]), var[..., :o], reward_mean, reward_var, logit
        )

    def sample(
        self,
        obs: Tensor,
        action: Tensor,
        generator: torch.Generator | None = None,
        deterministic: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One transition per member: ``next_obs [E, B, o]``, ``reward [E, B]`` (0 if not
        learned), ``terminated [E, B]`` bool (``logit > 0`` if learned, else all False).

        Gaussian noise is drawn from ``generator`` unless ``deterministic`` (then the means).
        """
        obs, x = self._encode(obs, action)
        mean_n, logvar, logit = self.heads(x)
        if logvar is not None and not deterministic:
            noise = torch.randn(
                mean_n.shape, generator=generator, device=mean_n.device, dtype=mean_n.dtype
            )
            mean_n = torch.addcmul(mean_n, noise, (0.5 * (logvar + self.log_var_scale)).exp())
        y = self.target_normalizer.denormalize(mean_n)
        o = self.obs_dim
        reward = y[..., o] if self.config.learn_reward else y.new_zeros(y.shape[:-1])
        terminated = logit > 0 if logit is not None else torch.zeros_like(reward, dtype=bool)
        return self._next_obs(obs, y[..., :o]), reward, terminated

    def uncertainty(
        self, obs: Tensor, action: Tensor, members: str = "elites"
    ) -> dict[str, Tensor]:
        """Predictive moments over ``(next_obs..., reward)``, each ``[B, o + 1]``, original units:
        ``mean`` (mixture mean), ``aleatoric`` (mean of members' variances) and ``epistemic``
        (population variance of members' means), over the elites or ``members="all"``.

        ``aleatoric + epistemic`` is the variance of the equally weighted mixture.
        """
        if members not in ("elites", "all"):
            raise ValueError(f"members must be 'elites' or 'all', got {members!r}")
        p = self.predict(obs, action)
        means = torch.cat([p.next_obs_mean, p.reward_mean.unsqueeze(-1)], dim=-1)
        variances = torch.cat([p.next_obs_var, p.reward_var.unsqueeze(-1)], dim=-1)
        if members == "elites":
            means, variances = means[self.elites], variances[self.elites]
        return {
            "mean": means.mean(0),
            "aleatoric": variances.mean(0),
            "epistemic": means.var(0, correction=0),
        }

    # ----------------------------------------------------------------------------- training
    def training_targets(self, obs: Tensor, next_obs: Tensor, reward: Tensor) -> Tensor:
        """Regression targets ``[N, G]`` in original units from ``obs, next_obs [N, o]`` and
        ``reward [N]``: ``next_obs - obs`` (``next_obs`` for ``absolute_dims``), then the
        reward if learned."""
        targets = [torch.where(self.absolute_mask, next_obs, next_obs - obs)]
        if self.config.learn_reward:
            targets.append(reward.unsqueeze(1))
        return torch.cat(targets, 1)

    @torch.no_grad()
    def reset_weights(self, seed: int) -> None:
        """Fresh random weights (the initialisation of the constructor, drawn from ``seed``),
        the configured log-variance bounds and no recalibration."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for layer in self.net.layers:
                layer.reset_parameters()
        if self.max_logvar is not None and self.min_logvar is not None:
            self.max_logvar.fill_(self.config.max_logvar)
            self.min_logvar.fill_(self.config.min_logvar)
        self.log_var_scale.zero_()

    @torch.no_grad()
    def refit_normalizers(self, inputs: Tensor, targets: Tensor, keep_function: bool) -> None:
        """Fit the input and target normalizers on ``inputs [n, o + a]`` and ``targets [n, G]``
        (original units).

        With ``keep_function`` the weights are rewritten so that every member computes the same
        predictive distribution in original units as before: with old statistics ``(m, s)`` and
        new ``(m', s')``, the first layer takes ``W' = diag(s'/s) W`` and ``b' = b + ((m' -
        m)/s) W``; the mean head ``W' = W diag(t/t')``, ``b' = (b t + u - u')/t'`` for target
        statistics ``(u, t) -> (u', t')``; and the log-variance head, with its soft bounds, shifts
        by ``2 log(t/t')``.  A warm-started refit then starts from the previous model, not from
        the previous weights read under new statistics."""
        inorm, tnorm = self.input_normalizer, self.target_normalizer
        keep_function = keep_function and not (inorm.is_identity and tnorm.is_identity)
        m, s, u, t = (v.clone() for v in (inorm.mean, inorm.std, tnorm.mean, tnorm.std))
        inorm.fit(inputs)
        tnorm.fit(targets)
        if not keep_function:
            return
        first, last = self.net.layers[0], self.net.layers[-1]
        first.bias.add_((((inorm.mean - m) / s) @ first.weight).unsqueeze(1))  # [E, 1, h]
        first.weight.mul_((inorm.std / s).view(1, -1, 1))
        g, ratio = self.num_gaussian, t / tnorm.std  # [G]
        last.weight[..., :g].mul_(ratio)
        last.bias[..., :g].mul_(ratio).add_((u - tnorm.mean) / tnorm.std)
        if self.config.probabilistic and self.max_logvar is not None:
            shift = 2.0 * ratio.log()
            last.bias[..., g : 2 * g].add_(shift)
            self.max_logvar.add_(shift)
            self.min_logvar.add_(shift)

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Optimizer parameter groups: each linear layer's weight with PETS/MBPO's weight decay
        for that layer (``config.layer_weight_decay``); biases and the log-variance bounds
        without decay."""
        layers = self.net.layers
        decays = self.config.layer_weight_decay
        groups: list[dict[str, Any]] = [
            {"params": [layer.weight], "weight_decay": wd}
            for layer, wd in zip(layers, decays, strict=True)
        ]
        rest = [layer.bias for layer in layers]
        if self.max_logvar is not None and self.min_logvar is not None:
            rest += [self.max_logvar, self.min_logvar]
        groups.append({"params": rest, "weight_decay": 0.0})
        return groups

    def is_member_parameter(self, name: str) -> bool:
        """Whether parameter ``name`` belongs to one member per row of its leading dim (the
        network's ``[E, ...]``) rather than to all members (the log-variance bounds)."""
        return name.startswith("net.")

    def fit(
        self,
        data: Any,
        rng: np.random.Generator | None = None,
        max_epochs: int | None = None,
        callback: Callback | None = None,
    ) -> FitReport:
        """Train on all rows of ``data`` (a ReplayBuffer, a Batch, or a mapping of arrays).

        Rows are split into train and holdout (``holdout_fraction`` of the rows, drawn from
        each row's content, so a row held out once stays held out; with no holdout rows the
        training rows are scored); normalizers are refitted on the training rows with the
        weights rewritten to keep the model's function; each member trains on its own
        bootstrap resample (if ``bootstrap``) in shuffled minibatches: on from the current
        weights (``refit="warm"``), from new ones (``"fresh"``), or the one and then the other
        (``"both"``; the first fit is one phase).  After each epoch every member is scored on
        the holdout set; a phase stops when for ``patience`` epochs no member improved by >=
        1% (MBPO's rule), then each member gets back its best weights over all phases, where
        the model the fit started from is a candidate (no member ends worse on the holdout
        than it began), and the ``elites`` are the members with the lowest holdout loss.
        ``callback(epoch, train_loss, holdout_losses)`` runs after each epoch (epochs count
        from 1 in each phase); returning True stops that phase.

        Raises :class:`DataError` (nothing changed) for NaN/inf or misshapen data, and
        :class:`TrainingDivergedError` (weights restored to those before the call) if the loss
        becomes non-finite.  The steps are those of
        :func:`~modelbased.models.ensemble_training.fit_ensemble`.
        """
        return fit_ensemble(self, data, rng, max_epochs, callback)

    # ----------------------------------------------------------------------------- files
    def to_checkpoint(self) -> dict[str, Any]:
        """Plain data and tensors (config, sizes, weights, normalizer statistics, elites, and
        the Adam moments the next fit continues from, ``None`` before the first fit)."""
        return {
            "format": _FORMAT,
            "obs_dim": self.obs_dim,
            "action_dim": self.action_dim,
            "seed": self.seed,
            "config": self.config.to_dict(),
            "state_dict": {k: v.detach().cpu().clone() for k, v in self.state_dict().items()},
            "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
        }

    def load_checkpoint(self, data: Any) -> None:
        """Load what :meth:`to_checkpoint` wrote into this model (same sizes and config), Adam
        moments included, so a refit after loading is the refit the saved model would have
        made; a malformed or mismatched one is a :class:`CheckpointError`."""
        loaded = EnsembleModel.from_checkpoint(data)
        try:
            self.load_state_dict(loaded.state_dict())
        except RuntimeError as exc:
            raise CheckpointError(
                f"EnsembleModel checkpoint does not fit this model: {exc}"
            ) from exc
        self._load_optimizer(data.get("optimizer"))  # checked by from_checkpoint above

    def _load_optimizer(self, state: dict[str, Any] | None) -> None:
        """Adam over this model's parameters with the moments of ``state`` (``None``: no
        optimizer yet; files written before the moments were kept have none either)."""
        self.optimizer = None
        if state is not None:
            self.optimizer = make_optimizer(self)
            self.optimizer.load_state_dict(state)

    @classmethod
    def from_checkpoint(cls, data: Any) -> EnsembleModel:
        """Inverse of :meth:`to_checkpoint`; a malformed one is a :class:`CheckpointError`."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise CheckpointError(f"not an EnsembleModel checkpoint (expected format {_FORMAT})")
        try:
            config = EnsembleConfig.from_dict(data["config"])
            model = cls(data["obs_dim"], data["action_dim"], config, seed=data.get("seed"))
            model.load_state_dict(data["state_dict"])
            model._load_optimizer(data.get("optimizer"))
        except (KeyError, TypeError, ValueError, RuntimeError, ConfigError) as exc:
            raise CheckpointError(f"malformed EnsembleModel checkpoint: {exc}") from exc
        return model

    def save(self, path: str | Path) -> None:
        """Write an atomic checkpoint that loads with ``torch.load(weights_only=True)``."""
        atomic_save(self.to_checkpoint(), path)

    @classmethod
    def load(cls, path: str | Path) -> EnsembleModel:
        """Read a checkpoint written by :meth:`save` (on CPU; ``.to(device)`` after)."""
        data = load_tensors(path, "EnsembleModel checkpoint")
        return cls.from_checkpoint(data)
