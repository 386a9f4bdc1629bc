"""TD-MPC's decoder-free latent world model (Hansen et al. 2022, "Temporal Difference Learning
for Model Predictive Control"; Hansen et al. 2024, "TD-MPC2: Scalable, Robust World Models for
Continuous Control", section 3 and appendix A).

    z  = h(s)                encoder to a latent, SimNorm'ed             [B, L]
    z' = d(z, a)             latent dynamics, SimNorm'ed                 [B, L]
    r  = R(z, a)             reward, two-hot logits over a symlog support [B, bins]
    c  = C(z)                termination logit (episodic tasks)           [B]
    a ~ pi(z)                policy prior: squashed Gaussian, or categorical for discrete actions
    q_e = Q_e(z, a)          ensemble of E Q heads, two-hot logits        [E, B, bins]

Every layer is Linear -> LayerNorm -> Mish (TD-MPC2's ``NormedLinear``); the Q heads are one
:class:`~modelbased.models.layers.EnsembleLinear` stack (one batched matmul per layer for all
heads) with dropout after the first layer. SimNorm (Lavoie et al. 2022, "Simplicial
embeddings") splits the latent into groups of ``simnorm_dim`` and softmaxes each group.
Rewards and values regress two-hot targets (:class:`~modelbased.models.support.Support`,
symlog, 101 bins on ``[-10, 10]`` by default). Discrete actions enter the networks as one-hot
vectors. This module owns :class:`TDMPCNetConfig`, :class:`SimNorm`, :class:`WorldModel` and
:class:`RunningScale`; the losses and planning are the agent's (:mod:`modelbased.agents.tdmpc`).

TD-MPC2's model sizes (parameters): 1M ``enc_dim 256, mlp_dim 384, latent_dim 128, num_q 2``;
5M ``256, 512, 512``; 19M ``1024, 1024, 768, enc_layers 3``; the presets here use smaller ones
for a CPU.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modelbased.core.config import Config
from modelbased.models.actor_critic import squashed_gaussian
from modelbased.models.layers import ACTIVATIONS, EnsembleLinear
from modelbased.models.support import Support

_ACTIVATIONS: dict[str, type[nn.Module]] = {"mish": nn.Mish, **ACTIVATIONS}


@dataclasses.dataclass(frozen=True)
class TDMPCNetConfig(Config):
    """Sizes of TD-MPC2's networks (defaults: between its 1M and 5M models)."""

    latent_dim: int = 128  # L, a multiple of simnorm_dim
    enc_dim: int = 256  # hidden width of the encoder
    enc_layers: int = 2  # encoder layers (hidden layers + the output layer)
    mlp_dim: int = 256  # hidden width of dynamics, reward, termination, policy and Q heads
    num_q: int = 5  # Q heads in the ensemble
    simnorm_dim: int = 8  # group size of SimNorm
    num_bins: int = 101  # bins of the two-hot reward and value supports (odd)
    vmax: float = 10.0  # the supports span [-vmax, vmax] in symlog units
    dropout: float = 0.01  # dropout after the Q heads' first layer
    log_std_min: float = -10.0  # bounds of the policy prior's log-std
    log_std_max: float = 2.0  # upper bound of the policy prior's log-std
    activation: str = "mish"  # after every hidden LayerNorm (mish as TD-MPC2; silu is cheaper)

    def validate(self) -> None:
        """Positive sizes; ``latent_dim`` divisible by ``simnorm_dim``; odd ``num_bins``."""
        for key in ("latent_dim", "enc_dim", "enc_layers", "mlp_dim", "simnorm_dim"):
            self.require(getattr(self, key) >= 1, key, "must be >= 1")
        self.require(self.num_q >= 2, "num_q", "must be >= 2 (targets take two heads)")
        self.require(
            self.latent_dim % self.simnorm_dim == 0, "latent_dim", "must divide by simnorm_dim"
        )
        self.require(self.num_bins >= 3 and self.num_bins % 2 == 1, "num_bins", "must be odd >= 3")
        self.require(self.vmax > 0, "vmax", "must be > 0")
        self.require(0 <= self.dropout < 1, "dropout", "must be in [0, 1)")
        self.require(self.log_std_min < self.log_std_max, "log_std_min", "must be < log_std_max")
        self.require(
            self.activation in _ACTIVATIONS, "activation", f"must be one of {sorted(_ACTIVATIONS)}"
        )


class SimNorm(nn.Module):
    """``x [..., L]`` -> softmax over each of the ``L / dim`` consecutive groups of ``dim``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        """Each group of ``dim`` entries becomes a point of the simplex."""
        shape = x.shape
        return torch.softmax(x.reshape(*shape[:-1], -1, self.dim), dim=-1).reshape(shape)


def _normed_mlp(
    in_dim: int, hidden: list[int], out_dim: int, act: str, out: nn.Module | None = None
) -> nn.Sequential:
    """``in -> [Linear, LayerNorm, act] x len(hidden) -> Linear (-> out)``."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip([in_dim, *hidden[:-1]], hidden, strict=True):
        layers += [nn.Linear(n_in, n_out), nn.LayerNorm(n_out), _ACTIVATIONS[act]()]
    layers.append(nn.Linear(hidden[-1] if hidden else in_dim, out_dim))
    if out is not None:
        layers.append(out)
    return nn.Sequential(*layers)


class QEnsemble(nn.Module):
    """``E`` Q heads as one stack: ``x [B, in]`` -> logits ``[E, B, bins]``; each hidden layer is
    a batched linear, a per-head LayerNorm and the activation, with dropout after the first."""

    def __init__(
        self, E: int, in_dim: int, hidden: int, out_dim: int, dropout: float, act: str
    ) -> None:
        super().__init__()
        self.linears = nn.ModuleList(
            [
                EnsembleLinear(E, in_dim, hidden),
                EnsembleLinear(E, hidden, hidden),
                EnsembleLinear(E, hidden, out_dim),
            ]
        )
        self.norm_weight = nn.Parameter(torch.ones(2, E, 1, hidden))
        self.norm_bias = nn.Parameter(torch.zeros(2, E, 1, hidden))
        self.dropout = dropout
        self.act = _ACTIVATIONS[act]()
        self.generator: torch.Generator | None = None  # the dropout masks' stream (None: global)

    def forward(self, x: Tensor, heads: Tensor | None = None) -> Tensor:
        """``x [B, in]`` -> ``[E, B, bins]``, or ``[len(heads), B, bins]`` for the ``heads``
        given (only those are computed)."""
        for i, linear in enumerate(self.linears):
            layer = cast(EnsembleLinear, linear)
            weight: Tensor = layer.weight
            bias: Tensor = layer.bias
            if heads is not None:
                weight, bias = weight[heads], bias[heads]
            x = torch.baddbmm(bias, x.expand(len(weight), *x.shape[-2:]), weight)
            if i == len(self.linears) - 1:
                return x
            gain, shift = self.norm_weight[i], self.norm_bias[i]
            if heads is not None:
                gain, shift = gain[heads], shift[heads]
            x = self.act(F.layer_norm(x, x.shape[-1:]) * gain + shift)
            if i == 0 and self.dropout > 0 and self.training:  # from self.generator, not torch's
                keep = _uniform(x, self.generator) >= self.dropout
                x = x * keep / (1 - self.dropout)
        raise AssertionError("unreachable")


class WorldModel(nn.Module):
    """Encoder, latent dynamics, reward, termination, policy prior and Q ensemble (see the
    module docstring); ``action_dim`` is ``A`` (one-hot width when ``discrete``)."""

    def __init__(
        self, obs_dim: int, action_dim: int, config: TDMPCNetConfig, discrete: bool = False
    ) -> None:
        super().__init__()
        c = self.config = config
        self.action_dim, self.discrete = action_dim, discrete
        L, m = c.latent_dim, c.mlp_dim
        self.support = Support.from_range(c.num_bins, c.vmax, "symlog")
        enc_hidden, act = [c.enc_dim] * max(c.enc_layers - 1, 1), c.activation
        self.encoder = _normed_mlp(obs_dim, enc_hidden, L, act, SimNorm(c.simnorm_dim))
        self.dynamics = _normed_mlp(L + action_dim, [m, m], L, act, SimNorm(c.simnorm_dim))
        self.reward_head = _normed_mlp(L + action_dim, [m, m], c.num_bins, act)
        self.termination_head = _normed_mlp(L, [m, m], 1, act)
        self.pi_head = _normed_mlp(L, [m, m], action_dim if discrete else 2 * action_dim, act)
        self.qs = QEnsemble(c.num_q, L + action_dim, m, c.num_bins, c.dropout, act)
        with torch.no_grad():  # rewards and values start at exactly 0 (TD-MPC2's zero init)
            for head in (self.reward_head[-1], self.qs.linears[-1]):
                for p in head.parameters():
                    p.zero_()
        self.target_qs = copy.deepcopy(self.qs).requires_grad_(False)

    # -- the model ---------------------------------------------------------------------------
    def encode(self, obs: Tensor) -> Tensor:
        """``obs [..., o]`` -> ``z [..., L]``."""
        return self.encoder(obs)

    def next(self, z: Tensor, action: Tensor) -> Tensor:
        """``z [B, L]``, ``action [B, A]`` -> ``z' [B, L]``."""
        return self.dynamics(torch.cat([z, action], dim=-1))

    def reward(self, z: Tensor, action: Tensor) -> Tensor:
        """Reward logits ``[B, bins]``."""
        return self.reward_head(torch.cat([z, action], dim=-1))

    def termination(self, z: Tensor) -> Tensor:
        """Termination logits ``[B]`` of arriving in ``z``."""
        return self.termination_head(z).squeeze(-1)

    def Q(self, z: Tensor, action: Tensor, target: bool = False) -> Tensor:
        """Logits of every head, ``[E, B, bins]``."""
        net = self.target_qs if target else self.qs
        return net(torch.cat([z, action], dim=-1))

    def q_value(
        self,
        z: Tensor,
        action: Tensor,
        reduce: str,
        generator: torch.Generator | None = None,
        target: bool = False,
    ) -> Tensor:
        """Two randomly chosen heads' values ``[B]``, reduced by ``min`` (TD targets) or ``avg``
        (planning and the policy's objective)."""
        device = generator.device if generator is not None else z.device
        pick = torch.randperm(self.config.num_q, generator=generator, device=device)[:2]
        net = self.target_qs if target else self.qs
        logits = net(torch.cat([z, action], dim=-1), pick.to(z.device))
        values = self.support.logits_to_scalar(logits)
        return values.amin(0) if reduce == "min" else values.mean(0)

    # -- the policy prior --------------------------------------------------------------------
    def pi(
        self, z: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """A sample of the policy prior at ``z [B, L]``: ``(action [B, A], log_prob [B], mode
        [B, A])``. Continuous: tanh-squashed Gaussian, actions in ``[-1, 1]``, log-std squashed
        into ``[log_std_min, log_std_max]``. Discrete: one-hot sample and mode, ``log_prob``
        the categorical's log-probabilities ``[B, A]`` instead."""
        out = self.pi_head(z)
        if self.discrete:
            log_probs = F.log_softmax(out, dim=-1)
            gumbel = -torch.log(-torch.log(_uniform(out, generator)))
            eye = torch.eye(self.action_dim, dtype=z.dtype, device=z.device)
            return eye[(log_probs + gumbel).argmax(-1)], log_probs, eye[out.argmax(-1)]
        mean, log_std = out.chunk(2, dim=-1)
        c = self.config
        log_std = c.log_std_min + 0.5 * (c.log_std_max - c.log_std_min) * (torch.tanh(log_std) + 1)
        action, log_prob = squashed_gaussian(mean, log_std, generator)
        return action, log_prob, torch.tanh(mean)

    def policy_value(
        self,
        z: Tensor,
        reduce: str,
        generator: torch.Generator | None = None,
        target: bool = False,
    ) -> Tensor:
        """``V(z) [B]`` under the policy prior: ``Q(z, a ~ pi)`` for continuous actions, the
        exact expectation ``sum_a pi(a|z) Q(z, a)`` for discrete ones."""
        action, log_probs, _ = self.pi(z, generator)
        if not self.discrete:
            return self.q_value(z, action, reduce, generator, target)
        B, A = log_probs.shape
        eye = torch.eye(A, dtype=z.dtype, device=z.device)
        every = self.q_value(
            z.repeat_interleave(A, 0), eye.repeat(B, 1), reduce, generator, target
        ).reshape(B, A)
        return (log_probs.exp() * every).sum(-1)

    # -- planning ----------------------------------------------------------------------------
    def imagined_return(
        self, z: Tensor, actions: Tensor, gamma: float, generator: torch.Generator | None = None
    ) -> Tensor:
        """TD-MPC's plan score from ``z [B, L]`` for ``actions [B, K, H, A]``: ``sum_t gamma^t
        r_t + gamma^H Q(z_H, pi(z_H))``, each term weighted by the probability of not having
        terminated before it (the termination head). Returns ``[B, K]``."""
        B, K, H, A = actions.shape
        z = z.repeat_interleave(K, 0)  # [B K, L]
        flat = actions.reshape(B * K, H, A)
        total = torch.zeros(B * K, dtype=z.dtype, device=z.device)
        alive = torch.ones_like(total)
        for t in range(H):
            a = flat[:, t]
            total += gamma**t * alive * self.support.logits_to_scalar(self.reward(z, a))
            z = self.next(z, a)
            alive = alive * (1 - torch.sigmoid(self.termination(z)))
        total += gamma**H * alive * self.policy_value(z, "avg", generator)
        return total.reshape(B, K)

    @torch.no_grad()
    def update_targets(self, tau: float) -> None:
        """Polyak-average the target Q heads toward the online ones."""
        torch._foreach_lerp_(list(self.target_qs.parameters()), list(self.qs.parameters()), tau)

    def train(self, mode: bool = True) -> WorldModel:
        """Training mode (dropout on) for the online heads; the targets stay in eval mode."""
        super().train(mode)
        self.target_qs.train(False)
        return self


def _uniform(like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Uniforms in ``(0, 1)`` of ``like``'s shape, from ``generator``."""
    u = torch.rand(like.shape, generator=generator, dtype=like.dtype, device=like.device)
    return u.clamp(1e-6, 1 - 1e-6)


class RunningScale(nn.Module):
    """TD-MPC2's scale of Q values for the policy loss: an exponential moving average (rate
    ``tau``) of the 5th-95th percentile range of the batch's values, at least 1."""

    value: Tensor

    def __init__(self, tau: float = 0.01) -> None:
        super().__init__()
        self.tau = tau
        self.register_buffer("value", torch.ones(()))

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        """Move the scale toward the percentile range of ``x``."""
        q = torch.quantile(
            x.detach().flatten().float(), torch.tensor([0.05, 0.95], device=x.device)
        )
        self.value.lerp_((q[1] - q[0]).clamp(min=1.0).to(self.value.dtype), self.tau)

    def forward(self, x: Tensor) -> Tensor:
        """``x / scale``."""
        return x / self.value


def discount_heuristic(episode_length: int | None) -> float:
    """TD-MPC2's discount from the episode length ``T``: ``(T/5 - 1) / (T/5)`` clipped to
    ``[0.95, 0.995]`` (0.99 when ``T`` is unknown)."""
    if not episode_length:
        return 0.99
    frac = episode_length / 5
    return float(min(max((frac - 1) / frac, 0.95), 0.995))


__all__ = [
    "QEnsemble",
    "RunningScale",
    "SimNorm",
    "TDMPCNetConfig",
    "WorldModel",
    "discount_heuristic",
]
