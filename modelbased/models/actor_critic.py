"""Soft actor-critic networks and update (Haarnoja et al. 2018, "Soft Actor-Critic: Off-Policy
Maximum Entropy Deep Reinforcement Learning with a Stochastic Actor", and "Soft Actor-Critic
Algorithms and Applications": twin Q, automatic entropy tuning), shared by the ``sac`` agent
and by MBPO (Janner et al. 2019), which runs the same update on a mix of real and imagined data.

This module owns:

* :class:`SquashedGaussianActor` — ``obs -> tanh(N(mu, sigma))`` in ``[-1, 1]^A`` with the
  log-density corrected for the squashing (SB3's ``log_std`` bounds [-20, 2]);
* :class:`TwinQ` — the two critics ``qf1, qf2`` as ONE two-member
  :class:`~modelbased.models.layers.EnsembleMLP`: one ``baddbmm`` per layer for both;
* :class:`SACUpdate` — the gradient step in Stable-Baselines3's order (entropy temperature,
  critics on the clipped double-Q soft target, actor against the fresh critics, Polyak target
  via ``torch._foreach_lerp_``), with :class:`~modelbased.models.optim.FusedAdam`, the
  temperature's gradient in closed form (no autograd for a scalar), and no host sync: losses
  accumulate as tensors and :meth:`SACUpdate.scalars` reads their means once per logging
  interval;
* SAC for discrete actions (Christodoulou 2019, "Soft Actor-Critic for Discrete Action
  Settings"): :class:`CategoricalActor` (``obs -> logits [B, A]``), :class:`DiscreteTwinQ`
  (``obs -> Q [2, B, A]``, every action's value at once) and :class:`DiscreteSACUpdate`, the
  same step with the expectations over actions taken exactly instead of by sampling: the soft
  value ``V(s') = sum_a pi(a|s') (min Q'(s', a) - alpha log pi(a|s'))``, the actor loss
  ``sum_a pi(a|s) (alpha log pi(a|s) - min Q(s, a))`` and the temperature loss on the exact
  entropy, whose target is ``target_entropy_scale * log A`` (the paper: 0.98 of the maximum).

Continuous actions inside this module are normalized to ``[-1, 1]``; callers map to the env's
bounds. Discrete actions are indices ``[B]`` (long). Shapes: ``B`` batch rows, ``o`` obs dims,
``A`` action dims (discrete: the number of actions).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modelbased.core.config import Config
from modelbased.core.errors import TrainingDivergedError
from modelbased.models.layers import ensemble_mlp
from modelbased.models.optim import FusedAdam

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
_LOG2 = math.log(2.0)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers)


def drain_means(
    sums: Tensor, count: int, names: Sequence[str], owner: str, updates: int, hint: str = ""
) -> dict[str, float]:
    """The means ``sums [len(names)] / count`` by name, in one host sync, and ``sums`` zeroed:
    how an update loop reports its accumulated losses. :class:`TrainingDivergedError` names the
    non-finite ones (``"<owner>: <names> became non-finite after <updates> updates<hint>"``)."""
    means = (sums / count).tolist()
    sums.zero_()
    out = dict(zip(names, means, strict=True))
    bad = [k for k, v in out.items() if not math.isfinite(v)]
    if bad:
        raise TrainingDivergedError(
            f"{owner}: {', '.join(bad)} became non-finite after {updates} updates{hint}"
        )
    return out


def squashed_gaussian(
    mean: Tensor, log_std: Tensor, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """A reparameterized sample ``tanh(mean + std * noise)`` ``[B, A]`` of the squashed Gaussian
    and its log-density ``[B]``, corrected for the squashing (SAC's policy; TD-MPC's prior)."""
    noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    u = mean + noise * log_std.exp()
    # log N(u; mean, std) - sum log(1 - tanh(u)^2), the latter as 2 (log 2 - u - softplus(-2u))
    log_prob = -0.5 * noise.square() - log_std - 0.5 * math.log(2 * math.pi)
    log_prob = log_prob - 2.0 * (_LOG2 - u - F.softplus(-2.0 * u))
    return torch.tanh(u), log_prob.sum(-1)


class SquashedGaussianActor(nn.Module):
    """``obs [B, o]`` -> a diagonal Gaussian over pre-squash actions; ``tanh`` maps to [-1, 1]."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        self.trunk = _mlp([obs_dim, *hidden])
        self.head = nn.Linear(hidden[-1], 2 * action_dim)  # mean and log-std, one matmul
        self.action_dim = action_dim

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """``obs [B, o]`` -> the Gaussian's mean and clamped log-std before the squash, ``[B,
        A]`` each."""
        mean, log_std = self.head(self.trunk(obs)).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(
        self, obs: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """A reparameterized action ``[B, A]`` in [-1, 1] and its log-density ``[B]``."""
        mean, log_std = self(obs)
        return squashed_gaussian(mean, log_std, generator)

    def deterministic(self, obs: Tensor) -> Tensor:
        """The mode of the squashed policy, ``tanh(mean)``."""
        return torch.tanh(self(obs)[0])


class TwinQ(nn.Module):
    """``qf1, qf2`` fused: ``(obs [B, o], action [B, A]) -> [2, B]``."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        if len(set(hidden)) != 1:
            raise ValueError(f"TwinQ needs equal hidden widths, got {hidden}")
        self.net = ensemble_mlp(
            obs_dim + action_dim,
            1,
            hidden[0],
            len(hidden),
            ensemble_size=2,
            activation="relu",
            init="linear",
        )

    def forward(self, obs: Tensor, action: Tensor) -> Tensor:
        """``obs [B, o]``, ``action [B, A]`` -> both critics' values ``[2, B]``."""
        return self.net(torch.cat([obs, action], dim=-1)).squeeze(-1)


@dataclasses.dataclass(frozen=True)
class SACUpdateConfig(Config):
    """The SAC learner's settings (defaults: Stable-Baselines3's ``SAC``)."""

    learning_rate: float = 3e-4  # Adam step size of actor, critics and temperature
    gamma: float = 0.99  # discount
    tau: float = 0.005  # Polyak rate of the target critics
    autotune: bool = True  # learn the entropy coefficient toward target_entropy
    ent_coef: float = 1.0  # entropy coefficient alpha: initial when autotuning, else fixed
    target_entropy: float | None = None  # None: -dim(A); discrete: target_entropy_scale log A
    target_entropy_scale: float = 0.98  # discrete actions: share of the maximum entropy log A
    target_update_interval: int = 1  # gradient steps between target updates
    hidden: tuple[int, ...] = (256, 256)  # hidden widths of actor and critics

    def validate(self) -> None:
        """Positive rates, ``tau`` in (0, 1], ``gamma`` in [0, 1), positive hidden widths."""
        self.require(self.learning_rate > 0, "learning_rate", "must be > 0")
        self.require(0.0 < self.tau <= 1.0, "tau", "must be in (0, 1]")
        self.require(0.0 <= self.gamma < 1.0, "gamma", "must be in [0, 1)")
        self.require(self.ent_coef > 0, "ent_coef", "must be > 0")
        self.require(0 < self.target_entropy_scale < 1, "target_entropy_scale", "must be in (0, 1)")
        self.require(self.target_update_interval >= 1, "target_update_interval", "must be >= 1")
        self.require(
            len(self.hidden) >= 1 and min(self.hidden) >= 1,
            "hidden",
            "must be one or more layer widths >= 1",
        )
        self.require(
            len(set(self.hidden)) == 1,
            "hidden",
            "must have equal widths (the twin critics are one network)",
        )


class SACUpdate:
    """Networks, optimizers and the gradient step of SAC (see the module docstring).

    With ``autotune`` the entropy coefficient is learned from ``ent_coef`` toward
    ``target_entropy`` (default ``-A``), else fixed at ``ent_coef``, as in Stable-Baselines3.
    """

    SCALARS = ("critic_loss", "actor_loss", "ent_coef_loss", "alpha", "qf_mean", "entropy")

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        config: SACUpdateConfig | None = None,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        cfg = self.config = SACUpdateConfig() if config is None else config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            actor, critic = self.networks(obs_dim, action_dim, cfg.hidden)
            self.actor, self.critic = actor.to(device), critic.to(device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.gamma, self.tau, self.target_update_interval = (
            cfg.gamma,
            cfg.tau,
            cfg.target_update_interval,
        )
        self.auto_alpha = cfg.autotune
        self.target_entropy = (
            self.default_target_entropy(action_dim)
            if cfg.target_entropy is None
            else cfg.target_entropy
        )
        self.log_alpha = torch.tensor(math.log(cfg.ent_coef), device=device)
        lr = cfg.learning_rate
        self.actor_optimizer = FusedAdam(self.actor.parameters(), lr)
        self.critic_optimizer = FusedAdam(self.critic.parameters(), lr)
        self.alpha_optimizer = FusedAdam([self.log_alpha], lr) if self.auto_alpha else None
        self.generator = torch.Generator(device).manual_seed(seed + 1)
        self._critic_params = list(self.critic.parameters())
        self._target_params = list(self.critic_target.parameters())
        self.updates = 0
        self._sums = torch.zeros(len(self.SCALARS), device=device)
        self._count = 0

    def networks(self, obs_dim: int, action_dim: int, hidden: tuple[int, ...]) -> tuple[Any, Any]:
        """The actor and the twin critics (squashed Gaussian, ``Q(s, a)``)."""
        return SquashedGaussianActor(obs_dim, action_dim, hidden), TwinQ(
            obs_dim, action_dim, hidden
        )

    def default_target_entropy(self, action_dim: int) -> float:
        """``-dim(A)`` (Haarnoja et al. 2018b)."""
        return -float(action_dim)

    # -- acting ------------------------------------------------------------------------------
    @torch.inference_mode()
    def act(self, obs: Tensor, deterministic: bool) -> Tensor:
        """Actions ``[B, A]`` in [-1, 1] for ``obs [B, o]``."""
        if deterministic:
            return self.actor.deterministic(obs)
        return self.actor.sample(obs, self.generator)[0]

    # -- learning ----------------------------------------------------------------------------
    def update(
        self, obs: Tensor, action: Tensor, reward: Tensor, next_obs: Tensor, terminated: Tensor
    ) -> None:
        """One SAC gradient step on a batch (``action`` in [-1, 1], ``terminated`` float/bool).

        Truncated transitions bootstrap; only ``terminated`` cuts the target.
        """
        pi_action, log_prob = self.actor.sample(obs, self.generator)
        alpha = self.log_alpha.exp()
        if self.alpha_optimizer is not None:
            # loss -log_alpha (E[log pi] + target_entropy); its gradient is the bracket, negated
            entropy_gap = log_prob.detach().mean() + self.target_entropy
            ent_coef_loss = -self.log_alpha * entropy_gap
            self.alpha_optimizer.step([-entropy_gap])
        else:
            ent_coef_loss = torch.zeros((), device=alpha.device)

        with torch.no_grad():
            next_action, next_log_prob = self.actor.sample(next_obs, self.generator)
            next_q = self.critic_target(next_obs, next_action).amin(0) - alpha * next_log_prob
            not_done = 1.0 - terminated.to(reward.dtype)
            target_q = reward + self.gamma * not_done * next_q
        qf = self.critic(obs, action)  # [2, B]: qf1, qf2
        critic_loss = 0.5 * (qf - target_q).square().mean(1).sum()
        self.critic_optimizer.zero_grad()
        critic_loss.backward()
        self.critic_optimizer.step()

        for p in self._critic_params:  # the actor's gradient needs d q / d action only
            p.requires_grad_(False)
        min_qf_pi = self.critic(obs, pi_action).amin(0)
        actor_loss = (alpha * log_prob - min_qf_pi).mean()
        self.actor_optimizer.zero_grad()
        actor_loss.backward()
        self.actor_optimizer.step()
        for p in self._critic_params:
            p.requires_grad_(True)

        self.finish_step(critic_loss, actor_loss, ent_coef_loss, alpha, qf, -log_prob)

    def finish_step(
        self,
        critic_loss: Tensor,
        actor_loss: Tensor,
        ent_coef_loss: Tensor,
        alpha: Tensor,
        qf: Tensor,
        entropy: Tensor,
    ) -> None:
        """Count the step, move the target critics when due, accumulate the scalars."""
        self.updates += 1
        if self.updates % self.target_update_interval == 0:
            with torch.no_grad():
                torch._foreach_lerp_(self._target_params, self._critic_params, self.tau)
        with torch.no_grad():
            stats = torch.stack(
                [
                    critic_loss.detach(),
                    actor_loss.detach(),
                    ent_coef_loss.detach(),
                    alpha,
                    qf.detach().mean(),
                    entropy.detach().mean(),
                ]
            )
            self._sums += stats
        self._count += 1

    def scalars(self) -> dict[str, float]:
        """Means of the losses since the last call (one host sync); raises
        :class:`TrainingDivergedError` if any of them is not finite."""
        if not self._count:
            return {}
        count, self._count = self._count, 0
        hint = " (try a lower lr, or check rewards for extreme values)"
        return drain_means(self._sums, count, self.SCALARS, "SAC", self.updates, hint)

    # -- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Networks, target critics, temperature and optimizer states."""
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "log_alpha": self.log_alpha.clone(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "alpha_optimizer": None
            if self.alpha_optimizer is None
            else self.alpha_optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` wrote."""
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        if self.alpha_optimizer is not None and state["alpha_optimizer"] is not None:
            self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
        self.generator.set_state(state["generator"])
        self.updates = int(state["updates"])


class CategoricalActor(nn.Module):
    """``obs [B, o]`` -> the logits ``[B, A]`` of a categorical policy over ``A`` actions."""

    def __init__(self, obs_dim: int, num_actions: int, hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        self.trunk = _mlp([obs_dim, *hidden])
        self.head = nn.Linear(hidden[-1], num_actions)

    def forward(self, obs: Tensor) -> Tensor:
        """``obs [B, o]`` -> logits ``[B, A]``."""
        return self.head(self.trunk(obs))


class DiscreteTwinQ(nn.Module):
    """``qf1, qf2`` for every action at once, fused: ``obs [B, o] -> [2, B, A]``."""

    def __init__(self, obs_dim: int, num_actions: int, hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        if len(set(hidden)) != 1:
            raise ValueError(f"DiscreteTwinQ needs equal hidden widths, got {hidden}")
        self.net = ensemble_mlp(
            obs_dim, num_actions, hidden[0], len(hidden), ensemble_size=2, activation="relu",
            init="linear",
        )  # fmt: skip

    def forward(self, obs: Tensor) -> Tensor:
        """``obs [B, o]`` -> both critics' values of every action, ``[2, B, A]``."""
        return self.net(obs)


class DiscreteSACUpdate(SACUpdate):
    """SAC for ``A`` discrete actions (Christodoulou 2019; see the module docstring): the same
    optimizers, temperature, targets, scalars and checkpoints as :class:`SACUpdate`, with the
    expectations over the policy computed exactly from its probabilities."""

    def networks(self, obs_dim: int, action_dim: int, hidden: tuple[int, ...]) -> tuple[Any, Any]:
        """A categorical actor and twin critics with one output per action."""
        return CategoricalActor(obs_dim, action_dim, hidden), DiscreteTwinQ(
            obs_dim, action_dim, hidden
        )

    def default_target_entropy(self, action_dim: int) -> float:
        """``target_entropy_scale * log A`` (Christodoulou 2019: 0.98 of the uniform policy's
        entropy)."""
        return self.config.target_entropy_scale * math.log(action_dim)

    @torch.inference_mode()
    def act(self, obs: Tensor, deterministic: bool) -> Tensor:
        """Action indices ``[B]`` for ``obs [B, o]``: the argmax, or a sample."""
        logits = self.actor(obs)
        if deterministic:
            return logits.argmax(-1)
        return torch.multinomial(logits.softmax(-1), 1, generator=self.generator).squeeze(-1)

    def update(  # type: ignore[override]
        self, obs: Tensor, action: Tensor, reward: Tensor, next_obs: Tensor, terminated: Tensor
    ) -> None:
        """One discrete SAC step on a batch (``action [B]`` indices, long)."""
        log_pi = self.actor(obs).log_softmax(-1)  # [B, A]
        pi = log_pi.exp()
        entropy = -(pi * log_pi).sum(-1)  # [B], exact
        alpha = self.log_alpha.exp()
        if self.alpha_optimizer is not None:
            # loss -log_alpha (target_entropy - H(pi)); its gradient is the bracket, negated
            entropy_gap = self.target_entropy - entropy.detach().mean()
            ent_coef_loss = -self.log_alpha * entropy_gap
            self.alpha_optimizer.step([-entropy_gap])
        else:
            ent_coef_loss = torch.zeros((), device=alpha.device)

        with torch.no_grad():
            next_log_pi = self.actor(next_obs).log_softmax(-1)
            next_q = self.critic_target(next_obs).amin(0) - alpha * next_log_pi  # [B, A]
            next_v = (next_log_pi.exp() * next_q).sum(-1)
            not_done = 1.0 - terminated.to(reward.dtype)
            target_q = reward + self.gamma * not_done * next_v
        index = action.long().view(1, -1, 1).expand(2, -1, 1)
        qf = self.critic(obs).gather(-1, index).squeeze(-1)  # [2, B]: qf1, qf2 of the taken a
        critic_loss = 0.5 * (qf - target_q).square().mean(1).sum()
        self.critic_optimizer.zero_grad()
        critic_loss.backward()
        self.critic_optimizer.step()

        with torch.no_grad():  # the fresh critics, as in the continuous step
            min_qf_pi = self.critic(obs).amin(0)  # [B, A]
        actor_loss = (pi * (alpha * log_pi - min_qf_pi)).sum(-1).mean()
        self.actor_optimizer.zero_grad()
        actor_loss.backward()
        self.actor_optimizer.step()
        self.finish_step(critic_loss, actor_loss, ent_coef_loss, alpha, qf, entropy)
