"""The policy-value network of AlphaZero (Silver et al. 2017, 2018): a shared trunk over the
board planes, a policy head (logits over actions) and a value head (tanh, the expected outcome
for the player to move).

Two trunks: a small residual tower of 3x3 convolutions (``kind="resnet"``, the paper's shape
at toy width) and a plain MLP (``kind="mlp"``, enough for tic-tac-toe). Shapes: input
``float32 [B, C, H, W]`` planes; outputs ``logits [B, A]`` and ``value [B]``.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numba
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modelbased.core.config import Config
from modelbased.models.small_mlp import SMALL_BATCH, MLPPlan, dense_chain, softmax_rows


@dataclasses.dataclass(frozen=True)
class PolicyValueNetConfig(Config):
    """The network's shape (defaults: tic-tac-toe scale)."""

    kind: Literal["resnet", "mlp"] = "mlp"  # the trunk: residual tower or MLP
    channels: int = 32  # convolution channels of the residual tower
    blocks: int = 3  # residual blocks, or hidden layers of the MLP
    hidden: int = 128  # units of the MLP layers and of the value head

    def validate(self) -> None:
        """Positive channels, blocks and hidden units."""
        for key in ("channels", "blocks", "hidden"):
            self.require(getattr(self, key) >= 1, key, "must be >= 1")


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a skip connection (AlphaZero's residual block)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: Tensor) -> Tensor:
        """``x [B, C, H, W]`` -> ``[B, C, H, W]``."""
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(y)))


class PolicyValueNet(nn.Module):
    """``net(planes [B, C, H, W]) -> (logits [B, A], value [B])``."""

    def __init__(
        self,
        in_planes: int,
        board_shape: tuple[int, int],
        num_actions: int,
        config: PolicyValueNetConfig | None = None,
    ) -> None:
        super().__init__()
        config = PolicyValueNetConfig() if config is None else config
        kind, channels, blocks, hidden = config.kind, config.channels, config.blocks, config.hidden
        self.kind = kind
        cells = board_shape[0] * board_shape[1]
        if kind == "resnet":
            self.trunk = nn.Sequential(
                nn.Conv2d(in_planes, channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(),
                *[ResidualBlock(channels) for _ in range(blocks)],
            )
            self.policy_head = nn.Sequential(
                nn.Conv2d(channels, 2, 1, bias=False),
                nn.BatchNorm2d(2),
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(2 * cells, num_actions),
            )
            self.value_head = nn.Sequential(
                nn.Conv2d(channels, 1, 1, bias=False),
                nn.BatchNorm2d(1),
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(cells, hidden),
                nn.ReLU(),
                nn.Linear(hidden, 1),
            )
        else:
            layers: list[nn.Module] = [nn.Flatten()]
            width = in_planes * cells
            for _ in range(blocks):
                layers += [nn.Linear(width, hidden), nn.ReLU()]
                width = hidden
            self.trunk = nn.Sequential(*layers)
            self.policy_head = nn.Linear(hidden, num_actions)
            self.value_head = nn.Sequential(
                nn.Linear(hidden, hidden // 2), nn.ReLU(), nn.Linear(hidden // 2, 1)
            )
        # where the weights are, read in O(1) (``next(self.parameters())`` walks every module:
        # a third of a batch-1 search simulation's CPU time); follows ``.to()``
        self.register_buffer("where", torch.empty(0), persistent=False)
        # the MLP's trunk and heads as compiled loops for small batches (``predict``)
        self._plans: tuple[MLPPlan, MLPPlan, MLPPlan] | None = None

    def forward(self, planes: Tensor) -> tuple[Tensor, Tensor]:
        """``planes [B, C, H, W]`` -> policy logits ``[B, A]`` and value ``[B]`` in (-1, 1)."""
        h = self.trunk(planes)
        return self.policy_head(h), torch.tanh(self.value_head(h)).squeeze(-1)

    def predict(self, planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(prior [B, A], value [B])`` as numpy, in eval mode (one forward for the batch).
        An MLP on the CPU runs up to ``SMALL_BATCH`` rows in compiled loops over its own
        parameters (:class:`~modelbased.models.small_mlp.MLPPlan`; a search at batch 1 spends
        most of a simulation in torch's per-module dispatch otherwise)."""
        if len(planes) <= SMALL_BATCH and self.kind == "mlp":
            plans = self._plans
            if plans is None or not all(plan.valid() for plan in plans):
                plans = self._plans = self._mlp_plans()
            if plans is not None:
                trunk, policy, value = plans
                x = np.ascontiguousarray(planes, dtype=np.float32).reshape(len(planes), -1)
                return _mlp_policy_value(x, trunk.args(), policy.args(), value.args())
        return self._predict_torch(planes)

    @torch.inference_mode()
    def _predict_torch(self, planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``predict`` by the torch modules. A network in training mode is switched to eval
        for the call and back (a walk over its modules each way: agents keep their networks in
        eval mode between updates)."""
        was_training = self.training
        if was_training:
            self.eval()
        x = torch.from_numpy(np.ascontiguousarray(planes, dtype=np.float32)).to(self.where.device)
        logits, value = self(x)
        if was_training:
            self.train()
        return torch.softmax(logits, dim=-1).cpu().numpy(), value.cpu().numpy()

    def _mlp_plans(self) -> tuple[MLPPlan, MLPPlan, MLPPlan] | None:
        """Compiled plans of the trunk and both heads, or None (parameters off the CPU)."""
        plans = tuple(MLPPlan.of(m) for m in (self.trunk, self.policy_head, self.value_head))
        return None if any(p is None for p in plans) else plans  # type: ignore[return-value]


@numba.njit(cache=True)
def _mlp_policy_value(x, trunk, policy, value):
    """``PolicyValueNet.forward`` of the MLP kind on ``x [B, D]`` in one compiled call: the
    prior (softmax of the logits) ``[B, A]`` and the value ``[B]``; each of ``trunk``,
    ``policy``, ``value`` is ``MLPPlan.args()``."""
    h = dense_chain(x, *trunk)
    return softmax_rows(dense_chain(h, *policy)), np.tanh(dense_chain(h, *value)[:, 0])


def alphazero_loss(
    net: PolicyValueNet, planes: Tensor, pi: Tensor, z: Tensor
) -> tuple[Tensor, dict[str, float]]:
    """``(z - v)^2 - pi . log p`` averaged over the batch (weight decay lives in the optimizer)."""
    logits, value = net(planes)
    value_loss = F.mse_loss(value, z)
    policy_loss = -(pi * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()
    loss = value_loss + policy_loss
    return loss, {"value_loss": value_loss.item(), "policy_loss": policy_loss.item()}
