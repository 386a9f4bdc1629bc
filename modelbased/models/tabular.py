"""Tabular world models (Sutton & Barto 2018, ch. 8; Sutton 1990).

* :class:`TabularMDP` — an explicit model ``P[s, a, s']``, ``R[s, a]`` and the probability
  ``D[s, a, s']`` that the transition ends the episode; built from Gymnasium's toy-text ``P``
  tables (a known model) or from counts (a learned one).
* :class:`DeterministicModel` — Dyna-Q's last-seen model: ``Model(s, a) <- (r, s')``.
* :class:`CountModel` — a maximum-likelihood model from transition counts, for stochastic
  tasks; it samples ``s'`` from the empirical distribution and converts to a ``TabularMDP``.

Both learned models sample whole batches of transitions at once (vectorized numpy) so that the
planner's sequential updates are the only per-sample loop, and that loop is compiled.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np


@dataclasses.dataclass
class TabularMDP:
    """``P[s,a,s']`` next-state probabilities, ``R[s,a]`` expected rewards, ``D[s,a,s']``
    the probability that the transition ``s, a -> s'`` terminates."""

    P: np.ndarray
    R: np.ndarray
    D: np.ndarray

    @property
    def n_states(self) -> int:
        """Number of states ``S``."""
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        """Number of actions ``A``."""
        return self.P.shape[1]

    @property
    def continuation(self) -> np.ndarray:
        """``P * (1 - D)``: the sub-stochastic kernel of transitions that do not terminate."""
        return self.P * (1.0 - self.D)

    @classmethod
    def from_env(cls, env: gym.Env) -> TabularMDP:
        """The known model of a toy-text style env (FrozenLake, Taxi, CliffWalking, mazes)."""
        table = getattr(env.unwrapped, "P", None)
        if table is None:
            raise ValueError(
                f"{env.spec.id if env.spec else env} has no transition table P; "
                "use model='learned' to plan on a model learned from data"
            )
        return cls.from_toy_text(table, env.observation_space.n, env.action_space.n)

    @classmethod
    def from_toy_text(cls, table: dict, n_states: int, n_actions: int) -> TabularMDP:
        """The MDP of a toy-text transition table ``P[s][a] = [(prob, s', r, terminated)]``."""
        P = np.zeros((n_states, n_actions, n_states))
        R = np.zeros((n_states, n_actions))
        Dm = np.zeros((n_states, n_actions, n_states))
        for s, row in table.items():
            for a, outcomes in row.items():
                for prob, s2, reward, done in outcomes:
                    P[s, a, s2] += prob
                    R[s, a] += prob * reward
                    Dm[s, a, s2] += prob * float(done)
        D = np.divide(Dm, P, out=np.zeros_like(P), where=P > 0)
        return cls(P, R, D)


class DeterministicModel:
    """Dyna-Q's model: the last reward, next state and termination seen for each ``(s, a)``.

    Untried pairs lead back to ``s`` with reward 0 (S&B's footnote for Dyna-Q+).
    """

    def __init__(self, n_states: int, n_actions: int) -> None:
        self.n_states, self.n_actions = n_states, n_actions
        self.next_state = np.tile(np.arange(n_states, dtype=np.int64)[:, None], (1, n_actions))
        self.reward = np.zeros((n_states, n_actions))
        self.terminal = np.zeros((n_states, n_actions), dtype=bool)
        self.seen = np.zeros((n_states, n_actions), dtype=bool)
        self._pairs = np.zeros(n_states * n_actions, dtype=np.int64)  # flat s * A + a
        self._n_pairs = 0
        self._visited = np.zeros(n_states, dtype=np.int64)
        self._n_visited = 0
        self._state_seen = np.zeros(n_states, dtype=bool)

    def update(self, s: int, a: int, r: float, s2: int, terminal: bool) -> None:
        """Remember ``(r, s', terminal)`` as the outcome of ``(s, a)``."""
        self.next_state[s, a], self.reward[s, a], self.terminal[s, a] = s2, r, terminal
        if not self.seen[s, a]:
            self.seen[s, a] = True
            self._pairs[self._n_pairs] = s * self.n_actions + a
            self._n_pairs += 1
        if not self._state_seen[s]:
            self._state_seen[s] = True
            self._visited[self._n_visited] = s
            self._n_visited += 1

    @property
    def observed_pairs(self) -> np.ndarray:
        """Flat indices ``s * A + a`` of the pairs tried so far, in order of first visit."""
        return self._pairs[: self._n_pairs]

    @property
    def visited_states(self) -> np.ndarray:
        """The states visited so far (as a first state of a pair), in order of first visit."""
        return self._visited[: self._n_visited]

    def sample(
        self, s: np.ndarray, a: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(s', r, terminal)`` for a batch of pairs (``rng`` unused: the model is exact)."""
        return self.next_state[s, a], self.reward[s, a], self.terminal[s, a]

    def predecessors(self, s: int) -> np.ndarray:
        """Pairs ``(s̄, ā)`` the model predicts lead to ``s``, as an ``[N, 2]`` array."""
        return np.argwhere(self.seen & (self.next_state == s) & ~self.terminal)

    def state_dict(self) -> dict[str, Any]:
        """The tables and the visit order."""
        return {k: getattr(self, k) for k in ("next_state", "reward", "terminal", "seen")} | {
            "pairs": self.observed_pairs.copy(),
            "visited": self.visited_states.copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` wrote."""
        for k in ("next_state", "reward", "terminal", "seen"):
            getattr(self, k)[...] = np.asarray(state[k])
        pairs, visited = np.asarray(state["pairs"]), np.asarray(state["visited"])
        self._n_pairs, self._n_visited = len(pairs), len(visited)
        self._pairs[: len(pairs)] = pairs
        self._visited[: len(visited)] = visited
        self._state_seen[:] = False
        self._state_seen[visited] = True


class CountModel(DeterministicModel):
    """Maximum-likelihood tabular model from counts ``N[s,a,s']`` (for stochastic tasks)."""

    def __init__(self, n_states: int, n_actions: int) -> None:
        super().__init__(n_states, n_actions)
        shape = (n_states, n_actions, n_states)
        self.counts = np.zeros(shape)
        self.reward_sum = np.zeros(shape)
        self.terminal_count = np.zeros(shape)

    def update(self, s: int, a: int, r: float, s2: int, terminal: bool) -> None:
        """Count the outcome ``(s', r, terminal)`` of ``(s, a)`` (and keep the last-seen tables)."""
        super().update(s, a, r, s2, terminal)
        self.counts[s, a, s2] += 1
        self.reward_sum[s, a, s2] += r
        self.terminal_count[s, a, s2] += terminal

    def sample(
        self, s: np.ndarray, a: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draw ``s'`` from each pair's empirical distribution; untried pairs stay in ``s``
        with reward 0, as in :class:`DeterministicModel`."""
        cum = np.cumsum(self.counts[s, a], axis=-1)
        u = rng.random(len(s)) * cum[:, -1]
        untried = cum[:, -1] == 0
        s2 = np.where(untried, s, np.argmax(cum > u[:, None], axis=-1))
        n = np.maximum(self.counts[s, a, s2], 1.0)
        reward = self.reward_sum[s, a, s2] / n
        terminal = rng.random(len(s)) * n < self.terminal_count[s, a, s2]
        return s2, reward, terminal

    def predecessors(self, s: int) -> np.ndarray:
        """Pairs ``(s̄, ā)`` seen to lead to ``s`` without terminating, as an ``[N, 2]`` array."""
        return np.argwhere(self.counts[:, :, s] > self.terminal_count[:, :, s])

    def to_mdp(self) -> TabularMDP:
        """The maximum-likelihood MDP; untried pairs terminate with reward 0."""
        n_sa = self.counts.sum(-1, keepdims=True)
        tried = n_sa[..., 0] > 0
        P = np.divide(self.counts, n_sa, out=np.zeros_like(self.counts), where=n_sa > 0)
        R = np.divide(
            self.reward_sum.sum(-1), n_sa[..., 0], out=np.zeros_like(n_sa[..., 0]), where=tried
        )
        D = np.divide(
            self.terminal_count, self.counts, out=np.zeros_like(self.counts), where=self.counts > 0
        )
        s_idx, a_idx = np.nonzero(~tried)
        P[s_idx, a_idx, s_idx] = 1.0
        D[s_idx, a_idx, s_idx] = 1.0
        return TabularMDP(P, R, D)

    def state_dict(self) -> dict[str, Any]:
        """The last-seen tables and the counts."""
        return super().state_dict() | {
            "counts": self.counts,
            "reward_sum": self.reward_sum,
            "terminal_count": self.terminal_count,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` wrote."""
        super().load_state_dict(state)
        for k in ("counts", "reward_sum", "terminal_count"):
            getattr(self, k)[...] = np.asarray(state[k])
