"""World models: tabular models now; probabilistic ensembles, RSSM and MuZero's functions
arrive with their issues. Models never import planners."""

from modelbased.models.tabular import CountModel, DeterministicModel, TabularMDP

__all__ = ["CountModel", "DeterministicModel", "TabularMDP"]
