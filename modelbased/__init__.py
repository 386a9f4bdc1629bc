"""modelbased: model-based reinforcement learning, side by side with model-free baselines.

``import modelbased`` registers the package's environments (``modelbased/DynaMaze-v0``, ...)
and exposes every agent class (``modelbased.DynaQ``, ...). See README.md and docs/.
"""

from modelbased.core.version import package_version

__version__ = package_version()

from modelbased import envs  # noqa: E402,F401  (registers the environments)
from modelbased.agents import *  # noqa: E402,F401,F403
from modelbased.agents import __all__ as _agents  # noqa: E402
from modelbased.core import *  # noqa: E402,F401,F403
from modelbased.core import __all__ as _core  # noqa: E402
from modelbased.core.registry import ALGORITHMS, agent_class  # noqa: E402


def load(path: str, env=None, device: str = "auto"):  # noqa: ANN001, ANN201
    """Load any agent from a checkpoint, whichever algorithm wrote it, onto ``device``."""
    return Agent.load(path, env, device)  # noqa: F405


__all__ = ["ALGORITHMS", "__version__", "agent_class", "load", *_agents, *_core]
