"""Training progress on stderr that fits where it runs: a live bar on a terminal; elsewhere (CI,
nohup, a pipe) one plain line per evaluation and at most every ``every_s`` seconds between them.

Both read the agent's :class:`~modelbased.core.loop.LoopState` from a background thread, so they
follow the true step count of any agent, even inside a long episode or a long model fit, and not
only at the callbacks.
"""

from __future__ import annotations

import datetime
import sys
import threading
import time
from typing import IO, Any

from modelbased.core.callbacks import Callback
from modelbased.core.loop import LoopState


def format_number(value: float | None) -> str:
    """A return for display: 3 significant digits, ``-`` for none yet."""
    return "-" if value is None else f"{value:.3g}"


def _rate(sps: float) -> str:
    return f"{sps:.3g}" if sps < 100 else f"{sps:,.0f}"


class Progress(Callback):
    """The ``train`` progress display (see the module docstring); nothing with ``quiet``.

    Args:
        quiet: show nothing.
        stream: where to write (default ``sys.stderr``).
        every_s: seconds between plain lines when no evaluation printed one.
        tty: force the bar (True) or the plain lines (False); default: whether ``stream`` is a
            terminal.
    """

    def __init__(
        self,
        quiet: bool = False,
        stream: IO[str] | None = None,
        every_s: float = 30.0,
        tty: bool | None = None,
    ) -> None:
        self.quiet, self.every_s = quiet, every_s
        self.stream = stream if stream is not None else sys.stderr
        self.tty = tty if tty is not None else bool(getattr(self.stream, "isatty", bool)())
        self.bar: Any = None
        self.agent: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._last_line = 0.0

    # -- callbacks ------------------------------------------------------------------------------
    def on_learn_start(self, agent: Any, total_steps: int) -> None:
        """Start the bar or the plain lines, and the thread that refreshes them."""
        self.agent = agent
        self.total = agent.loop.env_steps + total_steps
        self.start_steps, self.start_time = agent.loop.env_steps, time.perf_counter()
        self._last_line = time.monotonic()
        if self.quiet:
            return
        if self.tty:
            self._start_bar()
        self._thread = threading.Thread(target=self._tick, daemon=True)
        self._thread.start()

    def on_eval(self, state: LoopState, stats: dict[str, Any]) -> None:
        """A plain line per evaluation (the bar shows the new eval return)."""
        if not self.quiet and not self.tty:
            self._line()
        self._refresh()

    def on_learn_end(self, agent: Any) -> None:
        """Show the final count."""
        self._refresh()

    def close(self) -> None:
        """Stop the thread and the bar, showing the true final step count."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._refresh()
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    # -- the two displays -----------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Step, total, episodes, last eval return, steps/s of this segment and ETA (s)."""
        loop = self.agent.loop
        elapsed = time.perf_counter() - self.start_time
        sps = (loop.env_steps - self.start_steps) / elapsed if elapsed > 0 else 0.0
        left = max(self.total - loop.env_steps, 0)
        return {
            "step": loop.env_steps,
            "total": self.total,
            "episodes": loop.episodes,
            "eval": format_number(loop.last_eval_return),
            "sps": sps,
            "eta": left / sps if sps > 0 else None,
        }

    def line(self) -> str:
        """The plain progress line: ``step 400/1000 (40%), 2 episodes, last eval -1.44e+03,
        12.3 steps/s, ETA 0:00:49``."""
        s = self.status()
        eta = "-" if s["eta"] is None else str(datetime.timedelta(seconds=round(s["eta"])))
        pct = 100 * s["step"] / s["total"] if s["total"] else 100.0
        return (
            f"{self.agent.algo} {self.agent.env_id}: step {s['step']}/{s['total']} ({pct:.0f}%), "
            f"{s['episodes']} episodes, last eval {s['eval']}, {_rate(s['sps'])} steps/s, ETA {eta}"
        )

    def _line(self) -> None:
        with self._lock:
            print(self.line(), file=self.stream, flush=True)
            self._last_line = time.monotonic()

    def _tick(self) -> None:
        while not self._stop.wait(0.25):
            if self.tty:
                self._refresh()
            elif time.monotonic() - self._last_line >= self.every_s:
                self._line()

    def _start_bar(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self.bar = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("ep {task.fields[episodes]}"),
            TextColumn("eval {task.fields[eval]}"),
            TextColumn("{task.fields[sps]} steps/s"),
            TimeRemainingColumn(),
            console=Console(file=self.stream, force_terminal=True),
        )
        self.bar.start()
        s = self.status()
        self.task = self.bar.add_task(
            f"{self.agent.algo} {self.agent.env_id}",
            total=s["total"],
            completed=s["step"],
            episodes=s["episodes"],
            eval=s["eval"],
            sps="-",
        )

    def _refresh(self) -> None:
        if self.bar is None or self.agent is None:
            return
        s = self.status()
        self.bar.update(
            self.task,
            completed=s["step"],
            episodes=s["episodes"],
            eval=s["eval"],
            sps=_rate(s["sps"]),
        )
