"""Stopping training on SIGINT or SIGTERM at a safe point, with nothing learned lost.

:meth:`Agent.learn` runs its training loop inside :func:`stop_signals`: the first SIGINT or
SIGTERM only records the signal; the shared loop checks :func:`requested` after every step
(evaluations after every evaluation step) and every agent's own loop stops at its next callback,
since :class:`StopOnSignal` answers ``False`` there. ``learn`` then asks for a checkpoint and
raises :class:`TrainingInterrupted`. A second signal interrupts at once (``TrainingInterrupted``
with ``saved=False``), leaving the last checkpoint as it was: checkpoints are written atomically.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from modelbased.core.callbacks import Callback

if TYPE_CHECKING:
    from modelbased.core.loop import LoopState

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received: int | None = None  # signals are process-wide, and so is this flag


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on a signal; a ``KeyboardInterrupt``, so code that handles Ctrl-C
    handles it too.

    Attributes:
        signum: the signal number (``signal.SIGINT`` or ``signal.SIGTERM``).
        saved: whether the state at the stop was handed to ``on_checkpoint`` (False after a
            second signal, which stops at once).
        exit_code: the shell's code for a death by that signal, ``128 + signum`` (130, 143).
    """

    def __init__(self, signum: int, saved: bool = True) -> None:
        super().__init__(f"training stopped by {signal.Signals(signum).name}")
        self.signum = signum
        self.saved = saved
        self.exit_code = 128 + signum


class EvaluationInterrupted(Exception):
    """An evaluation abandoned on a stop signal (the loop redoes it on resume)."""


def requested() -> int | None:
    """The stop signal received inside :func:`stop_signals`, or ``None``."""
    return _received


def _handle(signum: int, frame: Any) -> None:
    global _received
    if _received is not None:  # the second signal: stop now, without saving
        raise TrainingInterrupted(signum, saved=False)
    _received = signum


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Turn SIGINT/SIGTERM into a stop request for the duration (a no-op off the main thread,
    where Python cannot set handlers); the previous handlers are restored on exit."""
    global _received
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    outer = _received
    for s in STOP_SIGNALS:
        signal.signal(s, _handle)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _received = outer


class StopOnSignal(Callback):
    """Answers ``False`` to every hook once a stop signal arrived, so that any training loop
    that honours the callback contract (the shared one, AlphaZero's self-play, ...) stops at its
    next report."""

    def on_train(self, state: LoopState, scalars: dict[str, float]) -> bool | None:
        """``False`` after a stop signal."""
        return None if _received is None else False

    def on_episode(self, state: LoopState, ret: float, length: int) -> bool | None:
        """``False`` after a stop signal."""
        return None if _received is None else False

    def on_eval(self, state: LoopState, stats: dict[str, Any]) -> bool | None:
        """``False`` after a stop signal."""
        return None if _received is None else False
