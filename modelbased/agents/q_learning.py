"""Tabular Q-learning (Watkins 1989; Sutton & Barto 2018, section 6.5): the model-free
baseline of the Dyna family, i.e. Dyna-Q with zero planning steps."""

from __future__ import annotations

import dataclasses

from modelbased.agents.tabular_base import TabularAgent, TabularConfig
from modelbased.core.registry import register_agent


@dataclasses.dataclass(frozen=True)
class QLearningConfig(TabularConfig):
    """Q-learning's settings: step size, discount and exploration rate."""

    algo = "q-learning"


@register_agent
class QLearning(TabularAgent):
    """One-step Q-learning from real experience only."""

    algo = "q-learning"
    Config = QLearningConfig

    def observe(
        self, obs: int, action: int, reward: float, next_obs: int, terminated: bool, truncated: bool
    ) -> None:
        """One Q-learning update on the real transition."""
        self.q_update(obs, action, reward, next_obs, terminated)
