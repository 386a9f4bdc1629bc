"""Dyna-Q and Dyna-Q+ (Sutton 1990; Sutton & Barto 2018, sections 8.2-8.3).

Tabular Dyna-Q, per real step:
    (d) Q(S,A) <- Q(S,A) + alpha [R + gamma max_a Q(S',a) - Q(S,A)]      direct RL
    (e) Model(S,A) <- R, S'                                               model learning
    (f) repeat n times: S, A <- random previously observed pair;          planning
        R, S' <- Model(S,A); the same Q update on the simulated transition.
Dyna-Q+ adds ``kappa * sqrt(tau)`` to simulated rewards, tau being the real steps since (S,A)
was last tried, and plans also over untried actions of visited states (S&B's footnote).
The n simulated transitions are drawn in one vectorized call and applied by the compiled
sequential update in ``modelbased.planning``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np

from modelbased.agents.tabular_base import TabularAgent, TabularConfig
from modelbased.core.registry import register_agent
from modelbased.models.tabular import CountModel, DeterministicModel
from modelbased.planning.tabular import dyna_q_planning, q_learning_updates


@dataclasses.dataclass(frozen=True)
class DynaQConfig(TabularConfig):
    """``planning_steps`` is S&B's n; ``model`` chooses last-seen (deterministic tasks) or
    count-based maximum likelihood (stochastic tasks)."""

    algo = "dyna-q"
    planning_steps: int = 5  # n: simulated Q updates per real step
    # the learned model: last seen (deterministic tasks) or counts (stochastic tasks)
    model: Literal["deterministic", "stochastic"] = "deterministic"

    def validate(self) -> None:
        """``planning_steps`` >= 0, besides the Q-learning ranges."""
        super().validate()
        self.require(self.planning_steps >= 0, "planning_steps", "must be >= 0")


@dataclasses.dataclass(frozen=True)
class DynaQPlusConfig(DynaQConfig):
    """``kappa`` scales the exploration bonus ``kappa * sqrt(tau)``."""

    algo = "dyna-q-plus"
    kappa: float = 1e-3  # scale of the exploration bonus kappa * sqrt(tau)

    def validate(self) -> None:
        """``kappa`` >= 0, besides Dyna-Q's ranges."""
        super().validate()
        self.require(self.kappa >= 0.0, "kappa", "must be >= 0")


@register_agent
class DynaQ(TabularAgent):
    """Tabular Dyna-Q; ``planning_steps=0`` is one-step Q-learning."""

    algo = "dyna-q"
    Config = DynaQConfig
    config: DynaQConfig

    def setup(self) -> None:
        """The Q table and a last-seen or count model of the chosen kind."""
        super().setup()
        model_cls = DeterministicModel if self.config.model == "deterministic" else CountModel
        self.model = model_cls(self.n_states, self.n_actions)
        self.planning_updates = 0
        # Plain Dyna-Q on a last-seen model runs step (f) as one compiled call; the general
        # path (vectorized sampling, then the compiled updates) serves the other variants. Both
        # draw the same pairs, so Q is the same; the fused call gives 1.2x the real steps/s at
        # n = 5 and 1.4x at n = 50 (benchmarks/dyna_speed.py).
        self.fused_planning = self.config.model == "deterministic"

    def observe(
        self, obs: int, action: int, reward: float, next_obs: int, terminated: bool, truncated: bool
    ) -> None:
        """Steps (d), (e), (f): a Q update, a model update, ``planning_steps`` simulated updates."""
        self.q_update(obs, action, reward, next_obs, terminated)  # (d)
        self.model.update(obs, action, reward, next_obs, terminated)  # (e)
        self.plan(self.config.planning_steps)  # (f)

    def plan(self, n: int) -> float:
        """``n`` Q-planning updates on simulated transitions; returns their mean |TD error|."""
        if n == 0:
            return 0.0
        self.planning_updates += n
        cfg, model = self.config, self.model
        if self.fused_planning:
            idx = self.rng.integers(0, len(model.observed_pairs), n)
            return dyna_q_planning(
                self.Q,
                model.observed_pairs,
                idx,
                model.next_state,
                model.reward,
                model.terminal,
                cfg.step_size,
                cfg.gamma,
            )
        s, a = self.search_control(n)
        s2, r, terminal = self.model.sample(s, a, self.rng)
        r = r + self.bonus(s, a)
        return q_learning_updates(self.Q, s, a, r, s2, terminal, cfg.step_size, cfg.gamma)

    def search_control(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` pairs drawn uniformly from those observed so far."""
        pairs = self.model.observed_pairs
        flat = pairs[self.rng.integers(0, len(pairs), n)]
        return flat // self.n_actions, flat % self.n_actions

    def bonus(self, s: np.ndarray, a: np.ndarray) -> np.ndarray | float:
        """Dyna-Q+'s exploration bonus added to simulated rewards: none in plain Dyna-Q."""
        return 0.0

    def train_scalars(self) -> dict[str, float]:
        """Q-learning's scalars plus planning updates so far and the model's observed pairs."""
        return super().train_scalars() | {
            "planning_updates": float(self.planning_updates),
            "model_pairs": float(len(self.model.observed_pairs)),
        }

    def state_dict(self) -> dict[str, Any]:
        """Q table, model and planning count."""
        return super().state_dict() | {
            "model": self.model.state_dict(),
            "planning_updates": self.planning_updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` wrote."""
        super().load_state_dict(state)
        self.model.load_state_dict(state["model"])
        self.planning_updates = int(state["planning_updates"])


@register_agent
class DynaQPlus(DynaQ):
    """Dyna-Q+ : exploration bonus for long-untried pairs, so changed worlds are re-explored."""

    algo = "dyna-q-plus"
    Config = DynaQPlusConfig
    config: DynaQPlusConfig

    def setup(self) -> None:
        """Dyna-Q's setup plus the real-step clock and each pair's last real try."""
        super().setup()
        self.fused_planning = False  # its search control and bonus need the general path
        self.time = 0
        self.last_tried = np.zeros((self.n_states, self.n_actions), dtype=np.int64)

    def observe(
        self, obs: int, action: int, reward: float, next_obs: int, terminated: bool, truncated: bool
    ) -> None:
        """Record when ``(obs, action)`` was last tried, then Dyna-Q's step."""
        self.time += 1
        self.last_tried[obs, action] = self.time
        super().observe(obs, action, reward, next_obs, terminated, truncated)

    def search_control(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Visited states with any action, tried or not."""
        visited = self.model.visited_states
        s = visited[self.rng.integers(0, len(visited), n)]
        return s, self.rng.integers(0, self.n_actions, n)

    def bonus(self, s: np.ndarray, a: np.ndarray) -> np.ndarray:
        """``kappa * sqrt(tau)`` per pair, tau the real steps since it was last tried."""
        return self.config.kappa * np.sqrt(self.time - self.last_tried[s, a])

    def state_dict(self) -> dict[str, Any]:
        """Dyna-Q's state plus the clock and last-tried table."""
        return super().state_dict() | {"time": self.time, "last_tried": self.last_tried}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` wrote."""
        super().load_state_dict(state)
        self.time = int(state["time"])
        self.last_tried[...] = np.asarray(state["last_tried"])
