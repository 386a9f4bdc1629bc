"""The networks around the RSSM in PlaNet and Dreamer V1-V3 (Hafner et al. 2019-2023): the
observation encoder and decoder (an MLP for vectors, a small CNN for 64x64 images), scalar
heads (reward, continue, critic) and the actor.

Everything runs batched over flattened ``[B*T]`` (or ``[H*N]``) rows: the caller flattens
sequences, these modules never loop over time.

* :class:`ScalarHead` predicts a scalar as one of ``twohot`` (DreamerV3: logits over 255 bins
  spaced evenly in symlog space, target two-hot of ``symlog(y)``, output layer initialised to
  zero so that early predictions are 0), ``mse`` (V1/V2: a unit-variance Gaussian) or
  ``binary`` (the continue flag: a Bernoulli logit).
* :class:`Actor` is a Normal with ``tanh`` mean and std in ``[min_std, max_std]`` for continuous
  actions in ``[-1, 1]`` (reparameterised), or a categorical with ``unimix`` mixing for
  discrete ones (one-hot samples with straight-through gradients).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modelbased.models.rssm import dense
from modelbased.models.support import Support, symlog


def mlp(inp: int, hidden: int, layers: int, out: int, act: str, norm: bool) -> nn.Sequential:
    """``layers`` dense blocks of ``hidden`` units, then a linear map to ``out``."""
    blocks = [dense(inp if i == 0 else hidden, hidden, act, norm) for i in range(layers)]
    return nn.Sequential(*blocks, nn.Linear(hidden if layers else inp, out))


class VectorEncoder(nn.Module):
    """``obs [N, O]`` -> ``embed [N, hidden]`` (symlog of the input first, V3)."""

    def __init__(
        self, obs_dim: int, hidden: int, layers: int, act: str, norm: bool, symlog_in: bool
    ):
        super().__init__()
        self.symlog_in = symlog_in
        self.net = nn.Sequential(
            *[dense(obs_dim if i == 0 else hidden, hidden, act, norm) for i in range(layers)]
        )
        self.out_dim = hidden

    def forward(self, obs: Tensor) -> Tensor:
        """``obs [N, O]`` -> ``[N, hidden]``."""
        return self.net(symlog(obs) if self.symlog_in else obs)


class VectorDecoder(nn.Module):
    """``feat [N, F]`` -> predicted observation ``[N, O]`` (in symlog space with ``symlog_out``);
    :meth:`loss` is the squared error summed over the observation (a unit Gaussian's NLL)."""

    def __init__(
        self,
        feat: int,
        obs_dim: int,
        hidden: int,
        layers: int,
        act: str,
        norm: bool,
        symlog_out: bool,
    ):
        super().__init__()
        self.symlog_out = symlog_out
        self.net = mlp(feat, hidden, layers, obs_dim, act, norm)

    def forward(self, feat: Tensor) -> Tensor:
        """``feat [N, F]`` -> ``[N, O]``."""
        return self.net(feat)

    def loss(self, pred: Tensor, obs: Tensor) -> Tensor:
        """``[N]`` squared errors, summed over the observation."""
        target = symlog(obs) if self.symlog_out else obs
        return (pred - target).square().sum(-1)

    def observation(self, pred: Tensor) -> Tensor:
        """The decoded observation in the env's units."""
        return torch.sign(pred) * torch.expm1(pred.abs()) if self.symlog_out else pred


class ConvEncoder(nn.Module):
    """``image [N, 3, 64, 64]`` in ``[0, 1]`` -> ``embed [N, 8d * 4 * 4]``: four stride-2
    convolutions of kernel 4 with ``d, 2d, 4d, 8d`` channels (PlaNet/Dreamer's encoder)."""

    def __init__(self, depth: int, act: str, channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(4):
            layers += [
                nn.Conv2d(channels if i == 0 else depth * 2 ** (i - 1), depth * 2**i, 4, 2, 1)
            ]
            layers += [nn.GroupNorm(1, depth * 2**i, eps=1e-3), _act(act)]
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.out_dim = depth * 8 * 16

    def forward(self, image: Tensor) -> Tensor:
        """``image [N, 3, 64, 64]`` in ``[0, 1]`` -> ``[N, 8d * 16]``."""
        return self.net(image - 0.5)


class ConvDecoder(nn.Module):
    """``feat [N, F]`` -> image ``[N, 3, 64, 64]`` (centred at 0.5) through four transposed
    convolutions; :meth:`loss` is the squared error summed over the pixels."""

    symlog_out = False

    def __init__(self, feat: int, depth: int, act: str, channels: int = 3) -> None:
        super().__init__()
        self.depth = depth
        self.linear = nn.Linear(feat, depth * 8 * 16)
        layers: list[nn.Module] = []
        for i in range(3, -1, -1):
            out = channels if i == 0 else depth * 2 ** (i - 1)
            layers.append(nn.ConvTranspose2d(depth * 2**i, out, 4, 2, 1))
            if i:
                layers += [nn.GroupNorm(1, out, eps=1e-3), _act(act)]
        self.net = nn.Sequential(*layers)

    def forward(self, feat: Tensor) -> Tensor:
        """``feat [N, F]`` -> ``[N, 3, 64, 64]``."""
        x = self.linear(feat).unflatten(-1, (self.depth * 8, 4, 4))
        return self.net(x) + 0.5

    def loss(self, pred: Tensor, image: Tensor) -> Tensor:
        """``[N]`` squared errors, summed over the pixels."""
        return (pred - image).square().sum((-3, -2, -1))

    def observation(self, pred: Tensor) -> Tensor:
        """The decoded image in ``[0, 1]``."""
        return pred.clamp(0, 1)


def _act(name: str) -> nn.Module:
    from modelbased.models.layers import activation

    return activation(name)


class ScalarHead(nn.Module):
    """A scalar predicted from ``feat [N, F]`` as ``twohot``, ``mse`` or ``binary``."""

    def __init__(
        self, feat: int, hidden: int, layers: int, act: str, norm: bool, kind: str, bins: int = 255
    ):
        super().__init__()
        self.kind = kind
        out = bins if kind == "twohot" else 1
        self.net = mlp(feat, hidden, layers, out, act, norm)
        if kind == "twohot":  # zero-initialised output: first predictions are exactly 0
            last = self.net[-1]
            assert isinstance(last, nn.Linear)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            # DreamerV3's bins: evenly spaced in symlog space over [-20, 20]
            self.support = Support.from_range(bins, 20.0, "symlog")

    def forward(self, feat: Tensor) -> Tensor:
        """Raw output: logits ``[N, K]`` (twohot) or ``[N]``."""
        out = self.net(feat)
        return out if self.kind == "twohot" else out.squeeze(-1)

    def mean(self, out: Tensor) -> Tensor:
        """The predicted scalar ``[N]`` (the probability of 1 for ``binary``)."""
        if self.kind == "twohot":
            return self.support.logits_to_scalar(out)
        return torch.sigmoid(out) if self.kind == "binary" else out

    def loss(self, out: Tensor, target: Tensor) -> Tensor:
        """Negative log-likelihood ``[N]`` of ``target [N]`` (up to constants)."""
        if self.kind == "twohot":
            return self.support.cross_entropy(out, target)
        if self.kind == "binary":
            return F.binary_cross_entropy_with_logits(out, target, reduction="none")
        return 0.5 * (out - target).square()


class Actor(nn.Module):
    """The policy ``pi(a | s)`` over model states; see the module docstring."""

    def __init__(
        self,
        feat: int,
        action_dim: int,
        discrete: bool,
        hidden: int,
        layers: int,
        act: str,
        norm: bool,
        min_std: float = 0.1,
        max_std: float = 1.0,
        unimix: float = 0.01,
    ) -> None:
        super().__init__()
        self.discrete, self.action_dim = discrete, action_dim
        self.min_std, self.max_std, self.unimix = min_std, max_std, unimix
        self.net = mlp(feat, hidden, layers, action_dim * (1 if discrete else 2), act, norm)

    def dist_params(self, feat: Tensor) -> tuple[Tensor, Tensor]:
        """``(mean, std)`` ``[N, A]`` (continuous) or ``(log-probs [N, A], probs)``."""
        out = self.net(feat)
        if self.discrete:
            probs = (1 - self.unimix) * torch.softmax(out, -1) + self.unimix / self.action_dim
            return torch.log(probs), probs
        mean, std = out.chunk(2, -1)
        std = (self.max_std - self.min_std) * torch.sigmoid(std + 2.0) + self.min_std
        return torch.tanh(mean), std

    def sample(self, params: tuple[Tensor, Tensor], noise: Tensor | None) -> Tensor:
        """An action ``[N, A]`` (one-hot for discrete; ``noise`` uniforms ``[N]`` or standard
        normals ``[N, A]``; the mode when None). Continuous samples are clipped to ``[-1, 1]``
        with a straight-through gradient."""
        a, b = params
        if self.discrete:
            if noise is None:
                index = b.argmax(-1)
            else:
                index = (b.cumsum(-1) < noise.unsqueeze(-1)).sum(-1).clamp(max=self.action_dim - 1)
            onehot = F.one_hot(index, self.action_dim).to(b.dtype)
            return onehot + b - b.detach()
        if noise is None:
            return a
        raw = a + b * noise
        return raw + (raw.clamp(-1, 1) - raw).detach()

    def log_prob(self, params: tuple[Tensor, Tensor], action: Tensor) -> Tensor:
        """``log pi(a | s)`` ``[N]`` of ``action [N, A]`` (one-hot for discrete)."""
        a, b = params
        if self.discrete:
            return (a * action.detach()).sum(-1)
        z = (action.detach() - a) / b
        return (-0.5 * z.square() - torch.log(b) - 0.5 * math.log(2 * math.pi)).sum(-1)

    def entropy(self, params: tuple[Tensor, Tensor]) -> Tensor:
        """Entropy ``[N]`` of the policy's distribution (the Normal before clipping)."""
        a, b = params
        if self.discrete:
            return -(a * b).sum(-1)
        return (torch.log(b) + 0.5 * math.log(2 * math.pi * math.e)).sum(-1)
