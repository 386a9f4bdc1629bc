"""Training of the dynamics ensemble of :mod:`modelbased.models.ensemble`, following PETS
(Chua et al. 2018, section 4.1: bootstrap resamples, Gaussian NLL, learned log-variance bounds)
and MBPO (Janner et al. 2019, appendix: holdout early stopping with a 1% rule, per-member best
weights, elites, per-layer weight decay), with the variance recalibration of Malik et al. 2019.

:func:`fit_ensemble` (the body of :meth:`EnsembleModel.fit`) is a sequence of named steps:

1. :func:`read_transitions` — all rows as tensors on the model's device, checked (a bad field
   is a :class:`DataError` before anything changes);
2. :func:`split_holdout` — a train/holdout split drawn from each row's content
   (:func:`row_keys`), so it is the same for a row in every fit: rows held out once stay held
   out;
3. :func:`fit_normalizers` — input and target statistics from the training rows, the weights
   rewritten so that the model computes the same function under them
   (:meth:`EnsembleModel.refit_normalizers`); the rows in normalized units (:class:`Rows`);
4. :class:`BestWeights` — the model the fit starts from is every member's first candidate,
   scored on the holdout; training then starts from these weights (``refit="warm"``), from new
   random ones (``"fresh"``, :meth:`EnsembleModel.reset_weights`), or does the one and then the
   other (``"both"``, the default, :func:`refit_starts`), every epoch of every phase a candidate;
5. :func:`bootstrap_members` — each member's resample of the training rows ``[E, n]``;
6. :func:`train_epochs` — epochs of :func:`train_epoch` scored on the holdout by
   :func:`holdout_score`, :class:`EarlyStopping` (MBPO's rule); a member's weights replace its
   best when they beat its best holdout score;
7. :meth:`BestWeights.restore` — each member gets back its best weights, so no member ends a
   refit worse on the holdout than the model it replaces;
8. :func:`select_elites` — the members with the lowest holdout score;
9. :func:`calibrate` — the per-target scale of the aleatoric variance (:func:`recalibrate`).

The trainer sees the model only through :class:`TrainableEnsemble`, the public training
surface of :class:`~modelbased.models.ensemble.EnsembleModel`; it never imports the model, so
the dependency goes one way (``ensemble`` -> ``ensemble_training``).

All rows are read once into tensors; every minibatch is one gather ``x[idx]`` with ``idx``
``[E, batch]`` (each member its own rows), so no step loops over members, and the only host
syncs are once per epoch (early stopping).  Shapes: ``E`` members, ``N`` rows, ``n`` training
rows, ``in`` = obs + action dims, ``G`` Gaussian targets.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modelbased.core.errors import ConfigError, DataError, TrainingDivergedError
from modelbased.models.normalizer import Normalizer

IMPROVEMENT = 0.01  # MBPO: an epoch is progress if some member's holdout loss drops >= 1%
Callback = Callable[[int, float, list[float]], bool | None]


class TrainableEnsemble(Protocol):
    """What the trainer needs of a model: the public training surface of ``EnsembleModel``."""

    config: Any  # an EnsembleConfig
    ensemble_size: int  # E
    obs_dim: int
    action_dim: int
    rng: np.random.Generator  # used when fit() is given no rng
    optimizer: torch.optim.Optimizer | None  # carried across fits; None until the first
    input_normalizer: Normalizer
    target_normalizer: Normalizer
    elites: Tensor  # [elites] long
    log_var_scale: Tensor  # [G]
    max_logvar: Tensor | None  # [G], None if deterministic
    min_logvar: Tensor | None

    @property
    def device(self) -> torch.device:
        """The device of the weights."""

    @property
    def dtype(self) -> torch.dtype:
        """The float dtype of the weights."""

    def action_features(self, action: Tensor, obs_rank: int = 2) -> Tensor:
        """Actions as network input ``[.., B, a]`` (integers one-hot)."""

    def training_targets(self, obs: Tensor, next_obs: Tensor, reward: Tensor) -> Tensor:
        """Regression targets ``[N, G]`` in original units (state deltas, then the reward if
        learned)."""

    def heads(self, x: Tensor) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Normalized input -> mean ``[E, B, G]``, log-variance (or None), termination logit."""

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Optimizer parameter groups with each layer's weight decay."""

    def refit_normalizers(self, inputs: Tensor, targets: Tensor, keep_function: bool) -> None:
        """Fit the normalizers on training rows, keeping the learned function if asked."""

    def reset_weights(self, seed: int) -> None:
        """Draw fresh weights and log-variance bounds (a fresh fit)."""

    def is_member_parameter(self, name: str) -> bool:
        """Whether parameter ``name`` has one row per member in its leading dim."""

    def named_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """``(name, parameter)`` pairs, as ``nn.Module`` gives them."""

    def state_dict(self) -> dict[str, Any]:
        """The model's tensors, as ``nn.Module`` gives them."""

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> Any:
        """Load tensors written by :meth:`state_dict`."""


@dataclasses.dataclass
class FitReport:
    """What :meth:`EnsembleModel.fit` did.  Losses are in normalized target units."""

    epochs: int
    train_loss: list[float]  # per epoch, mean over members (NLL or MSE, + termination BCE)
    holdout_loss: list[float]  # per epoch, mean over members (MSE, + termination BCE)
    holdout_mse: list[float]  # per member, at its restored (best) weights
    elites: list[int]  # members with the lowest holdout loss, best first
    stopped_early: bool
    seconds: float


@dataclasses.dataclass
class Transitions:
    """Rows read from the training data, on the model's device in its float dtype."""

    obs: Tensor  # [N, o]
    action: Tensor  # [N, a] (integer actions one-hot)
    reward: Tensor  # [N]
    next_obs: Tensor  # [N, o]
    terminated: Tensor  # [N] 0/1 (zeros when the data has none)

    def __len__(self) -> int:
        return len(self.obs)


@dataclasses.dataclass
class Rows:
    """Model inputs and targets in normalized units."""

    x: Tensor  # [N, in]
    y: Tensor  # [N, G]
    done: Tensor  # [N] termination labels 0/1

    def __getitem__(self, idx: Tensor) -> Rows:
        """The rows ``idx`` (``[n]``, or ``[E, b]`` for a per-member minibatch)."""
        return Rows(self.x[idx], self.y[idx], self.done[idx])


# --------------------------------------------------------------------------- the steps
def fit_ensemble(
    model: TrainableEnsemble,
    data: Any,
    rng: np.random.Generator | None = None,
    max_epochs: int | None = None,
    callback: Callback | None = None,
) -> FitReport:
    """The body of :meth:`EnsembleModel.fit` (see there): the steps of the module docstring."""
    start_time = time.perf_counter()
    cfg = model.config
    max_epochs = cfg.max_epochs if max_epochs is None else max_epochs
    if max_epochs < 1:
        raise ConfigError(f"EnsembleModel.fit: max_epochs={max_epochs!r} must be >= 1")
    rows = read_transitions(model, data)
    rng = model.rng if rng is None else rng
    keys = row_keys(rows)
    train_idx, holdout_idx = split_holdout(keys, cfg.holdout_fraction)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    refit = not model.input_normalizer.is_identity  # the model was fitted before
    normalized = fit_normalizers(model, rows, train_idx)
    train, holdout = normalized[train_idx], normalized[holdout_idx]
    # the model the fit starts from (its function kept) is every member's first candidate
    best = BestWeights(model, holdout_score(model, holdout)[0])
    members_idx = bootstrap_members(
        len(train_idx), model.ensemble_size, cfg.bootstrap, rng, model.device
    )
    shuffle = torch.Generator(device=model.device)
    shuffle.manual_seed(int(rng.integers(2**62)))
    log = EpochLog(best)
    try:
        for start in refit_starts(cfg.refit if refit else "warm"):
            if start == "fresh":
                model.reset_weights(int(rng.integers(2**62)))
            if start != "warm" or cfg.refit == "both":  # "both": new Adam moments per phase
                model.optimizer = None
            if model.optimizer is None:
                model.optimizer = make_optimizer(model)
            phase = train_epochs(
                model,
                model.optimizer,
                train,
                holdout,
                members_idx,
                shuffle,
                max_epochs,
                best,
                EarlyStopping(cfg.patience),
                callback,
            )
            log.merge(phase)
    except TrainingDivergedError:
        model.load_state_dict(before)
        model.optimizer = None
        raise
    log.best.restore()
    holdout_mse = select_elites(model, holdout)
    calibrate(model, holdout)
    return FitReport(
        epochs=log.epochs,
        train_loss=log.train_loss,
        holdout_loss=log.holdout_loss,
        holdout_mse=holdout_mse.tolist(),
        elites=model.elites.tolist(),
        stopped_early=log.stopped_early,
        seconds=time.perf_counter() - start_time,
    )


def read_transitions(model: TrainableEnsemble, data: Any) -> Transitions:
    """All rows of ``data`` (a ReplayBuffer via ``.all()``, a Batch, or a mapping of arrays) on
    the model's device in its dtype (integer actions one-hot; see :class:`Transitions`).

    Raises :class:`DataError` naming the field for NaN/inf, missing fields or wrong shapes.
    """
    if not hasattr(data, "obs") and not isinstance(data, Mapping) and hasattr(data, "all"):
        data = data.all()
    get = data.get if isinstance(data, Mapping) else lambda k: getattr(data, k, None)
    out: dict[str, Tensor] = {}
    for name in ("obs", "action", "reward", "next_obs", "terminated"):
        value = get(name)
        if value is None:
            if name == "terminated" and not model.config.learn_termination:
                continue
            raise DataError(f"training data has no field {name!r}")
        value = torch.as_tensor(
            value if torch.is_tensor(value) else np.asarray(value), device=model.device
        )
        n = len(out["obs"]) if out else len(value)
        if value.dim() == 0 or len(value) != n:
            raise DataError(f"{name} has {len(value) if value.dim() else 0} rows, obs has {n}")
        if value.is_floating_point():
            _check_finite(name, value.reshape(n, -1))
        out[name] = value
    n = len(out["obs"])
    if n == 0:
        raise DataError("training data is empty")
    dtype = model.dtype
    for name in ("obs", "next_obs"):
        if tuple(out[name].shape) != (n, model.obs_dim):
            raise DataError(f"{name} must be [N, {model.obs_dim}], got {list(out[name].shape)}")
        out[name] = out[name].to(dtype)
    action = model.action_features(out["action"], 2)
    if tuple(action.shape) != (n, model.action_dim):
        raise DataError(
            f"action must be [N, {model.action_dim}] (or integer [N]), "
            f"got {list(out['action'].shape)}"
        )
    out["action"] = action
    out.setdefault("terminated", torch.zeros(n, device=model.device, dtype=dtype))
    for name in ("reward", "terminated"):
        if out[name].numel() != n:
            raise DataError(f"{name} must be [N], got {list(out[name].shape)}")
        out[name] = out[name].reshape(n).to(dtype)
    return Transitions(**out)


def _check_finite(name: str, flat: Tensor) -> None:
    bad = ~torch.isfinite(flat)
    if bad.any():
        nan, inf = bool(torch.isnan(flat).any()), bool(torch.isinf(flat).any())
        kind = "NaN and inf" if nan and inf else "NaN" if nan else "inf"
        rows = int(bad.any(dim=1).sum())
        raise DataError(
            f"{name} contains {kind} at {rows} of {len(flat)} rows; the model was not changed"
        )


def split_holdout(keys: Tensor, holdout_fraction: float) -> tuple[Tensor, Tensor]:
    """``(train, holdout)`` row indices given each row's :func:`row_keys` ``[N]``: a row is
    held out when its key, read as a number in [0, 1), is below ``holdout_fraction``.

    The draw depends on the row alone, so a row held out by one fit is held out by every later
    fit on data that still holds it: a warm-started refit is scored on rows that no earlier fit
    trained on, and its members can be held to the previous model's error on them.  With no
    holdout rows the training rows are scored."""
    draw = (_mix(keys ^ 0x2545F4914F6CDD1D) & (2**53 - 1)).double() / 2.0**53  # [N] in [0, 1)
    held = draw < holdout_fraction
    if holdout_fraction > 0 and not held.any():
        held[draw.argmin()] = True  # tiny data: at least one row
    idx = torch.arange(len(keys), device=keys.device)
    train_idx, holdout_idx = idx[~held], idx[held]
    if len(train_idx) == 0:  # every row drew holdout: train on all, score on all
        train_idx = holdout_idx = idx
    return train_idx, (holdout_idx if len(holdout_idx) else train_idx)


def row_keys(rows: Transitions) -> Tensor:
    """A 64-bit key ``[N]`` (non-negative) per row from the float32 bit patterns of its obs,
    action and next obs (a multiply-xorshift hash; integer arithmetic, the same on every
    device)."""
    fields = torch.cat([rows.obs, rows.action, rows.next_obs], 1).float().contiguous()
    bits = fields.view(torch.int32).long() & 0xFFFFFFFF  # [N, F]
    odd = np.random.default_rng(0x5EED).integers(1, 2**62, size=bits.shape[1]) * 2 + 1
    odd_t = torch.as_tensor(odd, dtype=torch.long, device=bits.device)  # [F] fixed odd factors
    return _mix((bits * odd_t).sum(1))  # the sum wraps modulo 2**64


def _mix(key: Tensor) -> Tensor:
    """A 64-bit finaliser (splitmix64's constants) of int64 ``key``; non-negative result."""
    for shift, mult in ((30, -4658895280553007687), (27, -7723592293110705685)):
        key = (key ^ (key >> shift)) * mult
    return (key ^ (key >> 31)) & (2**63 - 1)


def fit_normalizers(
    model: TrainableEnsemble, rows: Transitions, train_idx: Tensor, keep_function: bool = True
) -> Rows:
    """Refit the input and target normalizers on the training rows (keeping the function the
    weights compute, see :meth:`EnsembleModel.refit_normalizers`); all rows normalized."""
    inputs = torch.cat([rows.obs, rows.action], 1)
    targets = model.training_targets(rows.obs, rows.next_obs, rows.reward)
    model.refit_normalizers(inputs[train_idx], targets[train_idx], keep_function)
    x = model.input_normalizer.normalize(inputs)
    return Rows(x, model.target_normalizer.normalize(targets), rows.terminated)


def bootstrap_members(
    n: int, ensemble_size: int, bootstrap: bool, rng: np.random.Generator, device: torch.device
) -> Tensor:
    """``[E, n]`` training-row positions per member: ``n`` draws with replacement (a bootstrap
    resample, Efron 1979; PETS section 4.1), or every row for every member."""
    if bootstrap:
        return torch.from_numpy(rng.integers(0, n, size=(ensemble_size, n))).to(device)
    return torch.arange(n, device=device).expand(ensemble_size, n)


def make_optimizer(model: TrainableEnsemble) -> torch.optim.Optimizer:
    """Adam over :meth:`EnsembleModel.parameter_groups` (PETS/MBPO's per-layer weight decay as
    a coupled L2 term, the gradient of ``decay/2 * ||W||^2``)."""
    groups = model.parameter_groups()
    try:  # the fused kernel is ~3x faster than foreach on CPU (torch >= 2.4)
        return torch.optim.Adam(groups, lr=model.config.lr, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(groups, lr=model.config.lr, foreach=True)


# --------------------------------------------------------------------------- the epoch loop
@dataclasses.dataclass
class EpochLog:
    """What :func:`train_epochs` saw: losses per epoch and each member's best weights."""

    best: BestWeights
    train_loss: list[float] = dataclasses.field(default_factory=list)
    holdout_loss: list[float] = dataclasses.field(default_factory=list)
    epochs: int = 0
    stopped_early: bool = False

    def merge(self, phase: EpochLog) -> None:
        """Append a training phase's log (``refit="both"`` trains two phases)."""
        self.train_loss += phase.train_loss
        self.holdout_loss += phase.holdout_loss
        self.epochs += phase.epochs
        self.stopped_early = phase.stopped_early


def refit_starts(refit: str) -> tuple[str, ...]:
    """The phases of a fit: ``warm`` trains on from the current weights, ``fresh`` from new
    random ones, ``both`` the one then the other; every phase offers its epochs to the same
    :class:`BestWeights`, so each member ends with its best candidate over all of them."""
    return ("warm", "fresh") if refit == "both" else (refit,)


def train_epochs(
    model: TrainableEnsemble,
    optimizer: torch.optim.Optimizer,
    train: Rows,
    holdout: Rows,
    members_idx: Tensor,
    shuffle: torch.Generator,
    max_epochs: int,
    best: BestWeights,
    stopping: EarlyStopping,
    callback: Callback | None = None,
) -> EpochLog:
    """Epochs of :func:`train_epoch` until ``stopping`` says stop, ``callback(epoch,
    train_loss, holdout_scores)`` returns True, or ``max_epochs``; after each epoch each
    member's weights are offered to ``best`` with its holdout score.

    Raises :class:`TrainingDivergedError` when a loss becomes non-finite.
    """
    cfg = model.config
    log = EpochLog(best)
    passes = max(1, math.ceil(cfg.min_epoch_updates * cfg.batch_size / members_idx.shape[1]))
    for epoch in range(1, max_epochs + 1):
        log.epochs = epoch
        train_loss = train_epoch(model, optimizer, train, members_idx, shuffle, passes)
        score = holdout_score(model, holdout)[0].cpu()  # the epoch's one host sync
        if not (math.isfinite(train_loss) and torch.isfinite(score).all()):
            raise TrainingDivergedError(
                f"EnsembleModel.fit: the loss became non-finite in epoch {epoch} "
                f"(train loss {train_loss:.4g}); the weights from before fit() were restored. "
                "Try a lower lr, or check the data for extreme values."
            )
        log.train_loss.append(train_loss)
        log.holdout_loss.append(float(score.mean()))
        stopping.update(score)
        best.offer(score)
        stop = callback is not None and callback(epoch, train_loss, score.tolist())
        if stop or stopping.exhausted:
            log.stopped_early = epoch < max_epochs
            break
    return log


def train_epoch(
    model: TrainableEnsemble,
    optimizer: torch.optim.Optimizer,
    train: Rows,
    members_idx: Tensor,
    shuffle: torch.Generator,
    passes: int = 1,
) -> float:
    """``passes`` shuffled passes of each member over its rows ``members_idx [E, n]`` in
    minibatches of ``batch_size`` rows per member, one optimizer step each; returns the mean
    training loss over members (normalized units)."""
    cfg = model.config
    E, n = members_idx.shape
    order = torch.rand(E, passes, n, generator=shuffle, device=members_idx.device).argsort(dim=2)
    epoch_idx = members_idx.gather(1, order.reshape(E, passes * n))
    total = torch.zeros(E, device=train.x.device, dtype=train.x.dtype)
    for lo in range(0, passes * n, cfg.batch_size):
        idx = epoch_idx[:, lo : lo + cfg.batch_size]
        losses = member_loss(model, train[idx])
        loss = losses.sum()
        if model.max_logvar is not None and model.min_logvar is not None:
            loss = loss + cfg.logvar_reg * (model.max_logvar.sum() - model.min_logvar.sum())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += losses.detach() * idx.shape[1]
    return float((total / (passes * n)).mean())


def member_loss(model: TrainableEnsemble, batch: Rows) -> Tensor:
    """Training loss per member ``[E]`` on a per-member minibatch (``x [E, b, in]``, ``y [E, b,
    G]``, ``done [E, b]``): Gaussian NLL without constants (or MSE), + termination BCE."""
    mean, logvar, logit = model.heads(batch.x)
    if logvar is None:
        loss = (mean - batch.y).square().mean(dim=(1, 2))
    else:
        loss = ((mean - batch.y).square() * torch.exp(-logvar) + logvar).mean(dim=(1, 2))
    if logit is not None:
        bce = F.binary_cross_entropy_with_logits(logit, batch.done, reduction="none")
        loss = loss + bce.mean(dim=1)
    return loss


@torch.no_grad()
def holdout_losses(model: TrainableEnsemble, holdout: Rows) -> tuple[Tensor, Tensor]:
    """``(score, mse)`` per member and row ``[E, B]`` on rows shared by all members (``x [B,
    in]``, ``y [B, G]``, ``done [B]``): the squared error of the means averaged over targets
    (normalized units), and the early-stopping and elite criterion ``score`` = that + the
    termination BCE if learned."""
    mean, _, logit = model.heads(holdout.x)
    mse = (mean - holdout.y).square().mean(dim=2)
    if logit is None:
        return mse, mse
    done = holdout.done.expand_as(logit)
    return mse + F.binary_cross_entropy_with_logits(logit, done, reduction="none"), mse


def holdout_score(model: TrainableEnsemble, holdout: Rows) -> tuple[Tensor, Tensor]:
    """``(score, mse)`` per member ``[E]``: :func:`holdout_losses` averaged over the rows."""
    score, mse = holdout_losses(model, holdout)
    return score.mean(1), mse.mean(1)


class EarlyStopping:
    """MBPO's rule: an epoch is progress if some member's holdout score is at least 1% below
    its score at its last progress; stop after ``patience`` epochs without progress.  Scores
    ``[E]`` live on the host (one transfer per epoch)."""

    def __init__(self, patience: int) -> None:
        self.patience, self.since_progress = patience, 0
        self.best: Tensor | None = None  # [E] lowest score so far
        self.anchor: Tensor | None = None  # [E] score at the last progress

    def update(self, score: Tensor) -> Tensor:
        """Record an epoch's ``score [E]``; returns which members beat their best ``[E]``."""
        if self.best is None or self.anchor is None:
            self.best, self.anchor = (
                torch.full_like(score, math.inf),
                torch.full_like(score, math.inf),
            )
        improved = score < self.best
        self.best = torch.minimum(self.best, score)
        progress = score <= self.anchor * (1 - IMPROVEMENT)
        self.anchor = torch.where(progress, score, self.anchor)
        self.since_progress = 0 if progress.any() else self.since_progress + 1
        return improved

    @property
    def exhausted(self) -> bool:
        """Whether ``patience`` epochs have passed without progress."""
        return self.since_progress >= self.patience


class BestWeights:
    """Each member's weights at its best holdout score, starting from the weights the fit
    begins with (``score [E]``: the previous model, its function kept under the new
    normalizers), so no member ends a refit worse on the holdout than the model it replaces.

    Parameters with a leading member dim are kept per member; those shared by all members (the
    log-variance bounds) follow any member's improvement."""

    def __init__(self, model: TrainableEnsemble, score: Tensor) -> None:
        self.params = dict(model.named_parameters())
        self.member = {k: model.is_member_parameter(k) for k in self.params}
        self.best = {k: p.detach().clone() for k, p in self.params.items()}
        self.score = score.detach().cpu().clone()

    def offer(self, score: Tensor) -> Tensor:
        """Keep the current weights of the members that beat their best ``score [E]``;
        returns which ``[E]``."""
        improved = score < self.score
        self.score = torch.where(improved, score, self.score)
        self.keep(improved)
        return improved

    @torch.no_grad()
    def keep(self, improved: Tensor) -> None:
        """Copy the current weights of the ``improved [E]`` members."""
        if not improved.any():
            return
        for k, p in self.params.items():
            if self.member[k]:  # [E, ...]
                mask = improved.to(p.device).view(-1, *([1] * (p.dim() - 1)))
                self.best[k].copy_(torch.where(mask, p, self.best[k]))
            else:
                self.best[k].copy_(p)

    @torch.no_grad()
    def restore(self) -> None:
        """Load the kept weights into the model."""
        for k, p in self.params.items():
            p.copy_(self.best[k])


# --------------------------------------------------------------------------- after training
@torch.no_grad()
def select_elites(model: TrainableEnsemble, holdout: Rows) -> Tensor:
    """Set ``model.elites`` to the members with the lowest holdout score, best first; returns
    each member's holdout MSE ``[E]``."""
    score, mse = holdout_score(model, holdout)
    model.elites.copy_(torch.argsort(score, stable=True)[: model.config.elites])
    return mse


@torch.no_grad()
def calibrate(model: TrainableEnsemble, holdout: Rows) -> None:
    """Set ``model.log_var_scale`` by :func:`recalibrate` on the holdout (zeros without
    ``calibrate``); a deterministic model has no variance to scale."""
    if not model.config.probabilistic:
        return
    if model.config.calibrate:
        model.log_var_scale.copy_(recalibrate(model, holdout.x, holdout.y))
    else:
        model.log_var_scale.zero_()


@torch.no_grad()
def recalibrate(model: TrainableEnsemble, x: Tensor, y: Tensor) -> Tensor:
    """Per-target log-scale ``c [G]`` of the members' (aleatoric) variances that maximizes the
    holdout likelihood of the elites' moment-matched mixture ``N(mean, e^c aleatoric +
    epistemic)``: variance recalibration (Malik et al. 2019, "Calibrated Model-Based Deep
    Reinforcement Learning"; Levi et al. 2022). Grid search over ``c`` in [-12, 12]."""
    mean, logvar, _ = model.heads(x)
    if logvar is None:
        raise ValueError("recalibrate needs a probabilistic model")
    mean, var = mean[model.elites], logvar[model.elites].exp()
    mix_mean, aleatoric = mean.mean(0), var.mean(0)  # [B, G]
    epistemic = mean.var(0, correction=0)
    sq_err = (y - mix_mean).square()
    grid = torch.linspace(-12.0, 12.0, 241, device=x.device, dtype=x.dtype).view(-1, 1, 1)
    total = grid.exp() * aleatoric + epistemic + 1e-12  # [C, B, G]
    nll = (total.log() + sq_err / total).mean(dim=1)  # [C, G]
    return grid.view(-1)[nll.argmin(dim=0)]
