"""Value iteration and policy iteration agents (Sutton & Barto 2018, sections 4.3-4.4), planning
on the known model of a tabular env (its toy-text ``P`` table) or on a maximum-likelihood model
learned from real data (certainty-equivalence control; Kearns & Singh 1999).

With ``model: learned`` the agent acts uniformly at random for ``model_steps`` real steps,
counting transitions, then plans on the learned MDP and acts greedily on it (``epsilon``-greedy
while training), re-planning every ``replan_every`` further steps if that is positive.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np

from modelbased.agents.tabular_base import QTableAgent
from modelbased.core.config import AgentConfig
from modelbased.core.errors import UnsupportedSpaceError
from modelbased.core.registry import register_agent
from modelbased.core.schedule import due
from modelbased.models.tabular import CountModel, TabularMDP
from modelbased.planning.tabular import policy_iteration, value_iteration


@dataclasses.dataclass(frozen=True)
class DPConfig(AgentConfig):
    """``model``: plan on the env's known ``P`` or on counts from ``model_steps`` random steps."""

    algo = "dp"
    gamma: float = 0.99  # discount
    model: Literal["known", "learned"] = "known"  # the env's P, or counts of random steps
    model_steps: int = 20_000  # random steps before planning on the learned model
    replan_every: int = 0  # real steps between replans after that (0: never)
    epsilon: float = 0.0  # exploration rate of epsilon-greedy behaviour after planning
    theta: float = 1e-10  # convergence threshold of the sweeps

    def validate(self) -> None:
        """Ranges of the discount, budgets, exploration rate and threshold."""
        super().validate()
        self.require(0.0 <= self.gamma <= 1.0, "gamma", "must be in [0, 1]")
        self.require(
            self.model_steps >= 1 or self.model == "known", "model_steps", "must be >= 1 (learned)"
        )
        self.require(self.replan_every >= 0, "replan_every", "must be >= 0 (0: never)")
        self.require(0.0 <= self.epsilon <= 1.0, "epsilon", "must be in [0, 1]")
        self.require(self.theta > 0.0, "theta", "must be > 0")


class DPAgent(QTableAgent):
    """Plans ``Q`` by dynamic programming on a ``TabularMDP`` and acts greedily on it."""

    Config = DPConfig
    config: DPConfig
    default_env = "FrozenLake-v1"
    default_steps = 20_000

    def setup(self) -> None:
        """The Q table and a count model; plan right away on the env's ``P`` with
        ``model=known``."""
        super().setup()
        self.V = np.zeros(self.n_states)
        self.model = CountModel(self.n_states, self.n_actions)
        self.planned = False
        self.iterations = 0
        if self.config.model == "known":
            if getattr(self.env.unwrapped, "P", None) is None:
                raise UnsupportedSpaceError(
                    f"{self.algo} with model=known needs an env with a transition table P "
                    f"(toy-text envs, modelbased mazes); {self.env_id} has none: "
                    "use --set model=learned"
                )
            self.plan(TabularMDP.from_env(self.env))

    def solve(self, mdp: TabularMDP) -> tuple[np.ndarray, np.ndarray, int]:
        """Return ``(V, Q, iterations)`` for ``mdp``."""
        raise NotImplementedError

    def plan(self, mdp: TabularMDP) -> None:
        """Solve ``mdp`` into ``V``, ``Q`` and act greedily from now on."""
        self.V, self.Q, self.iterations = self.solve(mdp)
        self.planned = True

    def explore(self, obs: int) -> int:
        """Uniformly random until the first plan (model collection), then epsilon-greedy on
        ``Q``."""
        if not self.planned:
            return int(self.rng.integers(self.n_actions))
        return super().explore(obs)

    def observe(
        self, obs: int, action: int, reward: float, next_obs: int, terminated: bool, truncated: bool
    ) -> None:
        """With a learned model: count the transition and plan at ``model_steps`` (and every
        ``replan_every`` after)."""
        if self.config.model == "known":
            return
        self.model.update(obs, action, reward, next_obs, terminated)
        if due(self.loop.env_steps, self.config.replan_every, self.config.model_steps):
            self.plan(self.model.to_mdp())

    @property
    def policy_ready(self) -> bool:
        """Whether the policy acts from a learned model or plan yet."""
        return self.planned  # greedy on an all-zero Q until it plans

    def train_scalars(self) -> dict[str, float]:
        """Whether planned, sweeps of the last plan, ``max V`` and the observed pairs."""
        return {
            "planned": float(self.planned),
            "iterations": float(self.iterations),
            "v_max": float(self.V.max()),
            "model_pairs": float(self.model.seen.sum()),
        }

    def state_dict(self) -> dict[str, Any]:
        """Q, V, the count model and the planning state."""
        return {
            "Q": self.Q,
            "V": self.V,
            "model": self.model.state_dict(),
            "planned": self.planned,
            "iterations": self.iterations,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` wrote."""
        self.Q[...] = np.asarray(state["Q"])
        self.V[...] = np.asarray(state["V"])
        self.model.load_state_dict(state["model"])
        self.iterations = int(state["iterations"])
        self.planned = bool(state["planned"])


@dataclasses.dataclass(frozen=True)
class ValueIterationConfig(DPConfig):
    """Settings of value iteration (see ``DPConfig``)."""

    algo = "value-iteration"


@dataclasses.dataclass(frozen=True)
class PolicyIterationConfig(DPConfig):
    """Settings of policy iteration (see ``DPConfig``)."""

    algo = "policy-iteration"


@register_agent
class ValueIteration(DPAgent):
    """Value iteration: ``V(s) <- max_a sum_s' P(s'|s,a) [r + gamma V(s')]`` to convergence."""

    algo = "value-iteration"
    Config = ValueIterationConfig

    def solve(self, mdp: TabularMDP) -> tuple[np.ndarray, np.ndarray, int]:
        """Value iteration on ``mdp`` to ``theta``."""
        return value_iteration(mdp.P, mdp.R, self.config.gamma, mdp.D, self.config.theta)


@register_agent
class PolicyIteration(DPAgent):
    """Policy iteration: evaluate the policy, improve it greedily, until it is stable."""

    algo = "policy-iteration"
    Config = PolicyIterationConfig

    def solve(self, mdp: TabularMDP) -> tuple[np.ndarray, np.ndarray, int]:
        """Policy iteration on ``mdp`` until the policy is stable."""
        V, Q, _, iterations = policy_iteration(
            mdp.P, mdp.R, self.config.gamma, mdp.D, self.config.theta
        )
        return V, Q, iterations
