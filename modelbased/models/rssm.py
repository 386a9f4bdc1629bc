"""The recurrent state-space model (RSSM) of PlaNet and Dreamer (Hafner et al. 2019, "Learning
latent dynamics for planning from pixels"; 2020 "Dream to control"; 2021 "Mastering Atari with
discrete world models" (V2); 2023 "Mastering diverse domains through world models" (V3)).

The latent state is ``s_t = (h_t, z_t)``: a deterministic GRU path ``h_t [*, D]`` and a
stochastic part ``z_t``, either a diagonal Gaussian ``[*, S]`` (PlaNet, V1; ``classes = 0``) or
``S`` categoricals of ``C`` classes ``[*, S * C]`` sampled one-hot with straight-through
gradients and ``unimix`` uniform mixing of the probabilities (V2, V3)::

    h_t = GRU(h_{t-1}, MLP(z_{t-1}, a_{t-1}))        deterministic path
    z_t ~ p(z_t | h_t)                               prior (dynamics, for imagination)
    z_t ~ q(z_t | h_t, e_t)                          posterior (representation), e_t = enc(o_t)

The GRU is the layer-normalised one of V2/V3 (one linear map of ``[x, h]`` to the three gates,
update gate biased by -1). Distribution parameters ("stats") are ``[*, S, C]`` logits for
categoricals and ``[*, 2, S]`` (mean, std) for Gaussians. Sampling takes its noise as an
argument (drawn once per sequence outside the loops), so the loops hold only the network calls.

:func:`kl_loss` is the KL term with balancing and free bits: ``dyn * max(free, KL[sg(q) || p])
+ rep * max(free, KL[q || sg(p)])`` (V2: dyn 0.8, rep 0.2; V3: dyn 0.5, rep 0.1; V1:
dyn = rep, the plain KL).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modelbased.core.config import Config
from modelbased.models.layers import activation


@dataclasses.dataclass(frozen=True)
class RSSMConfig(Config):
    """Sizes and distribution of the RSSM's latent state."""

    deter: int = 256  # D, GRU units of the deterministic path h
    hidden: int = 256  # units of the MLPs around the GRU
    stoch: int = 32  # S, categorical latents (or Gaussian dimensions with classes 0)
    classes: int = 32  # C, classes per categorical latent; 0: a diagonal Gaussian (V1, PlaNet)
    unimix: float = 0.01  # share of the uniform distribution mixed into categoricals
    min_std: float = 0.1  # floor of the Gaussian's std
    act: str = "silu"  # activation of the MLPs
    norm: bool = True  # layer norm in the MLPs and the GRU

    def validate(self) -> None:
        """Positive sizes, ``classes`` 0 or >= 2, ``unimix`` in [0, 1)."""
        for key in ("deter", "hidden", "stoch"):
            self.require(getattr(self, key) >= 1, key, "must be >= 1")
        self.require(self.classes == 0 or self.classes >= 2, "classes", "must be 0 or >= 2")
        self.require(0 <= self.unimix < 1, "unimix", "must be in [0, 1)")
        self.require(self.min_std > 0, "min_std", "must be > 0")

    @property
    def stoch_size(self) -> int:
        """Width of the flattened ``z``."""
        return self.stoch * max(self.classes, 1)

    @property
    def feat_size(self) -> int:
        """Width of the model state ``[h, z]`` the heads read."""
        return self.deter + self.stoch_size


class Latent(NamedTuple):
    """A batch of model states: ``deter [*, D]``, ``stoch [*, S*C]`` (or ``[*, S]``)."""

    deter: Tensor
    stoch: Tensor

    def feat(self) -> Tensor:
        """``[h, z]``: ``[*, D + S*C]``."""
        return torch.cat([self.deter, self.stoch], -1)


def dense(inp: int, out: int, act: str, norm: bool) -> nn.Sequential:
    """Linear (bias only without norm), layer norm, activation: the block of every MLP."""
    layers: list[nn.Module] = [nn.Linear(inp, out, bias=not norm)]
    if norm:
        layers.append(nn.LayerNorm(out, eps=1e-3))
    layers.append(activation(act))
    return nn.Sequential(*layers)


class NormGRUCell(nn.Module):
    """The GRU of Dreamer V2/V3: ``[r, c, u] = LN(W [x, h])``, ``h' = u c + (1 - u) h`` with
    ``r = sigma(r)``, ``c = tanh(r c)``, ``u = sigma(u - 1)``."""

    def __init__(self, inp: int, size: int, norm: bool = True) -> None:
        super().__init__()
        self.linear = nn.Linear(inp + size, 3 * size, bias=not norm)
        self.norm = nn.LayerNorm(3 * size, eps=1e-3) if norm else nn.Identity()

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        """``x [*, in]``, ``h [*, D]`` -> ``h' [*, D]``."""
        reset, cand, update = self.norm(self.linear(torch.cat([x, h], -1))).chunk(3, -1)
        reset = torch.sigmoid(reset)
        cand = torch.tanh(reset * cand)
        update = torch.sigmoid(update - 1)
        return update * cand + (1 - update) * h


class RSSM(nn.Module):
    """Prior, posterior and the GRU path over ``action_dim`` actions and ``embed_dim``
    observation embeddings; see the module docstring."""

    def __init__(self, config: RSSMConfig, action_dim: int, embed_dim: int) -> None:
        super().__init__()
        c = self.config = config
        stats = c.stoch * c.classes if c.classes else 2 * c.stoch
        self.img_in = dense(c.stoch_size + action_dim, c.hidden, c.act, c.norm)
        self.gru = NormGRUCell(c.hidden, c.deter, c.norm)
        self.img_out = nn.Sequential(
            dense(c.deter, c.hidden, c.act, c.norm), nn.Linear(c.hidden, stats)
        )
        self.obs_out = nn.Sequential(
            dense(c.deter + embed_dim, c.hidden, c.act, c.norm), nn.Linear(c.hidden, stats)
        )

    # -- distributions --------------------------------------------------------------------------
    def initial(self, batch: int, device: torch.device | str) -> Latent:
        """Zero states ``[batch, ...]``."""
        c = self.config
        return Latent(
            torch.zeros(batch, c.deter, device=device),
            torch.zeros(batch, c.stoch_size, device=device),
        )

    def stats(self, raw: Tensor) -> Tensor:
        """Network output -> distribution parameters: logits ``[*, S, C]`` (log of the
        unimix-mixed probabilities) or ``[*, 2, S]`` (mean, std)."""
        c = self.config
        if c.classes:
            logits = raw.unflatten(-1, (c.stoch, c.classes))
            if c.unimix:
                probs = (1 - c.unimix) * torch.softmax(logits, -1) + c.unimix / c.classes
                logits = torch.log(probs)
            return logits
        mean, std = raw.unflatten(-1, (2, c.stoch)).unbind(-2)
        return torch.stack([mean, F.softplus(std) + c.min_std], -2)

    def noise(self, shape: tuple[int, ...], generator: torch.Generator | None, device) -> Tensor:
        """Noise for :meth:`sample` of ``shape`` leading dims: uniforms ``[*, S]`` for
        categoricals, standard normals ``[*, S]`` for Gaussians."""
        c = self.config
        draw = torch.rand if c.classes else torch.randn
        return draw(*shape, c.stoch, generator=generator, device=device)

    def sample(self, stats: Tensor, noise: Tensor | None) -> Tensor:
        """``z [*, S*C]`` from ``stats``: one-hot draws with straight-through gradients
        (``onehot + p - sg(p)``) or ``mean + std * eps``; the mode when ``noise`` is None."""
        c = self.config
        if c.classes:
            probs = torch.softmax(stats, -1)
            if noise is None:
                index = probs.argmax(-1)
            else:  # inverse CDF: the first class whose cumulative probability exceeds u
                below = (probs.cumsum(-1) < noise.unsqueeze(-1)).sum(-1)
                index = below.clamp(max=c.classes - 1)
            onehot = F.one_hot(index, c.classes).to(probs.dtype)
            return (onehot + probs - probs.detach()).flatten(-2)
        mean, std = stats.unbind(-2)
        return mean if noise is None else mean + std * noise

    # -- one step ------------------------------------------------------------------------------
    def img_step(self, prev: Latent, action: Tensor, noise: Tensor | None) -> tuple[Latent, Tensor]:
        """Prior step: ``(s_{t-1} [*], a_{t-1} [*, A]) -> (s_t, prior stats)``."""
        deter = self.gru(self.img_in(torch.cat([prev.stoch, action], -1)), prev.deter)
        stats = self.stats(self.img_out(deter))
        return Latent(deter, self.sample(stats, noise)), stats

    def obs_step(
        self, prev: Latent, action: Tensor, embed: Tensor, noise: Tensor | None
    ) -> tuple[Latent, Tensor]:
        """Posterior step: ``(s_{t-1}, a_{t-1}, e_t) -> (s_t, posterior stats)``."""
        deter = self.gru(self.img_in(torch.cat([prev.stoch, action], -1)), prev.deter)
        stats = self.stats(self.obs_out(torch.cat([deter, embed], -1)))
        return Latent(deter, self.sample(stats, noise)), stats

    def prior_stats(self, deter: Tensor) -> Tensor:
        """Prior parameters from ``h [*, D]`` (batched over a whole sequence at once)."""
        return self.stats(self.img_out(deter))

    # -- sequences -----------------------------------------------------------------------------
    def observe(
        self,
        embed: Tensor,
        action: Tensor,
        is_first: Tensor,
        noise: Tensor | None,
        start: Latent | None = None,
    ) -> tuple[Latent, Tensor, Tensor]:
        """Filter a sequence: ``embed [B, T, E]``, ``action [B, T, A]`` (into each step),
        ``is_first [B, T]`` (the state restarts from zeros there), ``noise [T, B, S]`` ->
        posterior states ``[B, T, ...]``, posterior and prior stats ``[B, T, ...]``. The loop
        holds only the GRU and the posterior; the prior runs over ``[B*T]`` afterwards."""
        B, T = embed.shape[:2]
        state = start if start is not None else self.initial(B, embed.device)
        keep = (~is_first).to(embed.dtype).unsqueeze(-1)  # [B, T, 1]
        action = action * keep
        deters, stochs, posts = [], [], []
        for t in range(T):
            state = Latent(state.deter * keep[:, t], state.stoch * keep[:, t])
            state, stats = self.obs_step(
                state, action[:, t], embed[:, t], None if noise is None else noise[t]
            )
            deters.append(state.deter)
            stochs.append(state.stoch)
            posts.append(stats)
        deter = torch.stack(deters, 1)
        states = Latent(deter, torch.stack(stochs, 1))
        return states, torch.stack(posts, 1), self.prior_stats(deter)


def kl_divergence(post: Tensor, prior: Tensor, classes: int) -> Tensor:
    """``KL[q || p]`` summed over the latents, ``[*]``, for stats as :meth:`RSSM.stats` gives."""
    if classes:
        logq, logp = torch.log_softmax(post, -1), torch.log_softmax(prior, -1)
        return (logq.exp() * (logq - logp)).sum((-2, -1))
    (mq, sq), (mp, sp) = post.unbind(-2), prior.unbind(-2)
    kl = torch.log(sp / sq) + (sq.square() + (mq - mp).square()) / (2 * sp.square()) - 0.5
    return kl.sum(-1)


def kl_loss(
    post: Tensor,
    prior: Tensor,
    classes: int,
    dyn: float,
    rep: float,
    free: float,
    free_average: bool = False,
) -> tuple[Tensor, Tensor]:
    """KL balancing with free bits: ``dyn * max(free, KL[sg(q) || p]) + rep * max(free,
    KL[q || sg(p)])``, averaged over ``[*]``; free bits per element (V3) or on the batch mean
    (``free_average``, V2). Returns ``(loss, mean KL)``."""
    dyn_kl = kl_divergence(post.detach(), prior, classes)
    rep_kl = kl_divergence(post, prior.detach(), classes)
    if free_average:
        dyn_kl, rep_kl = dyn_kl.mean(), rep_kl.mean()
    free_t = torch.tensor(free, dtype=dyn_kl.dtype, device=dyn_kl.device)
    loss = dyn * torch.maximum(dyn_kl, free_t) + rep * torch.maximum(rep_kl, free_t)
    return loss.mean(), rep_kl.detach().mean()
