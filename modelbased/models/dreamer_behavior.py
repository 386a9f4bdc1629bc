"""Behaviour learning in imagination (Dreamer: Hafner et al. 2020, "Dream to control";
V2 2021; V3 2023): an actor and a critic trained on trajectories the world model imagines.

    from posterior states s_0 [N] of a replayed batch (detached):
        for t < H:  a_t ~ pi(a | sg(s_t)),  s_{t+1} ~ p(s | s_t, a_t)     (prior rollout)
        r_t, c_t = reward and continue heads at s_{t+1};  v_t = critic(s_t)
        R^lambda_t = r_t + gamma c_t ((1 - lambda) v_{t+1} + lambda R^lambda_{t+1}),  R_H = v_H
        w_t = prod_{i<t} gamma c_i  (c_0: the real continue flag of s_0)
        critic: minimise w_t * NLL(sg(R^lambda_t) | v(s_t))  (+ NLL of the slow critic's value)
        actor:  maximise w_t * (R_t / S + eta H[pi(.|s_t)]) by dynamics backpropagation
                (continuous), or w_t * (log pi(a_t|s_t) sg((R_t - v_t) / S) + eta H) (REINFORCE,
                discrete); S = max(1, EMA of Per95(R) - Per5(R)) with return normalisation (V3),
                else 1
        slow critic <- (1 - tau) slow critic + tau critic

The rollout loop holds only the actor and the RSSM's prior step; rewards, continues and values
are computed over all ``[H+1, N]`` states at once. The world model's weights are frozen during
the rollout (gradients reach actions through its activations, never its parameters).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Iterator
from typing import Any, Literal

import torch
from torch import Tensor, nn

from modelbased.core.config import Config
from modelbased.models.dreamer_heads import Actor, ScalarHead
from modelbased.models.rssm import RSSM, Latent
from modelbased.models.rssm_world_model import WorldModel


@dataclasses.dataclass(frozen=True)
class BehaviorConfig(Config):
    """Actor and critic trained in imagination (defaults: DreamerV3)."""

    horizon: int = 15  # H, imagined steps per start state
    gamma: float = 0.997  # discount (V3: 1 - 1/333)
    lam: float = 0.95  # lambda of the lambda-returns
    hidden: int = 0  # units of the actor and critic MLPs (0: from the agent's size)
    layers: int = 0  # their layers (0: from size)
    actor_grad: Literal["auto", "dynamics", "reinforce"] = "auto"  # auto: dynamics if continuous
    entropy: float = 3e-4  # eta, weight of the policy's entropy
    normalize_returns: bool = True  # divide by max(1, EMA of the 5th-95th percentile range) (V3)
    norm_decay: float = 0.99  # EMA decay of the percentiles
    critic_head: Literal["twohot", "mse"] = "twohot"  # critic regression (V3 twohot)
    critic_target: Literal["online", "slow"] = "online"  # critic bootstrapping the returns
    slow_reg: float = 1.0  # weight of the regulariser toward the slow critic (V3)
    slow_rate: float = 0.02  # tau of the slow critic's EMA, per update
    actor_lr: float = 3e-5  # actor's Adam step size
    critic_lr: float = 3e-5  # critic's Adam step size
    eps: float = 1e-5  # Adam epsilon
    grad_clip: float = 100.0  # gradient clipping by global norm (each network)
    min_std: float = 0.1  # continuous actor's smallest std
    max_std: float = 1.0  # and its largest
    unimix: float = 0.01  # uniform mixing of the discrete actor
    imagine_starts: int = 0  # start states per update drawn from the B*T posteriors (0: all)
    # torch.compile the imagination step (benchmarks/dreamer.py --part speed: 0.86x the eager
    # CPU time at xs; compiling costs seconds of CPU and more of wall time at the start)
    compile: bool = False

    def validate(self) -> None:
        """A horizon >= 1, discounts in (0, 1], positive rates."""
        self.require(self.horizon >= 1, "horizon", "must be >= 1")
        self.require(0 < self.gamma <= 1, "gamma", "must be in (0, 1]")
        self.require(0 <= self.lam <= 1, "lam", "must be in [0, 1]")
        self.require(0 <= self.norm_decay < 1, "norm_decay", "must be in [0, 1)")
        self.require(0 < self.slow_rate <= 1, "slow_rate", "must be in (0, 1]")
        for key in ("hidden", "layers", "entropy", "slow_reg", "imagine_starts"):
            self.require(getattr(self, key) >= 0, key, "must be >= 0")
        for key in ("actor_lr", "critic_lr", "eps", "grad_clip", "min_std"):
            self.require(getattr(self, key) > 0, key, "must be > 0")
        self.require(self.max_std >= self.min_std, "max_std", "must be >= min_std")


def lambda_returns(reward: Tensor, cont: Tensor, value: Tensor, gamma: float, lam: float) -> Tensor:
    """``R^lambda [H, N]`` from ``reward, cont [H, N]`` (of steps 1..H) and ``value [H+1, N]``."""
    out, last = [], value[-1]
    for t in reversed(range(reward.shape[0])):
        last = reward[t] + gamma * cont[t] * ((1 - lam) * value[t + 1] + lam * last)
        out.append(last)
    return torch.stack(out[::-1])


class PercentileNormalizer(nn.Module):
    """V3's return scale: EMAs of the 5th and 95th percentiles of returns; ``(offset, scale) =
    (low, max(1, high - low))``."""

    low: Tensor
    high: Tensor
    count: Tensor

    def __init__(self, decay: float = 0.99, low: float = 0.05, high: float = 0.95) -> None:
        super().__init__()
        self.decay, self.q = decay, torch.tensor([low, high])
        self.register_buffer("low", torch.zeros(()))
        self.register_buffer("high", torch.zeros(()))
        self.register_buffer("count", torch.zeros(()))

    @torch.no_grad()
    def update(self, returns: Tensor) -> tuple[Tensor, Tensor]:
        """Fold in ``returns [*]``; ``(offset, scale)``. The first update sets the EMAs."""
        low, high = torch.quantile(returns.detach().flatten().float(), self.q.to(returns.device))
        d = self.decay if self.count > 0 else 0.0
        self.low.mul_(d).add_((1 - d) * low)
        self.high.mul_(d).add_((1 - d) * high)
        self.count += 1
        return self.low.clone(), torch.clamp(self.high - self.low, min=1.0)


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """No parameter gradients for ``modules`` inside (activations still carry them)."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class ActorCritic(nn.Module):
    """The actor, the critic and its slow copy, their optimizers, and :meth:`update`."""

    def __init__(
        self,
        config: BehaviorConfig,
        feat: int,
        action_dim: int,
        discrete: bool,
        hidden: int,
        layers: int,
        act: str,
        norm: bool,
    ) -> None:
        super().__init__()
        c = self.config = config
        self.discrete = discrete
        self.actor = Actor(
            feat, action_dim, discrete, hidden, layers, act, norm, c.min_std, c.max_std, c.unimix
        )
        self.critic = ScalarHead(feat, hidden, layers, act, norm, c.critic_head)
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.normalizer = PercentileNormalizer(c.norm_decay)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), c.actor_lr, eps=c.eps)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), c.critic_lr, eps=c.eps)
        self.reinforce = c.actor_grad == "reinforce" or (c.actor_grad == "auto" and discrete)
        self.step = (
            torch.compile(self.imagine_step, dynamic=False) if c.compile else self.imagine_step
        )

    def action_noise(
        self, shape: tuple[int, ...], generator: torch.Generator | None, device
    ) -> Tensor:
        """Noise for :meth:`Actor.sample`: uniforms ``[*]`` (discrete) or normals ``[*, A]``."""
        if self.discrete:
            return torch.rand(*shape, generator=generator, device=device)
        return torch.randn(*shape, self.actor.action_dim, generator=generator, device=device)

    def imagine_step(
        self, rssm: RSSM, deter: Tensor, stoch: Tensor, a_noise: Tensor, z_noise: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One imagined step from ``s_t = (deter, stoch) [N]``: ``a_t ~ pi(. | sg(s_t))``, then
        the prior; ``(deter, stoch, a_t)``. Compiled by ``torch.compile`` with ``compile``."""
        feat = torch.cat([deter, stoch], -1).detach()
        action = self.actor.sample(self.actor.dist_params(feat), a_noise)
        state, _ = rssm.img_step(Latent(deter, stoch), action, z_noise)
        return state.deter, state.stoch, action

    def imagine(
        self, model: WorldModel, start: Latent, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor]:
        """Roll the prior ``H`` steps under the actor: features ``[H+1, N, F]`` and actions
        ``[H, N, A]``."""
        H, N, device = self.config.horizon, start.deter.shape[0], start.deter.device
        z_noise = model.rssm.noise((H, N), generator, device)
        a_noise = self.action_noise((H, N), generator, device)
        deter, stoch, feats, actions = start.deter, start.stoch, [start.feat()], []
        for t in range(H):
            deter, stoch, action = self.step(model.rssm, deter, stoch, a_noise[t], z_noise[t])
            feats.append(torch.cat([deter, stoch], -1))
            actions.append(action)
        return torch.stack(feats), torch.stack(actions)

    def update(
        self, model: WorldModel, start: Latent, cont0: Tensor, generator: torch.Generator | None
    ) -> dict[str, Tensor]:
        """One actor and one critic step from start states ``[N]`` (detached) with their real
        continue flags ``cont0 [N]``; detached scalars."""
        c = self.config
        start = Latent(start.deter.detach(), start.stoch.detach())
        with frozen(model, self.critic):
            # Imagine: roll the prior H steps under the actor
            with torch.no_grad() if self.reinforce else contextlib.nullcontext():
                feats, actions = self.imagine(model, start, generator)
            H, N = actions.shape[:2]
            reward = model.reward.mean(model.reward(feats[1:].flatten(0, 1))).view(H, N)
            cont = model.cont.mean(model.cont(feats[1:].flatten(0, 1))).view(H, N)
            value = self.critic.mean(self.critic(feats.flatten(0, 1))).view(H + 1, N)
            with torch.no_grad():
                slow = self.slow_critic.mean(self.slow_critic(feats.flatten(0, 1))).view(H + 1, N)
            boot = slow if c.critic_target == "slow" else value
            returns = lambda_returns(reward, cont, boot, c.gamma, c.lam)  # [H, N]
            disc = torch.cat([cont0[None], cont[:-1]]) * c.gamma
            weight = (torch.cumprod(disc, 0) / c.gamma).detach()  # w_0 = c_0
            # Actor: returns scaled by S, dynamics backpropagation or REINFORCE, entropy bonus
            if c.normalize_returns:
                offset, scale = self.normalizer.update(returns)
            else:
                offset, scale = torch.zeros(()), torch.ones(())
            params = self.actor.dist_params(feats[:-1].detach())
            normed = (returns - offset) / scale
            if self.reinforce:
                advantage = (normed - (value[:-1] - offset) / scale).detach()
                objective = self.actor.log_prob(params, actions) * advantage
            else:
                objective = normed
            entropy = self.actor.entropy(params)
            actor_loss = -(weight * (objective + c.entropy * entropy)).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        nn.utils.clip_grad_norm_(self.actor.parameters(), c.grad_clip)
        self.actor_opt.step()
        # Critic: regress v(s_t) on sg(R^lambda_t), regularised toward the slow critic
        out = self.critic(feats[:-1].detach().flatten(0, 1))
        target = returns.detach().flatten()
        critic_loss = self.critic.loss(out, target)
        if c.slow_reg:
            critic_loss = critic_loss + c.slow_reg * self.critic.loss(out, slow[:-1].flatten())
        critic_loss = (weight.flatten() * critic_loss).mean()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        nn.utils.clip_grad_norm_(self.critic.parameters(), c.grad_clip)
        self.critic_opt.step()
        with torch.no_grad():  # slow critic <- (1 - tau) slow + tau critic
            for slow_p, p in zip(
                self.slow_critic.parameters(), self.critic.parameters(), strict=True
            ):
                slow_p.lerp_(p, c.slow_rate)
        return {
            "actor_loss": actor_loss.detach(),
            "critic_loss": critic_loss.detach(),
            "entropy": entropy.detach().mean(),
            "imag_return": returns.detach().mean(),
            "imag_reward": reward.detach().mean(),
            "return_scale": scale.detach(),
        }

    def optim_state(self) -> dict[str, Any]:
        """The actor's and critic's optimizer states."""
        return {
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
        }

    def load_optim_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`optim_state`."""
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
