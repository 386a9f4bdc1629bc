"""Planners: tabular dynamic programming and Q-planning now; trajectory optimizers (random
shooting, CEM, MPPI) and MCTS arrive with their issues. Planners never import agents."""

from modelbased.planning.tabular import (
    PriorityQueue,
    bellman_q,
    dyna_q_planning,
    policy_evaluation,
    policy_iteration,
    q_learning_updates,
    value_iteration,
)

__all__ = [
    "PriorityQueue",
    "bellman_q",
    "dyna_q_planning",
    "policy_evaluation",
    "policy_iteration",
    "q_learning_updates",
    "value_iteration",
]
