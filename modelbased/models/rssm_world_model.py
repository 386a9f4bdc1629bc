"""The latent world model of PlaNet and Dreamer V1-V3 (Hafner et al. 2019-2023).

Encoder, RSSM, decoder, reward and continue heads, and their loss

    L(phi) = E_q[ sum_t  recon_t + reward_t + cont_t ] + KL term (balanced, free bits)

over a replayed batch of chunks ``[B, T]``: every network but the RSSM's recurrence runs once
over the flattened ``[B*T]`` rows. This module owns :class:`WorldModelConfig` (its sizes come
from the agent's ``size`` when left at 0) and :class:`WorldModel`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from modelbased.core.config import Config
from modelbased.models.dreamer_heads import (
    ConvDecoder,
    ConvEncoder,
    ScalarHead,
    VectorDecoder,
    VectorEncoder,
)
from modelbased.models.rssm import RSSM, Latent, RSSMConfig, kl_loss

# size -> (deter, hidden, layers, cnn_depth); xs is sheeprl's DreamerV3-XS (deter 256, hidden 256)
SIZES = {"xs": (256, 256, 1, 16), "s": (512, 512, 2, 32), "m": (1024, 640, 3, 48)}
Size = Literal["xs", "s", "m"]


@dataclasses.dataclass(frozen=True)
class WorldModelConfig(Config):
    """The RSSM world model and its loss (defaults: DreamerV3)."""

    deter: int = 0  # GRU units of h (0: from the agent's size)
    hidden: int = 0  # units of every MLP layer (0: from size)
    layers: int = 0  # MLP layers of encoder, decoder and heads (0: from size)
    cnn_depth: int = 0  # channels of the first conv layer for images (0: from size)
    stoch: int = 32  # stochastic latents (categoricals, or Gaussian dimensions)
    classes: int = 32  # classes per categorical latent; 0: Gaussian latents (V1, PlaNet)
    unimix: float = 0.01  # uniform mixing of the categorical latents
    act: str = "silu"  # activation
    norm: bool = True  # layer norm in MLPs and GRU
    symlog_obs: bool = True  # symlog vector observations at the encoder and decoder (V3)
    reward_head: Literal["twohot", "mse"] = "twohot"  # reward regression (V3 twohot, V1/V2 mse)
    kl_dyn: float = 0.5  # weight of KL[sg(q) || p] (trains the prior)
    kl_rep: float = 0.1  # weight of KL[q || sg(p)] (trains the representation)
    free_bits: float = 1.0  # nats below which each KL term is not minimised
    free_average: bool = False  # free bits on the batch mean (V2) instead of per step (V3)
    cont_scale: float = 1.0  # weight of the continue loss
    lr: float = 1e-4  # Adam step size
    eps: float = 1e-8  # Adam epsilon
    grad_clip: float = 1000.0  # gradient clipping by global norm

    def validate(self) -> None:
        """Non-negative sizes and weights, positive rates."""
        for key in ("deter", "hidden", "layers", "cnn_depth", "free_bits", "kl_dyn", "kl_rep"):
            self.require(getattr(self, key) >= 0, key, "must be >= 0")
        for key in ("stoch", "lr", "eps", "grad_clip"):
            self.require(getattr(self, key) > 0, key, "must be > 0")

    def dims(self, size: Size) -> tuple[int, int, int, int]:
        """``(deter, hidden, layers, cnn_depth)``, zeros taken from ``SIZES[size]``."""
        own = (self.deter, self.hidden, self.layers, self.cnn_depth)
        return tuple(o or s for o, s in zip(own, SIZES[size], strict=True))  # type: ignore[return-value]

    def rssm(self, size: Size) -> RSSMConfig:
        """The RSSM's config at ``size``."""
        deter, hidden, _, _ = self.dims(size)
        return RSSMConfig(
            deter=deter,
            hidden=hidden,
            stoch=self.stoch,
            classes=self.classes,
            unimix=self.unimix,
            act=self.act,
            norm=self.norm,
        )


class WorldModel(nn.Module):
    """Encoder, RSSM, decoder, reward and continue heads for observations of ``obs_shape``
    (``[O]`` vectors, or ``[64, 64, 3]`` uint8 images) and ``action_dim`` actions."""

    def __init__(
        self, config: WorldModelConfig, size: Size, obs_shape: tuple[int, ...], action_dim: int
    ) -> None:
        super().__init__()
        self.config = config
        self.image = len(obs_shape) == 3
        _, hidden, layers, depth = config.dims(size)
        c = config
        if self.image:
            self.encoder: ConvEncoder | VectorEncoder = ConvEncoder(depth, c.act, obs_shape[-1])
        else:
            self.encoder = VectorEncoder(obs_shape[0], hidden, layers, c.act, c.norm, c.symlog_obs)
        self.rssm = RSSM(config.rssm(size), action_dim, self.encoder.out_dim)
        feat = self.rssm.config.feat_size
        if self.image:
            self.decoder: ConvDecoder | VectorDecoder = ConvDecoder(
                feat, depth, c.act, obs_shape[-1]
            )
        else:
            self.decoder = VectorDecoder(
                feat, obs_shape[0], hidden, layers, c.act, c.norm, c.symlog_obs
            )
        self.reward = ScalarHead(feat, hidden, layers, c.act, c.norm, c.reward_head)
        self.cont = ScalarHead(feat, hidden, layers, c.act, c.norm, "binary")

    @property
    def device(self) -> torch.device:
        """Where the parameters live."""
        return next(self.parameters()).device

    def preprocess(self, obs: np.ndarray | Tensor) -> Tensor:
        """Observations ``[*, *O]`` -> network input: float vectors, or images as float
        ``[*, 3, 64, 64]`` in ``[0, 1]``."""
        x = torch.as_tensor(np.asarray(obs), device=self.device)
        if self.image:
            return x.movedim(-1, -3).float() / 255.0
        return x.float()

    def embed(self, obs: Tensor) -> Tensor:
        """Encoder over any leading dims ``[*L, *X] -> [*L, E]`` (one batched call)."""
        lead = obs.shape[: obs.dim() - (3 if self.image else 1)]
        return self.encoder(obs.reshape(-1, *obs.shape[len(lead) :])).reshape(*lead, -1)

    def loss(
        self, batch: dict[str, Tensor], noise: Tensor | None
    ) -> tuple[Tensor, Latent, dict[str, Tensor]]:
        """The world-model loss on a batch of chunks (``obs [B, T, *X]`` preprocessed,
        ``action [B, T, A]``, ``reward``, ``is_first``, ``is_terminal [B, T]``), RSSM noise
        ``[T, B, S]``: ``(loss, posterior states [B, T], detached scalars)``."""
        c = self.config
        obs = batch["obs"]
        B, T = obs.shape[:2]
        post, post_stats, prior_stats = self.rssm.observe(
            self.embed(obs), batch["action"], batch["is_first"], noise
        )
        feat = post.feat().reshape(B * T, -1)
        target = obs.reshape(B * T, *obs.shape[2:])
        recon = self.decoder.loss(self.decoder(feat), target).mean()
        reward_out = self.reward(feat)
        reward = batch["reward"].reshape(-1)
        reward_loss = self.reward.loss(reward_out, reward).mean()
        cont_target = 1.0 - batch["is_terminal"].reshape(-1).float()
        cont_loss = self.cont.loss(self.cont(feat), cont_target).mean()
        kl, kl_value = kl_loss(
            post_stats,
            prior_stats,
            self.rssm.config.classes,
            c.kl_dyn,
            c.kl_rep,
            c.free_bits,
            c.free_average,
        )
        loss = recon + reward_loss + c.cont_scale * cont_loss + kl
        with torch.no_grad():
            reward_error = (self.reward.mean(reward_out) - reward).abs().mean()
        scalars = {
            "model_loss": loss.detach(),
            "recon": recon.detach(),
            "kl": kl_value,
            "reward_loss": reward_loss.detach(),
            "reward_error": reward_error,
            "cont_loss": cont_loss.detach(),
        }
        return loss, post, scalars

    def step_posterior(
        self, state: Latent, action: Tensor, obs: Tensor, noise: Tensor | None
    ) -> Latent:
        """Filter one real step for acting: ``(s_{t-1} [N], a_{t-1} [N, A], o_t [N, *X])``."""
        return self.rssm.obs_step(state, action, self.embed(obs), noise)[0]

    def decode(self, feat: Tensor) -> Tensor:
        """Decoded observations (env units; images ``[*, 3, 64, 64]`` in ``[0, 1]``)."""
        lead = feat.shape[:-1]
        out = self.decoder.observation(self.decoder(feat.reshape(-1, feat.shape[-1])))
        return out.reshape(*lead, *out.shape[1:])


def to_tensors(batch: dict[str, Any], model: WorldModel) -> dict[str, Tensor]:
    """A replay batch (numpy) as the tensors :meth:`WorldModel.loss` takes."""
    device = model.device
    return {
        "obs": model.preprocess(batch["obs"]),
        "action": torch.as_tensor(batch["action"], device=device),
        "reward": torch.as_tensor(batch["reward"], device=device),
        "is_first": torch.as_tensor(batch["is_first"], device=device),
        "is_terminal": torch.as_tensor(batch["is_terminal"], device=device),
    }
