"""Batched ensemble layers for learned world models (Chua et al. 2018, PETS; Janner et al.
2019, MBPO).

* :class:`EnsembleLinear` — ``E`` independent linear layers evaluated as one batched matmul
  (``torch.baddbmm``) over a leading ensemble dimension, so an ensemble costs one kernel per
  layer instead of a Python loop over members.
* :class:`EnsembleMLP` / :func:`ensemble_mlp` — a stack of those with an activation between
  layers (SiLU, "swish", by default as in PETS and MBPO).
* :func:`activation` — activation modules by the names used in configs.

Shapes: ``E`` ensemble members, ``B`` rows per member; inputs are ``[E, B, in]`` (one batch
per member) or ``[B, in]`` (the same batch for every member, broadcast without copying).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
}

_FUNCTIONAL = {
    "silu": F.silu,
    "swish": F.silu,
    "relu": F.relu,
    "elu": F.elu,
    "gelu": F.gelu,
    "tanh": torch.tanh,
    "leaky_relu": F.leaky_relu,
}
_INPLACE = {
    "silu": lambda h: F.silu(h, inplace=True),
    "swish": lambda h: F.silu(h, inplace=True),
    "relu": torch.relu_,
    "elu": lambda h: F.elu(h, inplace=True),
    "tanh": torch.tanh_,
    "leaky_relu": lambda h: F.leaky_relu(h, inplace=True),
}

INITS = ("linear", "truncated_normal")
_CHUNK_ELEMENTS = 1 << 20


def activation(name: str) -> nn.Module:
    """The activation module called ``name`` (one of :data:`ACTIVATIONS`)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; accepted: {', '.join(sorted(ACTIVATIONS))}"
        ) from None


class EnsembleLinear(nn.Module):
    """``E`` linear layers ``y_e = x_e W_e + b_e`` computed as one ``baddbmm``.

    ``weight`` is ``[E, in, out]`` and ``bias`` ``[E, 1, out]``.  ``init="linear"`` draws each
    member like :class:`torch.nn.Linear` (uniform in ``±1/sqrt(in)``); ``"truncated_normal"``
    is the PETS/MBPO initialisation (normal with std ``1/(2 sqrt(in))`` truncated at two
    standard deviations, zero bias).
    """

    def __init__(
        self,
        ensemble_size: int,
        in_features: int,
        out_features: int,
        init: str = "linear",
    ) -> None:
        super().__init__()
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; accepted: {', '.join(INITS)}")
        self.ensemble_size, self.in_features, self.out_features = (
            ensemble_size,
            in_features,
            out_features,
        )
        self.init = init
        self.weight = nn.Parameter(torch.empty(ensemble_size, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(ensemble_size, 1, out_features))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Draw fresh weights by ``init`` (see the class docstring)."""
        bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
        if self.init == "linear":
            self.weight.uniform_(-bound, bound)
            self.bias.uniform_(-bound, bound)
        else:
            std = 0.5 * bound
            nn.init.trunc_normal_(self.weight, std=std, a=-2 * std, b=2 * std)
            self.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        """``x [E, B, in]`` or ``[B, in]`` -> ``[E, B, out]``."""
        if x.dim() == 2:
            x = x.expand(self.ensemble_size, *x.shape)
        return torch.baddbmm(self.bias, x, self.weight)

    def extra_repr(self) -> str:
        """The sizes and init, for ``repr``."""
        return (
            f"ensemble_size={self.ensemble_size}, in_features={self.in_features}, "
            f"out_features={self.out_features}, init={self.init!r}"
        )


class EnsembleMLP(nn.Module):
    """:class:`EnsembleLinear` layers with an activation after every layer but the last.

    When autograd is off (planning under ``torch.inference_mode``) the activation is applied
    in place, saving one ``[E, B, hidden]`` allocation per layer.
    """

    def __init__(self, layers: list[EnsembleLinear], activation_name: str = "silu") -> None:
        super().__init__()
        activation(activation_name)  # validates the name
        self.layers = nn.ModuleList(layers)
        self.activation_name = activation_name

    @property
    def ensemble_size(self) -> int:
        """The number of members ``E``."""
        return self.layers[0].ensemble_size

    def forward(self, x: Tensor) -> Tensor:
        """``x [E, B, in]`` or ``[B, in]`` -> ``[E, B, out]``.

        Without autograd, large batches run in row chunks of about a million activations, so
        the hidden activations stay in cache (about 15% faster at ``7 x 5000`` rows).
        """
        if torch.is_grad_enabled():
            return self._run(x, _FUNCTIONAL[self.activation_name])
        act = _INPLACE.get(self.activation_name, _FUNCTIONAL[self.activation_name])
        rows = x.shape[-2]
        width = max(layer.out_features for layer in self.layers)
        chunk = max(128, _CHUNK_ELEMENTS // (self.ensemble_size * width))
        if rows <= chunk:
            return self._run(x, act)
        out = x.new_empty(self.ensemble_size, rows, self.layers[-1].out_features)
        for start in range(0, rows, chunk):
            out[:, start : start + chunk] = self._run(x[..., start : start + chunk, :], act)
        return out

    def _run(self, x: Tensor, act) -> Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = act(x)
        return x

    def extra_repr(self) -> str:
        """The activation, for ``repr``."""
        return f"activation={self.activation_name!r}"


def ensemble_mlp(
    in_features: int,
    out_features: int,
    hidden: int = 200,
    layers: int = 4,
    ensemble_size: int = 7,
    activation: str = "silu",
    init: str = "truncated_normal",
) -> EnsembleMLP:
    """An ensemble MLP ``in -> hidden (x layers) -> out``: ``layers`` hidden layers, so
    ``layers + 1`` :class:`EnsembleLinear` in all (PETS/MBPO default: 4 x 200, SiLU)."""
    sizes = [in_features] + [hidden] * layers + [out_features]
    linears = [
        EnsembleLinear(ensemble_size, n_in, n_out, init=init)
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    return EnsembleMLP(linears, activation)
