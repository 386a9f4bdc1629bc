"""Planners: tabular dynamic programming and Q-planning, and trajectory optimizers (random
shooting, CEM/iCEM, MPPI) over any batched ``score(action_sequences) -> returns``; MCTS arrives
with its issue. Planners never import agents."""

from modelbased.planning.cem import CEM, CEMConfig, ICEMConfig
from modelbased.planning.mppi import MPPI, MPPIConfig
from modelbased.planning.tabular import (
    PriorityQueue,
    bellman_q,
    continuation,
    dyna_q_planning,
    policy_evaluation,
    policy_iteration,
    q_learning_updates,
    value_iteration,
)
from modelbased.planning.trajectory import (
    PlanResult,
    RandomShooting,
    RandomShootingConfig,
    Score,
    TrajectoryOptimizer,
    shift_plan,
)

__all__ = [
    "CEM",
    "MPPI",
    "CEMConfig",
    "ICEMConfig",
    "MPPIConfig",
    "PlanResult",
    "PriorityQueue",
    "RandomShooting",
    "RandomShootingConfig",
    "Score",
    "TrajectoryOptimizer",
    "bellman_q",
    "continuation",
    "dyna_q_planning",
    "policy_evaluation",
    "policy_iteration",
    "q_learning_updates",
    "shift_plan",
    "value_iteration",
]
