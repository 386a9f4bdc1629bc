"""The one config system: validated frozen dataclasses, nested, with presets kept as YAML data.

:class:`Config` is the base of every settings class, agents' and components' alike
(``EnsembleConfig``, ``CEMConfig``, ``MCTSConfig``, ...). A field's type hint is its contract:
``__post_init__`` coerces and checks each value against it (strings from the command line are
parsed by type), then :meth:`Config.validate` checks ranges. A field typed as another ``Config``
is a *section*: an agent that owns a component nests the component's config
(``PETSConfig.model: EnsembleConfig``), so one knob has one name in every agent and is set by its
dotted key (``model.hidden=256``). A field typed as a union of configs is a section whose class
is chosen by its ``kind`` field (``planner.kind=mppi``).

:class:`AgentConfig` adds what the shared loop reads (evaluation, logging, checkpoints) and
resolves, in order: the dataclass defaults, the per-environment preset in
``modelbased/presets/<algo>.yaml`` (keyed by env id, with an optional ``default`` entry), a user
config file and ``key=value`` overrides. Unknown keys, ill-typed and out-of-range values raise
:class:`ConfigError` in one format, ``<owner>: <dotted.key>=<value> <what is accepted>``; a key
that moved into a section names its new place (``moved``).

Each field carries a one-line comment of what it means and its unit; :func:`describe` prints
the tree with defaults and those comments (``modelbased list ALGO``).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import inspect
import math
import re
import types
import typing
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

from modelbased.core.errors import ConfigError

C = TypeVar("C", bound="Config")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
# (owner, prefix) of the config being built: errors name the agent and the dotted key
_NAMING: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "config_naming", default=None
)


@contextlib.contextmanager
def _naming(owner: str, prefix: str) -> Iterator[None]:
    token = _NAMING.set((owner, prefix))
    try:
        yield
    finally:
        _NAMING.reset(token)


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of every settings dataclass: coercion by type hint, range checks, nested sections.

    Subclasses are ``@dataclasses.dataclass(frozen=True)``, extend :meth:`validate` with
    ``super().validate()`` and :meth:`require`, and may list ``moved`` keys (old flat name ->
    new dotted name) so that old spellings get an error that names the new place.
    """

    moved: ClassVar[dict[str, str]] = {}

    def __post_init__(self) -> None:
        fields = {f.name: f for f in dataclasses.fields(self)}
        with _naming(*(_NAMING.get() or (_owner(type(self)), ""))):
            for name, hint in _hints(type(self)).items():
                value, classes = getattr(self, name), _sections(hint)
                if classes and isinstance(value, Mapping):
                    value = _build_section(name, value, classes, fields[name], migrate=False)
                object.__setattr__(self, name, _coerce(name, value, hint))
            self.validate()

    def validate(self) -> None:
        """Range checks; subclasses extend with ``super().validate()`` and :meth:`require`."""

    def require(self, ok: bool, key: str, what: str) -> None:
        """Raise :class:`ConfigError` ``"<owner>: <key>=<value> <what>"`` unless ``ok``."""
        if not ok:
            raise _error(key, getattr(self, key), what)

    # -- building ------------------------------------------------------------------------------
    @classmethod
    def keys(cls) -> list[str]:
        """The field names of this level (sections included, not their keys)."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls: type[C], values: Mapping[str, Any], *, migrate: bool = False) -> C:
        """Build from a nested mapping and/or dotted keys (``{"model.hidden": 256}``).

        Unknown keys raise :class:`ConfigError` naming the dotted key and the accepted ones; a
        key listed in ``moved`` names its new place, or with ``migrate=True`` (a config written
        by an earlier version) is moved there.
        """
        owner, prefix = _NAMING.get() or (_owner(cls), "")
        with _naming(owner, prefix):
            return cls(**_build_kwargs(cls, nest(values), migrate))

    def to_dict(self) -> dict[str, Any]:
        """Plain nested data (sections as dicts, tuples as lists), as YAML and checkpoints hold."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def replace(self: C, **changes: Any) -> C:
        """A copy with ``changes`` (dotted keys reach into sections: ``**{"model.lr": 1e-3}``)."""
        return type(self).from_dict(merge(self.to_dict(), nest(changes)))


@dataclasses.dataclass(frozen=True)
class AgentConfig(Config):
    """Settings shared by every agent: how often the shared loop evaluates, logs and saves."""

    algo: ClassVar[str] = "base"

    eval_every: int = 1000  # env steps between evaluations
    eval_episodes: int = 10  # episodes per evaluation (0: no evaluations)
    log_every: int = 1000  # env steps between train.csv rows
    checkpoint_every: int = 5000  # env steps between checkpoints (at the next episode end)
    # wall-clock minutes between checkpoints (at the next episode end; 0: by steps only)
    checkpoint_minutes: float = 5.0

    def validate(self) -> None:
        """Cadences >= 1 and ``eval_episodes`` >= 0."""
        self.require(self.eval_every >= 1, "eval_every", "must be >= 1")
        self.require(self.eval_episodes >= 0, "eval_episodes", "must be >= 0 (0: no evaluations)")
        self.require(self.log_every >= 1, "log_every", "must be >= 1")
        self.require(self.checkpoint_every >= 1, "checkpoint_every", "must be >= 1")
        self.require(
            self.checkpoint_minutes >= 0, "checkpoint_minutes", "must be >= 0 (0: by steps only)"
        )

    @classmethod
    def preset(cls, env_id: str | None) -> dict[str, Any]:
        """The tuned settings for ``env_id`` from the package's preset file (may be empty)."""
        table = load_presets(cls.algo)
        values = nest(table.get("default") or {})
        if env_id is not None:
            values = merge(values, nest(table.get(env_id) or {}))
        return values

    @classmethod
    def resolve(cls: type[C], env_id: str | None, overrides: Mapping[str, Any] | None = None) -> C:
        """Defaults, then the env's preset, then ``overrides`` (strings are parsed by type)."""
        values = merge(cls.preset(env_id), nest(overrides or {}))  # type: ignore[attr-defined]
        return cls.from_dict(values)


# -- mappings: dotted keys, merging ---------------------------------------------------------------
def nest(values: Mapping[str, Any]) -> dict[str, Any]:
    """``{"model.hidden": 256, "seed": 1}`` -> ``{"model": {"hidden": 256}, "seed": 1}``
    (nested mappings are nested too; a later dotted key updates an earlier section)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise ConfigError(f"config keys must be strings, got {key!r}")
        head, dot, rest = key.partition(".")
        value = nest(value) if isinstance(value, Mapping) else value
        if dot:
            value = nest({rest: value})
        if isinstance(value, dict) and isinstance(out.get(head), dict):
            out[head] = merge(out[head], value)
        else:
            out[head] = value
    return out


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``update``, section by section. A section whose ``kind`` changes is
    replaced, not merged (its keys belong to another class)."""
    out = dict(base)
    for key, value in update.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            same_kind = "kind" not in value or value["kind"] == old.get("kind")
            out[key] = merge(old, value) if same_kind else dict(value)
        else:
            out[key] = value
    return out


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Inverse of :func:`nest`: ``{"model": {"hidden": 256}}`` -> ``{"model.hidden": 256}``."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


# -- presets and overrides ----------------------------------------------------------------------
def load_presets(algo: str) -> dict[str, dict[str, Any]]:
    """Read ``modelbased/presets/<algo>.yaml``; an algorithm without presets gives ``{}``."""
    path = resources.files("modelbased.presets").joinpath(f"{algo}.yaml")
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"preset file {algo}.yaml must map env ids to settings")
    return data


def yaml_problem(exc: yaml.YAMLError) -> str:
    """One line saying where and what a YAML error is: ``line 2, column 4: expected ...``."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or (str(exc).strip().splitlines() or ["bad YAML"])[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


def read_yaml(path: str | Path, error: type[Exception] = ConfigError, what: str = "file") -> Any:
    """The YAML document in ``path`` (``None`` when empty); an unreadable file or bad YAML is an
    ``error`` of one line naming ``what``, the path and the problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise error(f"{what} {path} is not UTF-8 text") from None
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{what} {path} is not valid YAML ({yaml_problem(exc)})") from None
    except RecursionError:
        raise error(f"{what} {path} nests too deeply") from None


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """Turn ``["model.hidden=256", "planner.kind=mppi"]`` into a dict of raw strings."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set takes key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


# -- the tree, for `modelbased list ALGO` --------------------------------------------------------
def describe(config: Config, prefix: str = "") -> list[str]:
    """One line per key, ``dotted.key = default  # what it means``, sections indented."""
    docs = field_docs(type(config))
    lines: list[str] = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, Config):
            lines.append(f"{prefix}{f.name}:  # {docs.get(f.name, type(value).__name__)}")
            lines += describe(value, prefix + "  ")
            continue
        shown = yaml.safe_dump(_plain(value), default_flow_style=True).strip()
        shown = shown.removesuffix("\n...").removesuffix("...").strip()
        comment = docs.get(f.name, "")
        lines.append(f"{prefix}{f.name} = {shown}" + (f"  # {comment}" if comment else ""))
    return lines


_FIELD = re.compile(r"^\s+(\w+)\s*:[^=#]+(?:=[^#]*)?(?:#\s*(.*))?$")
_COMMENT = re.compile(r"^\s+#\s*(.*)$")


def field_docs(cls: type) -> dict[str, str]:
    """Each field's comment in the class source: the trailing one, else the comment lines just
    above it (the convention every config follows: one line of meaning and unit per field)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass) or klass is object:
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        above: list[str] = []
        for line in source.splitlines()[1:]:
            comment = _COMMENT.match(line)
            if comment:
                above.append(comment.group(1).strip())
                continue
            field = _FIELD.match(line)
            if field and not line.lstrip().startswith(("def ", "return ", "@")):
                trailing = (field.group(2) or "").strip()
                if trailing.startswith(("type:", "noqa", "fmt:")):
                    trailing = ""
                text = trailing or " ".join(above)
                if text:
                    docs[field.group(1)] = text
            above = []
    return docs


# -- coercion ----------------------------------------------------------------------------------
def _owner(cls: type) -> str:
    algo = getattr(cls, "algo", None)
    return algo if isinstance(algo, str) and algo != "base" else cls.__name__


def _error(key: str, value: Any, what: str) -> ConfigError:
    owner, prefix = _NAMING.get() or ("config", "")
    return ConfigError(f"{owner}: {prefix}{key}={value!r} {what}")


def _hints(cls: type) -> dict[str, Any]:
    return {
        k: v
        for k, v in get_type_hints(cls).items()
        if get_origin(v) is not ClassVar and v is not ClassVar
    }


def _sections(hint: Any) -> list[type[Config]]:
    """The config classes a field may hold (one for a section, several for a union)."""
    options = get_args(hint) if get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    return [c for c in options if isinstance(c, type) and issubclass(c, Config)]


def _kind(cls: type[Config]) -> str | None:
    field = {f.name: f for f in dataclasses.fields(cls)}.get("kind")
    return None if field is None else field.default  # type: ignore[return-value]


def _build_kwargs(cls: type[Config], values: dict[str, Any], migrate: bool) -> dict[str, Any]:
    """Check keys (unknown, moved) and build nested sections; leaf values are coerced by
    ``__post_init__``."""
    names = cls.keys()
    moved: dict[str, Any] = {}
    for key in [k for k in values if k not in names]:
        new = cls.moved.get(key)
        if new is None:
            accepted = ", ".join(sorted(names))
            raise _error(key, values[key], f"is not a config key; accepted: {accepted}")
        if not migrate:
            raise _error(key, values[key], f"has moved: set {new} instead")
        moved[new] = values[key]
    hints = _hints(cls)
    kept = {k: v for k, v in values.items() if k in names}
    if migrate:  # an earlier version gave some sections as their kind alone (net: mlp)
        kept = {k: {"kind": v} if _sections(hints[k]) and isinstance(v, str) else v
                for k, v in kept.items()}  # fmt: skip
    values = merge(kept, nest(moved))
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out = {}
    for key, value in values.items():
        classes = _sections(hints[key])
        if classes and not isinstance(value, Config):
            value = _build_section(key, value, classes, fields[key], migrate)
        out[key] = value
    return out


def _build_section(
    key: str, value: Any, classes: list[type[Config]], field: dataclasses.Field, migrate: bool
) -> Config:
    """A section from a mapping: its class by ``kind`` among a union (default: the field
    default's), its missing keys from the field's default when the class is unchanged. A config
    written by an earlier version (``migrate``) keeps only the keys the chosen class has (old
    flat configs held every optimizer's settings)."""
    if not isinstance(value, Mapping):
        keys = ", ".join(f"{key}.{k}" for k in classes[0].keys())  # noqa: SIM118 (a classmethod)
        raise _error(key, value, f"is a section: set its keys ({keys})")
    default = field.default if field.default is not dataclasses.MISSING else None
    if default is None and field.default_factory is not dataclasses.MISSING:
        default = field.default_factory()
    klass = classes[0]
    if len(classes) > 1:
        by_kind = {_kind(c): c for c in classes}
        kind = value.get("kind", _kind(type(default)) if default is not None else None)
        if kind not in by_kind:
            choices = ", ".join(repr(k) for k in by_kind)
            raise _error(f"{key}.kind", kind, f"must be one of {choices}")
        klass = by_kind[kind]
    base = default.to_dict() if type(default) is klass else {}
    value = dict(value)
    if migrate:
        value = {k: v for k, v in value.items() if k in klass.keys()}  # noqa: SIM118
    owner, prefix = _NAMING.get() or (_owner(klass), "")
    with _naming(owner, f"{prefix}{key}."):
        return klass.from_dict(merge(base, value), migrate=migrate)


def _plain(value: Any) -> Any:
    if isinstance(value, Config):
        return value.to_dict()
    return list(value) if isinstance(value, tuple) else value


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the field's type hint, parsing strings from the command line."""

    def bad(expected: str) -> ConfigError:
        return _error(key, value, f"is not {expected}")

    origin = get_origin(hint)
    if _sections(hint):
        if isinstance(value, tuple(_sections(hint))):
            return value
        raise bad("a " + " or ".join(c.__name__ for c in _sections(hint)))
    if origin is Literal:
        choices = get_args(hint)
        if value not in choices:
            raise _error(key, value, "must be one of " + ", ".join(map(repr, choices)))
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        is_none = value is None or (isinstance(value, str) and value.lower() in {"none", "null"})
        if is_none and type(None) in get_args(hint):
            return None
        return _coerce(key, value, args[0])
    if origin is tuple:
        items = get_args(hint)
        if isinstance(value, str):
            parsed = yaml.safe_load(value)
            value = parsed if isinstance(parsed, list) else [parsed]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise bad("a list")
        if len(items) == 2 and items[1] is Ellipsis:
            return tuple(_coerce(key, v, items[0]) for v in value)
        if len(value) != len(items):
            raise bad(f"a list of {len(items)}")
        return tuple(_coerce(key, v, t) for v, t in zip(value, items, strict=True))
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise bad("true or false")
    if hint is int:
        number = _number(value)
        if number is None or not float(number).is_integer():
            raise bad("an integer")
        return int(number)
    if hint is float:
        number = _number(value)
        if number is None or not math.isfinite(number):
            raise bad("a finite number")
        return float(number)
    if hint is str:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    return value


def _number(value: Any) -> float | int | None:
    """A number from a number or its text (``1e5``, ``10_000``); ``None`` if not one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalars
        return _number(value.item())
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return float(text)
        except ValueError:
            return None
    return None
