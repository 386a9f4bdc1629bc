"""Shared parts of the tabular agents: the Q table, epsilon-greedy behaviour with random
tie-breaking (S&B 2.2), the one-step Q-learning update (S&B 6.5) and the common config."""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np

from modelbased.core.agent import Agent
from modelbased.core.config import AgentConfig
from modelbased.core.env_utils import require_discrete


@dataclasses.dataclass(frozen=True)
class TabularConfig(AgentConfig):
    """Step size, discount and exploration rate of the one-step Q-learning update."""

    moved = {"alpha": "step_size"}
    step_size: float = 0.1  # alpha of the Q update
    gamma: float = 0.95  # discount
    epsilon: float = 0.1  # exploration rate of epsilon-greedy behaviour

    def validate(self) -> None:
        """Step size in (0, 1], discount and exploration rate in [0, 1]."""
        super().validate()
        self.require(0.0 < self.step_size <= 1.0, "step_size", "must be in (0, 1]")
        self.require(0.0 <= self.gamma <= 1.0, "gamma", "must be in [0, 1]")
        self.require(0.0 <= self.epsilon <= 1.0, "epsilon", "must be in [0, 1]")


def greedy_action(q: np.ndarray, rng: np.random.Generator) -> int:
    """``argmax q`` with ties broken uniformly at random."""
    best = np.flatnonzero(q == q.max())
    return int(best[0]) if len(best) == 1 else int(best[rng.integers(len(best))])


def epsilon_greedy(q: np.ndarray, epsilon: float, rng: np.random.Generator) -> int:
    """A uniformly random action with probability ``epsilon``, else :func:`greedy_action`."""
    if rng.random() < epsilon:
        return int(rng.integers(len(q)))
    return greedy_action(q, rng)


class QTableAgent(Agent):
    """An agent acting on a table ``Q[s, a]`` over Discrete observation and action spaces:
    epsilon-greedy while training, greedy (random tie-breaks) when deterministic."""

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        """Accept Discrete observation and action spaces only."""
        require_discrete(cls.algo, env, observation=True, action=True)

    def setup(self) -> None:
        """A zero table ``Q [n_states, n_actions]``."""
        self.n_states = int(self.env.observation_space.n)
        self.n_actions = int(self.env.action_space.n)
        self.Q = np.zeros((self.n_states, self.n_actions))

    def explore(self, obs: int) -> int:
        """Epsilon-greedy on ``Q[obs]`` with the training stream."""
        return epsilon_greedy(self.Q[obs], self.config.epsilon, self.rng)

    def policy(self, obs: int, deterministic: bool, rng: np.random.Generator) -> int:
        """Greedy on ``Q[obs]`` (``deterministic``) or epsilon-greedy, ties and draws from
        ``rng``."""
        if deterministic:
            return greedy_action(self.Q[obs], rng)
        return epsilon_greedy(self.Q[obs], self.config.epsilon, rng)


class TabularAgent(QTableAgent):
    """A Q-table agent learning by one-step Q-learning updates (and planning, in subclasses)."""

    Config = TabularConfig
    config: TabularConfig
    default_env = "modelbased/DynaMaze-v0"
    default_steps = 5_000

    def setup(self) -> None:
        """The Q table and the |TD error| accumulators."""
        super().setup()
        self._td_sum, self._td_count = 0.0, 0

    def td_error(self, s: int, a: int, r: float, s2: int, terminal: bool) -> float:
        """``R + gamma max_a Q(S', a) - Q(S, A)`` (no bootstrap after a terminal step)."""
        target = r if terminal else r + self.config.gamma * self.Q[s2].max()
        return target - self.Q[s, a]

    def q_update(self, s: int, a: int, r: float, s2: int, terminal: bool) -> None:
        """``Q(S,A) <- Q(S,A) + alpha [R + gamma max_a Q(S',a) - Q(S,A)]``."""
        td = self.td_error(s, a, r, s2, terminal)
        self.Q[s, a] += self.config.step_size * td
        self._td_sum += abs(td)
        self._td_count += 1

    def train_scalars(self) -> dict[str, float]:
        """Mean |TD error| since the last call and ``max Q``; resets the accumulator."""
        out = {"td_abs": self._td_sum / max(self._td_count, 1), "q_max": float(self.Q.max())}
        self._td_sum, self._td_count = 0.0, 0
        return out

    def state_dict(self) -> dict[str, Any]:
        """The Q table and the TD accumulators."""
        return {"Q": self.Q, "td_sum": self._td_sum, "td_count": self._td_count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` wrote."""
        self.Q[...] = np.asarray(state["Q"])
        self._td_sum, self._td_count = float(state["td_sum"]), int(state["td_count"])
