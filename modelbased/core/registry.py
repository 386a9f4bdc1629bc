"""Algorithm names (``dyna-q``, ``pets``, ...) mapped to agent classes."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from modelbased.core.errors import UnknownNameError

if TYPE_CHECKING:
    from modelbased.core.agent import Agent

ALGORITHMS: dict[str, type[Agent]] = {}
A = TypeVar("A", bound="type[Agent]")


def register_agent(cls: A) -> A:
    """Class decorator: make the agent reachable by its ``algo`` name."""
    ALGORITHMS[cls.algo] = cls
    return cls


def agent_class(name: str) -> type[Agent]:
    """The agent class of an algorithm name; UnknownNameError listing the known ones."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown algorithm {name!r}; available: {', '.join(sorted(ALGORITHMS))}"
        ) from None
