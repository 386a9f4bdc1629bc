"""Algorithm configs: one frozen dataclass per algorithm, presets kept as YAML data.

Every algorithm declares a ``Config`` subclass. Values come from (in order) the dataclass
defaults, the per-environment preset in ``modelbased/presets/<algo>.yaml`` (keyed by env id,
with an optional ``default`` entry), a user config file, and ``key=value`` overrides. Unknown
keys and ill-typed or out-of-range values raise :class:`ConfigError` naming the key and what
is accepted, the way rl-zoo's hyperparameter files and Stable-Baselines3's checks behave.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from importlib import resources
from typing import Any, ClassVar, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

from modelbased.core.errors import ConfigError

T = TypeVar("T")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings shared by every agent: how often the shared loop evaluates, logs and saves."""

    algo: ClassVar[str] = "base"

    eval_every: int = 1000
    eval_episodes: int = 10
    log_every: int = 1000
    checkpoint_every: int = 5000

    def __post_init__(self) -> None:
        for name, hint in get_type_hints(type(self)).items():
            if get_origin(hint) is ClassVar:
                continue
            object.__setattr__(self, name, _coerce(self.algo, name, getattr(self, name), hint))
        self.validate()

    def validate(self) -> None:
        """Range checks; subclasses extend with ``super().validate()`` and :meth:`require`."""
        self.require(self.eval_every >= 1, "eval_every", "must be >= 1")
        self.require(self.eval_episodes >= 0, "eval_episodes", "must be >= 0 (0: no evaluations)")
        self.require(self.log_every >= 1, "log_every", "must be >= 1")
        self.require(self.checkpoint_every >= 1, "checkpoint_every", "must be >= 1")

    def require(self, ok: bool, key: str, what: str) -> None:
        if not ok:
            raise ConfigError(f"{self.algo}: {key}={getattr(self, key)!r} {what}")

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Config:
        """Build a config from a mapping, rejecting unknown keys by name."""
        unknown = sorted(set(values) - set(cls.keys()))
        if unknown:
            raise ConfigError(
                f"{cls.algo}: unknown config key {unknown[0]!r}; accepted keys: "
                + ", ".join(sorted(cls.keys()))
            )
        return cls(**values)

    @classmethod
    def preset(cls, env_id: str | None) -> dict[str, Any]:
        """The tuned settings for ``env_id`` from the package's preset file (may be empty)."""
        table = load_presets(cls.algo)
        values = dict(table.get("default", {}))
        if env_id is not None:
            values.update(table.get(env_id, {}))
        return values

    @classmethod
    def resolve(cls, env_id: str | None, overrides: Mapping[str, Any] | None = None) -> Config:
        """Defaults, then the env's preset, then ``overrides`` (strings are parsed by type)."""
        values = cls.preset(env_id)
        values.update(overrides or {})
        return cls.from_dict(values)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> Config:
        return self.from_dict({**self.to_dict(), **changes})


def dataclass_from_dict(cls: type[T], values: Mapping[str, Any], owner: str) -> T:
    """Build any config dataclass from a mapping (e.g. ``--set`` strings): unknown keys and
    ill-typed values raise :class:`ConfigError` naming ``owner``, the key and what is accepted."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(
            f"{owner}: unknown config key {unknown[0]!r}; accepted keys: {', '.join(sorted(names))}"
        )
    hints = get_type_hints(cls)
    return cls(**{k: _coerce(owner, k, v, hints[k]) for k, v in values.items()})


def load_presets(algo: str) -> dict[str, dict[str, Any]]:
    """Read ``modelbased/presets/<algo>.yaml``; an algorithm without presets gives ``{}``."""
    path = resources.files("modelbased.presets").joinpath(f"{algo}.yaml")
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"preset file {algo}.yaml must map env ids to settings")
    return data


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """Turn ``["alpha=0.5", "model=stochastic"]`` into a dict of raw strings."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set takes key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _coerce(owner: str, key: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the field's type hint, parsing strings from the command line."""

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{owner}: bad value {value!r} for {key}: expected {expected}")

    origin = get_origin(hint)
    if origin is Literal:
        choices = get_args(hint)
        if value not in choices:
            raise bad("one of " + ", ".join(map(repr, choices)))
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        is_none = value is None or (isinstance(value, str) and value.lower() in {"none", "null"})
        if is_none and type(None) in get_args(hint):
            return None
        return _coerce(owner, key, value, args[0])
    if origin is tuple:
        item = get_args(hint)[0]
        if isinstance(value, str):
            parsed = yaml.safe_load(value)
            value = parsed if isinstance(parsed, list) else [parsed]
        if not isinstance(value, (list, tuple)):
            raise bad("a list")
        return tuple(_coerce(owner, key, v, item) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise bad("true or false")
    if hint is int:
        if isinstance(value, bool):
            raise bad("an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(float(value.replace("_", ""))) if _is_int_text(value) else int(value)
            except ValueError:
                pass
        raise bad("an integer")
    if hint is float:
        if isinstance(value, bool):
            raise bad("a number")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise bad("a number")
    if hint is str:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    return value


def _is_int_text(text: str) -> bool:
    """Accept ``1e5`` and ``10_000`` for integers, but not ``1.5``."""
    try:
        number = float(text.replace("_", ""))
    except ValueError:
        return False
    return number.is_integer()
