"""Exceptions raised by modelbased: each names what was wrong and what is accepted.

The CLI turns every :class:`ModelbasedError` into one line on stderr and exit code 2.
"""

from __future__ import annotations


class ModelbasedError(Exception):
    """Base class of every error the library raises on bad input."""


class ConfigError(ModelbasedError, ValueError):
    """An unknown config key, an ill-typed value or a value out of range."""


class UnknownNameError(ModelbasedError, ValueError):
    """An unknown algorithm, environment or preset name."""


class UnsupportedSpaceError(ModelbasedError, ValueError):
    """An environment whose observation or action space the agent cannot handle."""


class CheckpointError(ModelbasedError):
    """A checkpoint or run directory that is missing, corrupt or of another algorithm."""


class TrainingDivergedError(ModelbasedError, FloatingPointError):
    """NaN or inf appeared in training; the last good state is kept."""


class DataError(ModelbasedError, ValueError):
    """Training data that cannot be used (NaN or inf, wrong shape); names the field."""


class OutputError(ModelbasedError):
    """A file the library was asked to write cannot be written (missing folder, no permission,
    an unknown image format); names the path."""
