"""MuZero's three functions (Schrittwieser et al. 2020, "Mastering Atari, Go, chess and shogi by
planning with a learned model") and its K-step unrolled loss.

* representation ``h(o) -> s0``, dynamics ``g(s, a) -> (s', r)``, prediction
  ``f(s) -> (pi, v)``; rewards and values as logits over a categorical support
  (:mod:`modelbased.models.support`); every hidden state min-max scaled to [0, 1] per sample
  (appendix G), which the dynamics' inputs and outputs share.
* ``kind="mlp"``: vector observations ``[B, D]`` (boards flattened), the action one-hot;
  ``kind="resnet"``: board planes ``[B, C, H, W]`` and a hidden state ``[B, channels, H, W]``,
  the action as one more plane (its cell, or its column for drop games).
* :func:`muzero_loss` unrolls ``K`` steps from each sampled position with the gradient into the
  dynamics scaled by 0.5 and the unrolled steps' losses by ``1/K`` (appendix G), masking the
  policy past the episode end (absorbing states have reward and value targets 0).
"""

from __future__ import annotations

import dataclasses
from typing import Literal, NamedTuple

import numba
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modelbased.core.config import Config
from modelbased.models.policy_value import ResidualBlock
from modelbased.models.small_mlp import MLPPlan, dense_chain, softmax_rows
from modelbased.models.support import EPS, two_hot

# rows up to which ``small_batch_inference`` runs compiled: with the presets' MLP (64-unit state,
# 2 x 128 layers, five functions) a 50-simulation search took 180 vs 551 us per simulation at 16
# rows, 281 vs 438 at 32 and 548 vs 772 at 64 (CPU time, one thread, under load); torch's
# per-module dispatch dominates up to there
COMPILED_ROWS = 64


@dataclasses.dataclass(frozen=True)
class MuZeroNetConfig(Config):
    """The networks' shape (defaults: CartPole scale)."""

    kind: Literal["mlp", "resnet"] = "mlp"  # MLP on vectors, or a residual tower on board planes
    state_dim: int = 64  # size of the MLP hidden state s
    hidden: int = 128  # units of the MLP layers and of the heads
    layers: int = 2  # hidden layers of each MLP function
    channels: int = 32  # channels of the residual tower's hidden state
    blocks: int = 2  # residual blocks in representation and in dynamics
    support_size: int = 20  # value and reward supports are -S .. S after h(x)

    def validate(self) -> None:
        """Positive sizes."""
        for key in ("state_dim", "hidden", "layers", "channels", "blocks", "support_size"):
            self.require(getattr(self, key) >= 1, key, "must be >= 1")


class Inference(NamedTuple):
    """One application of the model: the (next) hidden state and the heads' logits."""

    state: Tensor  # [B, *S] hidden state, scaled to [0, 1]
    policy_logits: Tensor  # [B, A]
    value_logits: Tensor  # [B, 2S + 1]
    reward_logits: Tensor | None  # [B, 2S + 1] of the step into state (None at the root)
    legal: Tensor | None = None  # bool [B, A] known legal moves (None: a learned model, all)
    terminal: Tensor | None = None  # bool [B] known ends (None: a learned model, never)


def scale_state(s: Tensor) -> Tensor:
    """Min-max scale each sample's hidden state ``[B, *S]`` to [0, 1] (MuZero appendix G)."""
    flat = s.flatten(1)
    low = flat.min(dim=1, keepdim=True).values
    high = flat.max(dim=1, keepdim=True).values
    return ((flat - low) / (high - low).clamp(min=1e-5)).view_as(s)


def scale_gradient(x: Tensor, scale: float) -> Tensor:
    """``x`` forward, its gradient times ``scale`` backward."""
    return x * scale + x.detach() * (1 - scale)


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of ``sizes`` with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def action_planes(board_shape: tuple[int, int], num_actions: int) -> Tensor:
    """``[A, H, W]``: a move's cell (``A = H*W``) or its column (``A = W``, drop games)."""
    height, width = board_shape
    if num_actions == height * width:
        return torch.eye(num_actions).view(num_actions, height, width)
    if num_actions == width:
        return torch.eye(width)[:, None, :].expand(width, height, width).clone()
    raise ValueError(f"no action planes for {num_actions} actions on a {height}x{width} board")


class MuZeroNet(nn.Module):
    """``h``, ``g`` and ``f`` (see the module docstring) for ``obs_shape`` and ``num_actions``."""

    def __init__(
        self, obs_shape: tuple[int, ...], num_actions: int, config: MuZeroNetConfig | None = None
    ) -> None:
        super().__init__()
        cfg = self.config = config or MuZeroNetConfig()
        self.num_actions = num_actions
        bins, hidden = 2 * cfg.support_size + 1, [cfg.hidden] * cfg.layers
        if cfg.kind == "resnet":
            if len(obs_shape) != 3:
                raise ValueError(f"kind=resnet needs board planes [C, H, W], got {obs_shape}")
            ch, (height, width) = cfg.channels, obs_shape[1:]
            self.register_buffer("planes", action_planes((height, width), num_actions))
            self.represent = nn.Sequential(
                nn.Conv2d(obs_shape[0], ch, 3, padding=1, bias=False),
                nn.BatchNorm2d(ch),
                nn.ReLU(),
                *[ResidualBlock(ch) for _ in range(cfg.blocks)],
            )
            self.transition = nn.Sequential(
                nn.Conv2d(ch + 1, ch, 3, padding=1, bias=False),
                nn.BatchNorm2d(ch),
                nn.ReLU(),
                *[ResidualBlock(ch) for _ in range(cfg.blocks)],
            )
            cells = height * width

            def head(out: int) -> nn.Sequential:
                return nn.Sequential(
                    nn.Conv2d(ch, 2, 1), nn.ReLU(), nn.Flatten(), mlp([2 * cells, cfg.hidden, out])
                )

            self.reward_head, self.policy_head, self.value_head = (
                head(bins),
                head(num_actions),
                head(bins),
            )
        else:
            obs_dim = int(torch.tensor(obs_shape).prod())
            self.represent = nn.Sequential(nn.Flatten(), mlp([obs_dim, *hidden, cfg.state_dim]))
            self.transition = mlp([cfg.state_dim + num_actions, *hidden, cfg.state_dim])
            self.reward_head = mlp([cfg.state_dim, cfg.hidden, bins])
            self.policy_head = mlp([cfg.state_dim, *hidden, num_actions])
            self.value_head = mlp([cfg.state_dim, *hidden, bins])
        self._plans: tuple[MLPPlan, ...] | None = None  # small_batch_inference's compiled MLPs
        # start with uniform value and reward predictions (zero at the middle of the support)
        for head_ in (self.reward_head, self.value_head):
            last = [m for m in head_.modules() if isinstance(m, nn.Linear)][-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def representation(self, obs: Tensor) -> Tensor:
        """``h``: observations ``[B, *O]`` -> hidden states ``[B, *S]`` in [0, 1]."""
        return scale_state(self.represent(obs))

    def dynamics(self, state: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """``g``: ``(state [B, *S], action long [B])`` -> ``(next state, reward logits)``."""
        if self.config.kind == "resnet":
            planes: Tensor = self.planes  # type: ignore[assignment]
            x = torch.cat([state, planes[action].unsqueeze(1)], dim=1)
        else:
            x = torch.cat([state, F.one_hot(action, self.num_actions).to(state.dtype)], dim=1)
        nxt = scale_state(self.transition(x))
        return nxt, self.reward_head(nxt)

    def prediction(self, state: Tensor) -> tuple[Tensor, Tensor]:
        """``f``: hidden states ``[B, *S]`` -> ``(policy logits [B, A], value logits)``."""
        return self.policy_head(state), self.value_head(state)

    def initial_inference(self, obs: Tensor) -> Inference:
        """``h`` then ``f`` on observations ``[B, *O]``."""
        state = self.representation(obs)
        return Inference(state, *self.prediction(state), None)

    def recurrent_inference(self, state: Tensor, action: Tensor) -> Inference:
        """``g`` then ``f`` from ``state [B, *S]`` by ``action [B]``."""
        nxt, reward_logits = self.dynamics(state, action)
        return Inference(nxt, *self.prediction(nxt), reward_logits)

    def small_batch_inference(
        self, obs: np.ndarray | None, state: np.ndarray | None, action: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """:meth:`initial_inference` (``obs [k, *O]``) or :meth:`recurrent_inference`
        (``state [k, S]``, ``action [k]``) of the MLP kind on the CPU for ``k <= COMPILED_ROWS``
        rows, in one compiled call (:mod:`~modelbased.models.small_mlp`), with the heads read
        out: ``(state [k, S], reward [k], prior [k, A], value [k])`` as numpy (reward 0 at the
        root). None where it does not apply (another kind, device or batch size)."""
        rows = len(obs) if obs is not None else len(action)  # type: ignore[arg-type]
        if self.config.kind != "mlp" or rows > COMPILED_ROWS:
            return None
        plans = self._plans
        if plans is None or not all(plan.valid() for plan in plans):
            parts = [self.represent, self.transition, self.reward_head]
            made = [MLPPlan.of(m) for m in [*parts, self.policy_head, self.value_head]]
            if any(p is None for p in made):
                return None
            plans = self._plans = tuple(p for p in made if p is not None)
        represent, transition, reward, policy, value = (p.args() for p in plans)
        if obs is not None:
            x = np.ascontiguousarray(obs, dtype=np.float32).reshape(rows, -1)
            return _mlp_inference(x, represent, reward, policy, value, True)
        x = np.zeros((rows, transition[0][0].shape[1]), np.float32)  # [k, S + A]: state, one-hot
        width = x.shape[1] - self.num_actions
        x[:, :width] = state
        x[np.arange(rows), width + np.asarray(action, dtype=np.int64)] = 1.0
        return _mlp_inference(x, transition, reward, policy, value, False)


@numba.njit(cache=True)
def _mlp_inference(x, body, reward, policy, value, root):
    """``body`` (representation or dynamics), min-max scaling, then the heads, on ``x [k, D]``
    (see ``MuZeroNet.small_batch_inference``)."""
    s = dense_chain(x, *body)
    for r in range(s.shape[0]):  # scale_state
        low, high = s[r].min(), s[r].max()
        s[r] = (s[r] - low) / max(high - low, 1e-5)
    r_out = np.zeros(s.shape[0], np.float32) if root else _support_scalar(dense_chain(s, *reward))
    prior = softmax_rows(dense_chain(s, *policy))
    return s, r_out, prior, _support_scalar(dense_chain(s, *value))


@numba.njit(cache=True)
def _support_scalar(logits):
    """``logits_to_scalar``: ``h^-1`` of the expectation over ``-S .. S`` of the softmax."""
    probs = softmax_rows(logits)
    size = (logits.shape[1] - 1) // 2
    out = np.empty(logits.shape[0], np.float32)
    for r in range(logits.shape[0]):
        y = 0.0
        for i in range(logits.shape[1]):
            y += probs[r, i] * (i - size)
        root = (np.sqrt(1 + 4 * EPS * (abs(y) + 1 + EPS)) - 1) / (2 * EPS)
        out[r] = np.sign(y) * (root**2 - 1)
    return out


class UnrollBatch(NamedTuple):
    """Training targets of ``B`` positions unrolled ``K`` steps (built by the replay)."""

    obs: Tensor  # [B, *O] the observation at each sampled position t
    actions: Tensor  # long [B, K] actions a_t .. a_{t+K-1} (random past the episode end)
    target_value: Tensor  # [B, K + 1] n-step value targets z_t .. z_{t+K} (0 past the end)
    target_reward: Tensor  # [B, K] rewards u_{t+1} .. u_{t+K} (0 past the end)
    target_policy: Tensor  # [B, K + 1, A] search policies pi_t .. pi_{t+K}
    policy_mask: Tensor  # [B, K + 1] 1 where t + k is inside the episode, else 0
    weight: Tensor  # [B] importance weights of prioritized replay


def cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """``-sum target * log softmax(logits)`` over the last axis: ``[*B]``."""
    return -(target * F.log_softmax(logits, dim=-1)).sum(-1)


def muzero_loss(
    net: MuZeroNet, batch: UnrollBatch, value_loss_weight: float = 0.25
) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """MuZero's loss over ``K`` unrolled steps (appendix G; see the module docstring).

    Returns the importance-weighted mean loss, the root value predictions ``[B]`` as logits'
    expectation targets for new priorities are computed from (``|v_t - z_t|`` by the caller),
    and the unweighted parts (value, reward, policy) as detached scalars.
    """
    support = net.config.support_size
    steps = batch.actions.shape[1]
    out = net.initial_inference(batch.obs)
    value_loss = cross_entropy(out.value_logits, two_hot(batch.target_value[:, 0], support))
    policy_loss = (
        cross_entropy(out.policy_logits, batch.target_policy[:, 0]) * batch.policy_mask[:, 0]
    )
    reward_loss = torch.zeros_like(value_loss)
    root_value_logits, state = out.value_logits, out.state
    for k in range(steps):
        state = scale_gradient(state, 0.5)
        out = net.recurrent_inference(state, batch.actions[:, k])
        assert out.reward_logits is not None
        state = out.state
        value_target = two_hot(batch.target_value[:, k + 1], support)
        mask = batch.policy_mask[:, k + 1]
        value_loss = value_loss + cross_entropy(out.value_logits, value_target) / steps
        reward_target = two_hot(batch.target_reward[:, k], support)
        reward_loss = reward_loss + cross_entropy(out.reward_logits, reward_target) / steps
        policy_target = batch.target_policy[:, k + 1]
        policy_loss = policy_loss + cross_entropy(out.policy_logits, policy_target) * mask / steps
    per_sample = value_loss_weight * value_loss + reward_loss + policy_loss
    loss = (per_sample * batch.weight).mean()
    parts = {
        "value_loss": value_loss.mean().detach(),
        "reward_loss": reward_loss.mean().detach(),
        "policy_loss": policy_loss.mean().detach(),
    }
    return loss, root_value_logits.detach(), parts
