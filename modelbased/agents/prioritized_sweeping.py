"""Prioritized sweeping for a deterministic environment (Moore & Atkeson 1993; Sutton & Barto
2018, section 8.4).

Per real step:
    Model(S,A) <- R, S';  P <- |R + gamma max_a Q(S',a) - Q(S,A)|;  if P > theta: push (S,A)
    repeat n times while the queue is not empty:
        S,A <- pop;  R,S' <- Model(S,A);  Q(S,A) += alpha [R + gamma max_a Q(S',a) - Q(S,A)]
        for each (S̄,Ā) predicted to lead to S:
            P <- |R̄ + gamma max_a Q(S,a) - Q(S̄,Ā)|;  if P > theta: push (S̄,Ā) with P
"""

from __future__ import annotations

import dataclasses
from typing import Any

from modelbased.agents.tabular_base import TabularAgent, TabularConfig
from modelbased.core.registry import register_agent
from modelbased.models.tabular import DeterministicModel
from modelbased.planning.tabular import PriorityQueue


@dataclasses.dataclass(frozen=True)
class PrioritizedSweepingConfig(TabularConfig):
    """``planning_steps`` updates per real step at most; pairs enter the queue above ``theta``."""

    algo = "prioritized-sweeping"
    planning_steps: int = 5  # queue updates per real step, at most
    theta: float = 1e-4  # priority threshold for entering the queue

    def validate(self) -> None:
        """``planning_steps`` and ``theta`` >= 0, besides the Q-learning ranges."""
        super().validate()
        self.require(self.planning_steps >= 0, "planning_steps", "must be >= 0")
        self.require(self.theta >= 0.0, "theta", "must be >= 0")


@register_agent
class PrioritizedSweeping(TabularAgent):
    """Dyna with planning focused backwards from states whose values changed."""

    algo = "prioritized-sweeping"
    Config = PrioritizedSweepingConfig
    config: PrioritizedSweepingConfig

    def setup(self) -> None:
        """The Q table, a last-seen model and an empty priority queue."""
        super().setup()
        self.model = DeterministicModel(self.n_states, self.n_actions)
        self.queue = PriorityQueue()
        self.planning_updates = 0

    def observe(
        self, obs: int, action: int, reward: float, next_obs: int, terminated: bool, truncated: bool
    ) -> None:
        """Update the model, queue the pair by its |TD error|, then pop up to ``planning_steps``
        pairs, updating each and queueing its predecessors."""
        self.model.update(obs, action, reward, next_obs, terminated)
        self._push(obs, action, abs(self.td_error(obs, action, reward, next_obs, terminated)))
        for _ in range(self.config.planning_steps):
            if not self.queue:
                break
            s, a, _ = self.queue.pop()
            self.q_update(
                s,
                a,
                self.model.reward[s, a],
                self.model.next_state[s, a],
                self.model.terminal[s, a],
            )
            self.planning_updates += 1
            for sb, ab in self.model.predecessors(s):
                self._push(sb, ab, abs(self.td_error(sb, ab, self.model.reward[sb, ab], s, False)))

    def _push(self, s: int, a: int, priority: float) -> None:
        if priority > self.config.theta:
            self.queue.push(s, a, priority)

    def train_scalars(self) -> dict[str, float]:
        """Q-learning's scalars plus planning updates so far and the queue's length."""
        return super().train_scalars() | {
            "planning_updates": float(self.planning_updates),
            "queue": float(len(self.queue)),
        }

    def state_dict(self) -> dict[str, Any]:
        """Q table, model, queue and planning count."""
        return super().state_dict() | {
            "model": self.model.state_dict(),
            "queue": self.queue.state(),
            "planning_updates": self.planning_updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` wrote."""
        super().load_state_dict(state)
        self.model.load_state_dict(state["model"])
        self.queue.load_state(state["queue"])
        self.planning_updates = int(state["planning_updates"])
