"""World models: tabular models, batched probabilistic ensembles (PETS/MBPO), and the batched
imagined environment (``ModelEnv``); RSSM and MuZero's functions arrive with their issues.
Models never import planners."""

from modelbased.models.ensemble import EnsembleConfig, EnsembleModel, FitReport, Prediction
from modelbased.models.layers import EnsembleLinear, EnsembleMLP, ensemble_mlp
from modelbased.models.model_env import PROPAGATIONS, ModelEnv
from modelbased.models.normalizer import Normalizer
from modelbased.models.tabular import CountModel, DeterministicModel, TabularMDP

__all__ = [
    "PROPAGATIONS",
    "CountModel",
    "DeterministicModel",
    "EnsembleConfig",
    "EnsembleLinear",
    "EnsembleMLP",
    "EnsembleModel",
    "FitReport",
    "ModelEnv",
    "Normalizer",
    "Prediction",
    "TabularMDP",
    "ensemble_mlp",
]
