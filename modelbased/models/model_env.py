"""A batched imagined environment over a learned world model.

``ModelEnv`` steps a batch of particles through an ensemble the way PETS samples trajectories
(Chua et al. 2018, section 4.2) and MBPO branches rollouts (Janner et al. 2019, algorithm 2).
Propagation modes:

* ``expectation`` — every member predicts from the same state; the next state and reward are
  the mean of the members' means (PETS's "E"; no sampling).
* ``ts1`` — each particle uses a random member at every step, with aleatoric noise (TS1).
* ``tsinf`` — each particle keeps one member for the whole rollout, with noise (TS-inf).
* ``mean-member`` — as ``tsinf`` but each member's mean, without aleatoric noise: the spread
  of particles is then the ensemble's disagreement alone.

For the sampling modes the particles are grouped by member with one random permutation (fixed
at :meth:`reset` for ``tsinf``/``mean-member``, redrawn each step for ``ts1``), so a step is one
batched forward of shape ``[E, N / E, ...]``: no Python loop over members and no member computes
rows it does not own. ``N`` is padded up to a multiple of ``E``.

A known ``reward_fn(obs, act, next_obs) -> [N]`` or ``termination_fn(obs, act, next_obs) ->
bool [N]`` replaces the learned head, as PETS does. Once a particle terminates, its later
rewards count zero. With ``elites_only`` the sampling modes use only the model's ``elites``
(MBPO's rollouts); otherwise every member.

Tensors follow the particles: member indices and returns are made on the device of the states
given to :meth:`ModelEnv.reset` (the model's), and the random permutations on the generator's
device, then moved there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

import torch
from torch import Tensor

Propagation = Literal["expectation", "ts1", "tsinf", "mean-member"]
PROPAGATIONS: tuple[str, ...] = ("expectation", "ts1", "tsinf", "mean-member")
RewardFn = Callable[[Tensor, Tensor, Tensor], Tensor]
TerminationFn = Callable[[Tensor, Tensor, Tensor], Tensor]


class WorldModel(Protocol):
    """What ``ModelEnv`` needs of a model (``EnsembleModel`` provides it)."""

    ensemble_size: int

    def sample(
        self,
        obs: Tensor,
        action: Tensor,
        generator: torch.Generator | None = None,
        deterministic: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``obs``, ``action`` with a leading member dim ``[E, B, ·]`` -> sampled next obs ``[E,
        B, o]``, reward ``[E, B]`` and termination ``[E, B]`` (the members' means if
        ``deterministic``)."""

    def predict(self, obs: Tensor, action: Tensor) -> Any:
        """Per-member means and variances of next obs and reward (for ``expectation``)."""


class ModelEnv:
    """Imagined environment: ``reset(obs [B, o], num_particles) -> [B*P, o]``, then
    ``step(action [B*P, a]) -> (next_obs, reward, terminated, info)``."""

    def __init__(
        self,
        model: WorldModel,
        reward_fn: RewardFn | None = None,
        termination_fn: TerminationFn | None = None,
        propagation: Propagation = "tsinf",
        generator: torch.Generator | None = None,
        elites_only: bool = False,
    ) -> None:
        if propagation not in PROPAGATIONS:
            raise ValueError(f"propagation {propagation!r}: expected one of {PROPAGATIONS}")
        self.model = model
        self.reward_fn, self.termination_fn = reward_fn, termination_fn
        self.propagation = propagation
        self.generator = generator
        self.elites_only = elites_only
        self.state: Tensor | None = None
        self.done: Tensor | None = None
        self._order: Tensor | None = None

    @property
    def num_members(self) -> int:
        """The model's number of members ``E``."""
        return self.model.ensemble_size

    def reset(self, obs: Tensor, num_particles: int = 1) -> Tensor:
        """Start ``num_particles`` particles from each row of ``obs [B, o]``; rows of the result
        are grouped by start state: particle ``p`` of state ``b`` is row ``b * P + p``."""
        self.state = obs.repeat_interleave(num_particles, dim=0)
        self.done = torch.zeros(len(self.state), dtype=torch.bool, device=obs.device)
        self._order = self._draw_order(len(self.state)) if self.propagation != "ts1" else None
        return self.state

    def members(self) -> Tensor:
        """``[N]`` the member each particle uses at the next step (``-1`` for expectation)."""
        if self.state is None:
            raise RuntimeError("call reset() before members()")
        n, device = len(self.state), self.state.device
        if self.propagation == "expectation":
            return torch.full((n,), -1, dtype=torch.long, device=device)
        order = self._order if self._order is not None else self._draw_order(n)
        active = self._active()
        member = torch.empty(len(order), dtype=torch.long, device=device)
        slot = torch.arange(len(order), device=device) // (len(order) // len(active))
        member[order] = active[slot]
        return member[:n]

    def _device(self) -> torch.device:
        """Where the particles live (the device of the states given to :meth:`reset`)."""
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        return self.state.device

    def _active(self) -> Tensor:
        """The members the sampling modes spread particles over: all, or the model's elites
        with ``elites_only`` (MBPO draws each imagined step from a random elite)."""
        device = self._device()
        elites = getattr(self.model, "elites", None) if self.elites_only else None
        if elites is None:
            return torch.arange(self.num_members, device=device)
        return elites.to(device)

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
        """Advance every particle one step; returns ``next_obs [N, o]``, ``reward [N]`` (zero
        for particles already terminated), ``terminated [N]`` (sticky) and ``info``."""
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        obs = self.state
        if self.propagation == "expectation":
            next_obs, reward, model_done = self._expectation(obs, action)
        else:
            order = self._order if self.propagation != "ts1" else self._draw_order(len(obs))
            next_obs, reward, model_done = self._grouped(obs, action, order)
        if self.reward_fn is not None:
            reward = self.reward_fn(obs, action, next_obs)
        if self.termination_fn is not None:
            terminated = self.termination_fn(obs, action, next_obs).bool()
        else:
            terminated = model_done
        reward = torch.where(self.done, torch.zeros_like(reward), reward)
        self.done = self.done | terminated
        self.state = next_obs
        return next_obs, reward, self.done.clone(), {}

    def mean_step(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """The members' mean next state ``[N, o]`` and reward ``[N]`` (the known reward of the
        mean transition if given) from ``obs [N, o]``, ``action [N, a]``; differentiable (no
        sampling, no state kept), for gradient-based planners such as iLQR. Only the elites
        with ``elites_only``; termination is not modelled."""
        if self.reward_fn is not None:
            next_obs = self.mean_next_obs(obs, action)
            return next_obs, self.reward_fn(obs, action, next_obs)
        pred = self.model.predict(obs, action)
        next_obs, reward = pred.next_obs_mean, pred.reward_mean
        elites = getattr(self.model, "elites", None) if self.elites_only else None
        if elites is not None:
            next_obs, reward = next_obs[elites], reward[elites]
        return next_obs.mean(0), reward.mean(0)

    def mean_next_obs(self, obs: Tensor, action: Tensor) -> Tensor:
        """The members' mean next state ``[N, o]`` alone (known dynamics: the physics), as in
        :meth:`mean_step`; with a known ``reward_fn`` a planner may step this and score all
        steps afterwards in one batch."""
        physics = getattr(self.model, "step", None)  # known dynamics: the physics alone
        if physics is not None:
            return physics(obs, action)
        next_obs = self.model.predict(obs, action).next_obs_mean
        elites = getattr(self.model, "elites", None) if self.elites_only else None
        if elites is not None:
            next_obs = next_obs[elites]
        return next_obs.mean(0)

    def _expectation(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        pred = self.model.predict(obs, action)
        logit = pred.termination_logit
        if logit is not None:
            done = logit.mean(0) > 0
        else:
            done = torch.zeros(len(obs), dtype=torch.bool, device=obs.device)
        return pred.next_obs_mean.mean(0), pred.reward_mean.mean(0), done

    def _grouped(self, obs: Tensor, action: Tensor, order: Tensor) -> tuple[Tensor, ...]:
        """One batched sample with particle ``order[i]`` on active member ``i // (len(order) /
        k)`` (``k`` active members); rows of inactive members are computed and dropped."""
        n, e = len(obs), self.num_members
        padded, active = len(order), self._active()
        # padding rows repeat the last particle; dropped below
        idx = order.clamp(max=n - 1).reshape(len(active), padded // len(active))
        if len(active) < e:
            full = idx.new_full((e, idx.shape[1]), n - 1)
            full[active] = idx
            idx = full
        deterministic = self.propagation == "mean-member"
        next_obs, reward, done = self.model.sample(
            obs[idx], action[idx], self.generator, deterministic
        )
        if len(active) < e:
            next_obs, reward, done = next_obs[active], reward[active], done[active]
        # scatter all padded rows back to particle order and keep the first n: no boolean
        # mask, so no data-dependent shape (and no host sync on an accelerator)
        out_obs = torch.empty(padded, obs.shape[1], dtype=next_obs.dtype, device=obs.device)
        out_reward = torch.empty(padded, dtype=reward.dtype, device=obs.device)
        out_done = torch.empty(padded, dtype=torch.bool, device=obs.device)
        out_obs[order] = next_obs.reshape(padded, -1)
        out_reward[order] = reward.reshape(padded)
        out_done[order] = done.reshape(padded)
        return out_obs[:n], out_reward[:n], out_done[:n]

    def _draw_order(self, n: int) -> Tensor:
        """A random permutation of ``n`` particles padded to a multiple of the active members."""
        e = len(self._active())
        padded = -(-n // e) * e
        device, generator = self._device(), self.generator
        drawn_on = generator.device if generator is not None else device
        return torch.randperm(padded, generator=generator, device=drawn_on).to(device)

    @torch.inference_mode()
    def evaluate_action_sequences(
        self,
        obs: Tensor,
        action_sequences: Tensor,
        num_particles: int,
        gamma: float = 1.0,
        terminal_value: Callable[[Tensor], Tensor] | None = None,
        uncertainty_penalty: float = 0.0,
    ) -> Tensor:
        """Mean over particles of each sequence's imagined discounted return.

        ``obs [B, o]``, ``action_sequences [B, K, H, a]`` -> ``[B, K]``. Optionally adds
        ``gamma^H V(s_H)`` for particles still alive, and subtracts ``uncertainty_penalty`` times
        the particles' disagreement at each step (the variance of the next states across the
        particles of a sequence, mean over dims: under ``tsinf``/``mean-member`` the spread
        between ensemble members).
        """
        B, K, H, _ = action_sequences.shape
        P = num_particles
        self.reset(obs.repeat_interleave(K, dim=0), P)  # [B*K*P, o]
        actions = action_sequences.reshape(B * K, H, -1).repeat_interleave(P, dim=0)
        total = torch.zeros(B * K * P, device=obs.device, dtype=obs.dtype)
        discount = 1.0
        for t in range(H):
            next_obs, reward, _, _ = self.step(actions[:, t])
            total = total + discount * reward  # the model's dtype, if wider than obs's
            if uncertainty_penalty:
                spread = next_obs.reshape(B * K, P, -1).var(1, correction=0).mean(-1)
                total = total - discount * uncertainty_penalty * spread.repeat_interleave(P)
            discount *= gamma
        if terminal_value is not None:
            total = total + discount * torch.where(self.done, 0.0, terminal_value(self.state))
        return total.reshape(B, K, P).mean(-1)

    @torch.inference_mode()
    def rollout_actions(
        self, obs: Tensor, actions: Tensor, num_particles: int
    ) -> dict[str, Tensor]:
        """Open-loop rollout of fixed action sequences ``actions [B, H, a]`` from ``obs [B, o]``:
        ``obs [H+1, B, P, o]``, ``reward [H, B, P]``, ``terminated [H, B, P]``."""
        B, H, _ = actions.shape
        states = [self.reset(obs, num_particles)]
        rewards, dones = [], []
        per_particle = actions.repeat_interleave(num_particles, dim=0)
        for t in range(H):
            next_obs, reward, done, _ = self.step(per_particle[:, t])
            states.append(next_obs)
            rewards.append(reward)
            dones.append(done)
        shape = (B, num_particles)
        return {
            "obs": torch.stack(states).reshape(H + 1, *shape, -1),
            "reward": torch.stack(rewards).reshape(H, *shape),
            "terminated": torch.stack(dones).reshape(H, *shape),
        }

    @torch.inference_mode()
    def rollout_policy(
        self, obs: Tensor, policy: Callable[[Tensor], Tensor], horizon: int
    ) -> dict[str, Tensor]:
        """Branched rollouts of ``policy`` from ``obs [B, o]`` (MBPO): transitions stacked as
        ``[H, B, ...]`` with ``alive [H, B]`` marking those taken before termination."""
        state = self.reset(obs, 1)
        keys = ("obs", "action", "reward", "next_obs", "terminated", "alive")
        out: dict[str, list[Tensor]] = {k: [] for k in keys}
        for _ in range(horizon):
            alive = ~self.done
            action = policy(state)
            next_obs, reward, done, _ = self.step(action)
            for key, value in zip(
                keys, (state, action, reward, next_obs, done, alive), strict=True
            ):
                out[key].append(value)
            state = next_obs
        return {k: torch.stack(v) for k, v in out.items()}
