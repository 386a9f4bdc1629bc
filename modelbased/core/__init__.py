"""Core layer: Agent base and configs, the shared interaction loop, callbacks, seeding,
checkpoints and errors. Imports nothing from the layers above it."""

from modelbased.core.agent import Agent
from modelbased.core.callbacks import Callback, CallbackList, EpisodeLog
from modelbased.core.config import AgentConfig, Config
from modelbased.core.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    ModelbasedError,
    OutputError,
    TrainingDivergedError,
    UnknownNameError,
    UnsupportedSpaceError,
)
from modelbased.core.loop import LoopState, evaluate_policy

__all__ = [
    "Agent",
    "Callback",
    "CallbackList",
    "CheckpointError",
    "AgentConfig",
    "Config",
    "ConfigError",
    "DataError",
    "EpisodeLog",
    "LoopState",
    "ModelbasedError",
    "OutputError",
    "TrainingDivergedError",
    "UnknownNameError",
    "UnsupportedSpaceError",
    "evaluate_policy",
]
