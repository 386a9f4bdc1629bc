"""Algorithms built from the shared layers; importing this registers them by name."""

from modelbased.agents.alphazero import AlphaZero, AlphaZeroConfig, MCTSAgent, MCTSAgentConfig
from modelbased.agents.dreamer import Dreamer, DreamerConfig
from modelbased.agents.dyna_q import DynaQ, DynaQConfig, DynaQPlus, DynaQPlusConfig
from modelbased.agents.dynamic_programming import (
    PolicyIteration,
    PolicyIterationConfig,
    ValueIteration,
    ValueIterationConfig,
)
from modelbased.agents.lqr import LQRAgent, LQRConfig
from modelbased.agents.mbpo import MBPO, MBPOConfig
from modelbased.agents.muzero import MuZero, MuZeroConfig
from modelbased.agents.pets import PETS, MPCAgent, MPCConfig, PETSConfig
from modelbased.agents.pilco import PILCO, PILCOConfig
from modelbased.agents.planet import PlaNet, PlaNetConfig
from modelbased.agents.prioritized_sweeping import PrioritizedSweeping, PrioritizedSweepingConfig
from modelbased.agents.q_learning import QLearning, QLearningConfig
from modelbased.agents.sac import SAC, SACConfig
from modelbased.agents.tdmpc import TDMPC, TDMPCConfig

__all__ = [
    "AlphaZero",
    "AlphaZeroConfig",
    "MCTSAgent",
    "MCTSAgentConfig",
    "Dreamer",
    "DreamerConfig",
    "DynaQ",
    "DynaQConfig",
    "DynaQPlus",
    "DynaQPlusConfig",
    "LQRAgent",
    "LQRConfig",
    "MBPO",
    "MBPOConfig",
    "MPCAgent",
    "MuZero",
    "MuZeroConfig",
    "MPCConfig",
    "PETS",
    "PETSConfig",
    "PILCO",
    "PILCOConfig",
    "PlaNet",
    "PlaNetConfig",
    "PolicyIteration",
    "PolicyIterationConfig",
    "PrioritizedSweeping",
    "PrioritizedSweepingConfig",
    "QLearning",
    "QLearningConfig",
    "SAC",
    "SACConfig",
    "TDMPC",
    "TDMPCConfig",
    "ValueIteration",
    "ValueIterationConfig",
]
