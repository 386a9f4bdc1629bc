"""Phase timing outside the algorithm: wall and CPU seconds per named phase.

Every agent owns a :class:`PhaseTimer` (``agent.timer``). The shared loop times acting,
observing and evaluating; an agent marks its own phases by decorating the methods that run them
(``@timed("model")`` on ``train_model``), so its main loop carries no timing code. The figures
reach ``train.csv`` and TensorBoard with the agent's scalars, as ``time/<phase>_s`` (wall),
``time/<phase>_cpu_s`` and ``time/<phase>_calls`` since the last row. Phases may nest (an
agent's ``model`` phase runs inside the loop's ``observe``).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class PhaseTimer:
    """Accumulates wall and CPU seconds and calls per phase until :meth:`scalars` reads them."""

    def __init__(self) -> None:
        self._totals: dict[str, list[float]] = {}

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Context manager adding the block's wall and CPU seconds and one call to phase
        ``name``."""
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            total = self._totals.setdefault(name, [0.0, 0.0, 0.0])
            total[0] += time.perf_counter() - wall
            total[1] += time.process_time() - cpu
            total[2] += 1

    def scalars(self) -> dict[str, float]:
        """``time/<phase>_s``, ``time/<phase>_cpu_s``, ``time/<phase>_calls`` since the last
        call; resets the totals."""
        out: dict[str, float] = {}
        for name, (wall, cpu, calls) in self._totals.items():
            out |= {f"time/{name}_s": wall, f"time/{name}_cpu_s": cpu, f"time/{name}_calls": calls}
        self._totals = {}
        return out


def timed(phase: str) -> Callable[[F], F]:
    """Method decorator: time every call in ``self.timer`` under ``phase``."""

    def wrap(method: F) -> F:
        @functools.wraps(method)
        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            with self.timer.phase(phase):
                return method(self, *args, **kwargs)

        return run  # type: ignore[return-value]

    return wrap
