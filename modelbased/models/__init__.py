"""World models: tabular models, the batched imagined environment (``ModelEnv``), and — with
their issues — probabilistic ensembles, RSSM and MuZero's functions. Models never import
planners."""

from modelbased.models.model_env import PROPAGATIONS, ModelEnv
from modelbased.models.tabular import CountModel, DeterministicModel, TabularMDP

__all__ = ["PROPAGATIONS", "CountModel", "DeterministicModel", "ModelEnv", "TabularMDP"]
