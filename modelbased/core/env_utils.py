"""Making environments from ids or instances, with errors that say what to do next."""

from __future__ import annotations

import copy
import difflib
from typing import Any

import gymnasium as gym
import numpy as np

from modelbased.core.errors import DataError, UnknownNameError, UnsupportedSpaceError


def make_env(env: str | gym.Env, **kwargs: Any) -> gym.Env:
    """``gym.make`` for ids (unknown ones raise :class:`UnknownNameError`); instances pass."""
    if isinstance(env, gym.Env):
        return env
    if not isinstance(env, str):
        raise TypeError(f"env must be a Gymnasium id or gymnasium.Env, got {type(env).__name__}")
    try:
        return gym.make(env, **kwargs)
    except gym.error.DependencyNotInstalled as exc:
        raise UnknownNameError(f"environment {env!r} needs an extra package: {exc}") from exc
    except gym.error.Error as exc:
        close = difflib.get_close_matches(env, list(gym.registry), n=3, cutoff=0.75)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownNameError(
            f"unknown environment {env!r}{hint} (`modelbased list` shows the environments)"
        ) from exc


def make_eval_env(env: str | gym.Env) -> gym.Env:
    """A separate environment of the same kind, for evaluation."""
    if isinstance(env, str):
        return make_env(env)
    if env.spec is not None:
        try:
            return gym.make(env.spec)
        except (gym.error.Error, ValueError, TypeError):  # e.g. wrappers it cannot recreate
            pass
    return copy.deepcopy(env)


def env_id(env: gym.Env) -> str | None:
    """The env's registered id, ``None`` for an env made without one."""
    return env.spec.id if env.spec is not None else None


def env_name(env: gym.Env) -> str:
    """The env's id for messages, else the class name of the unwrapped env (no spec)."""
    return env_id(env) or type(env.unwrapped).__name__


def require_discrete(algo: str, env: gym.Env, *, observation: bool, action: bool) -> None:
    """Raise :class:`UnsupportedSpaceError` unless the named spaces are ``Discrete``."""
    name = env_name(env)
    for kind, needed, space in (
        ("observation", observation, env.observation_space),
        ("action", action, env.action_space),
    ):
        if needed and not isinstance(space, gym.spaces.Discrete):
            raise UnsupportedSpaceError(f"{algo} needs a Discrete {kind} space; {name} has {space}")


def require_box(what: str, env: gym.Env, *, observation: bool, action: bool) -> None:
    """Raise :class:`UnsupportedSpaceError` unless the named spaces are flat ``Box`` spaces."""
    name = env_name(env)
    for kind, needed, space in (
        ("observation", observation, env.observation_space),
        ("action", action, env.action_space),
    ):
        if needed and not (isinstance(space, gym.spaces.Box) and len(space.shape) == 1):
            raise UnsupportedSpaceError(f"{what} needs a flat Box {kind} space; {name} has {space}")


def require_box_or_discrete(what: str, env: gym.Env) -> None:
    """Raise :class:`UnsupportedSpaceError` unless the action space is a flat ``Box`` or
    ``Discrete``."""
    space = env.action_space
    if isinstance(space, gym.spaces.Discrete) or (
        isinstance(space, gym.spaces.Box) and len(space.shape) == 1
    ):
        return
    raise UnsupportedSpaceError(
        f"{what} needs a flat Box or a Discrete action space; {env_name(env)} has {space}"
    )


def action_size(space: gym.Space) -> int:
    """The width of an action as a network sees it: a flat Box's dimension, or a Discrete
    space's number of actions (one-hot or one output per action)."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise UnsupportedSpaceError(f"no action width for {space}: a flat Box or Discrete only")
    return int(space.shape[0])


def env_state(env: gym.Env) -> dict[str, Any] | None:
    """Plain-data state of environments that keep state across episodes (e.g. changing mazes)."""
    fn = getattr(env.unwrapped, "state_dict", None)
    return fn() if callable(fn) else None


def load_env_state(env: gym.Env, state: dict[str, Any] | None) -> None:
    """Restore :func:`env_state` into an env that keeps state across episodes (no-op otherwise)."""
    fn = getattr(env.unwrapped, "load_state_dict", None)
    if state is not None and callable(fn):
        fn(state)


def check_observation(space: gym.Space, obs: Any) -> None:
    """Raise :class:`DataError` unless ``obs`` fits ``space``: an integer state of a
    ``Discrete`` space, an array of a ``Box`` space's shape (any real dtype)."""
    if isinstance(space, gym.spaces.Discrete):
        ok = isinstance(obs, (int, np.integer)) and not isinstance(obs, bool)
        ok = ok or (isinstance(obs, np.ndarray) and obs.shape == () and obs.dtype.kind in "iu")
        if not ok or not space.start <= int(obs) < space.start + space.n:
            raise DataError(f"obs={obs!r} is not a state of {space}")
    elif isinstance(space, gym.spaces.Box):
        try:
            arr = np.asarray(obs, dtype=float)
        except (TypeError, ValueError):
            raise DataError(
                f"obs of type {type(obs).__name__} is not an array of {space}"
            ) from None
        if arr.shape != space.shape:
            raise DataError(f"obs has shape {arr.shape}; {space} takes {space.shape}")
