"""A learned latent model as the model MCTS plans with (MuZero, Schrittwieser et al. 2020):
``root_fn`` is representation then prediction on real observations, ``recurrent_fn`` dynamics
then prediction on hidden states, each one batched network call (numpy in, numpy out).

Legal moves: at the root they come from the real observation (``legal(observations)``, e.g.
the board's empty cells); inside the tree a learned model knows no rules, so every action is
legal and nothing is terminal (MuZero learns absorbing states past the end instead). A network
whose :class:`~modelbased.models.muzero_net.Inference` carries ``legal`` and ``terminal`` (a
known model, such as game rules behind the same face) has them used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch

from modelbased.models.muzero_net import Inference
from modelbased.models.support import logits_to_scalar
from modelbased.planning.mcts import RecurrentOutput, RootOutput


class LatentNet(Protocol):
    """What :class:`LatentModel` needs of a network (``MuZeroNet`` has it)."""

    training: bool

    def initial_inference(self, obs: torch.Tensor) -> Inference:
        """Representation then prediction on network inputs ``[B, *X]``."""
        ...

    def recurrent_inference(self, state: torch.Tensor, action: torch.Tensor) -> Inference:
        """Dynamics then prediction from hidden states ``[B, *S]`` by actions ``[B]``."""
        ...

    def train(self, mode: bool = True) -> LatentNet:
        """Training (batch norm on batch statistics) or evaluation mode."""
        ...


class LatentModel:
    """``root_fn``/``recurrent_fn`` (see :mod:`modelbased.planning.mcts`) over ``net``.

    Args:
        net: a MuZero network (``initial_inference``, ``recurrent_inference``).
        num_actions: ``A``.
        encode: observations ``[B, *O]`` -> network input ``float32 [B, *X]``.
        legal: observations ``[B, *O]`` -> legal actions ``bool [B, A]`` at the root
            (default: every action).
        device: where the network lives.
    """

    def __init__(
        self,
        net: LatentNet,
        num_actions: int,
        encode: Callable[[np.ndarray], np.ndarray],
        legal: Callable[[np.ndarray], np.ndarray] | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.net, self.num_actions = net, int(num_actions)
        self.encode, self.legal, self.device = encode, legal, torch.device(device)

    @torch.inference_mode()
    def root_fn(self, observations: np.ndarray) -> RootOutput:
        """Representation and prediction for ``observations [B, *O]``."""
        legal = (
            self.legal(observations)
            if self.legal is not None
            else np.ones((len(observations), self.num_actions), dtype=bool)
        )
        encoded = self.encode(observations)
        small = self._small_batch(encoded, None, None)
        if small is not None:
            return RootOutput(small[0], small[2], small[3], legal)
        x = torch.as_tensor(encoded, dtype=torch.float32, device=self.device)
        out = self._run(lambda: self.net.initial_inference(x))
        prior, value = self._heads(out)
        return RootOutput(out.state.cpu().numpy(), prior, value, legal)

    @torch.inference_mode()
    def recurrent_fn(self, states: np.ndarray, actions: np.ndarray) -> RecurrentOutput:
        """Dynamics and prediction from hidden ``states [k, *S]`` by ``actions [k]``."""
        k = len(actions)
        small = self._small_batch(None, states, actions)
        if small is not None:
            state, reward, prior, value = small
            legal, terminal = np.ones((k, self.num_actions), bool), np.zeros(k, bool)
            return RecurrentOutput(state, reward, terminal, prior, value, legal)
        s = torch.as_tensor(states, device=self.device)
        a = torch.as_tensor(actions, dtype=torch.long, device=self.device)
        out = self._run(lambda: self.net.recurrent_inference(s, a))
        assert out.reward_logits is not None
        prior, value = self._heads(out)
        reward = logits_to_scalar(out.reward_logits).cpu().numpy()
        legal = np.ones((k, self.num_actions), bool) if out.legal is None else out.legal.numpy()
        terminal = np.zeros(k, bool) if out.terminal is None else out.terminal.numpy()
        return RecurrentOutput(out.state.cpu().numpy(), reward, terminal, prior, value, legal)

    def _small_batch(
        self, obs: np.ndarray | None, states: np.ndarray | None, actions: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """The network's compiled small-batch inference where it has one (``MuZeroNet``'s MLP
        on the CPU: a batch-1 search otherwise spends most of a simulation in torch's
        per-module dispatch), else None."""
        small = getattr(self.net, "small_batch_inference", None)
        return None if small is None else small(obs, states, actions)

    def _run(self, call: Callable[[], Inference]) -> Inference:
        """``call()`` with the network in eval mode (batch norm on its running statistics);
        a network left in eval mode between searches is not toggled per simulation."""
        if not self.net.training:
            return call()
        self.net.train(False)
        try:
            return call()
        finally:
            self.net.train(True)

    @staticmethod
    def _heads(out: Inference) -> tuple[np.ndarray, np.ndarray]:
        prior = torch.softmax(out.policy_logits, dim=-1).cpu().numpy()
        return prior, logits_to_scalar(out.value_logits).cpu().numpy()
