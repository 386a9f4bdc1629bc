"""The callback interface every agent reports through (SB3-style: return ``False`` to stop).

The shared loop and agents that drive their own loop (self-play, replay-ratio agents) call the
same hooks, so ``modelbased.runs`` records any agent without knowing which one it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelbased.core.agent import Agent
    from modelbased.core.loop import LoopState


class Callback:
    """Override what you need; every hook may return ``False`` to stop training early."""

    def on_learn_start(self, agent: Agent, total_steps: int) -> None:
        """Called once before the first step of ``learn``."""

    def on_train(self, state: LoopState, scalars: dict[str, float]) -> bool | None:
        """Losses and diagnostics of the last ``log_every`` steps."""

    def on_episode(self, state: LoopState, ret: float, length: int) -> bool | None:
        """A training episode ended (``state.episodes`` already counts it)."""

    def on_eval(self, state: LoopState, stats: dict[str, Any]) -> bool | None:
        """An evaluation on the separate evaluation env finished."""

    def on_checkpoint(self, agent: Agent) -> None:
        """The agent is at a consistent point (an episode boundary) and may be saved."""

    def on_learn_end(self, agent: Agent) -> None:
        """Called once when ``learn`` finishes normally (also after an early stop by a callback)."""


class CallbackList(Callback):
    """Several callbacks called in order; training stops if any returns ``False``."""

    def __init__(self, callbacks: Iterable[Callback]) -> None:
        self.callbacks = list(callbacks)

    def _all(self, hook: str, *args: Any) -> bool | None:
        keep = True
        for cb in self.callbacks:
            if getattr(cb, hook)(*args) is False:
                keep = False
        return None if keep else False

    def on_learn_start(self, agent: Agent, total_steps: int) -> None:
        """Call every callback's ``on_learn_start``."""
        self._all("on_learn_start", agent, total_steps)

    def on_train(self, state: LoopState, scalars: dict[str, float]) -> bool | None:
        """Call every callback; ``False`` if any asks to stop."""
        return self._all("on_train", state, scalars)

    def on_episode(self, state: LoopState, ret: float, length: int) -> bool | None:
        """Call every callback; ``False`` if any asks to stop."""
        return self._all("on_episode", state, ret, length)

    def on_eval(self, state: LoopState, stats: dict[str, Any]) -> bool | None:
        """Call every callback; ``False`` if any asks to stop."""
        return self._all("on_eval", state, stats)

    def on_checkpoint(self, agent: Agent) -> None:
        """Call every callback's ``on_checkpoint``."""
        self._all("on_checkpoint", agent)

    def on_learn_end(self, agent: Agent) -> None:
        """Call every callback's ``on_learn_end``."""
        self._all("on_learn_end", agent)


def as_callback(callback: Callback | Iterable[Callback] | None) -> Callback:
    """One callback from ``None``, a callback or an iterable of them."""
    if callback is None:
        return Callback()
    if isinstance(callback, Callback):
        return callback
    return CallbackList(callback)


class EpisodeLog(Callback):
    """Records every training episode's end step, return and length; with ``max_episodes`` it
    stops training after that many episodes (SB3's ``StopTrainingOnMaxEpisodes``)."""

    def __init__(self, max_episodes: int | None = None) -> None:
        self.max_episodes = max_episodes
        self.env_steps: list[int] = []
        self.returns: list[float] = []
        self.lengths: list[int] = []

    def on_episode(self, state: LoopState, ret: float, length: int) -> bool | None:
        """Record the episode; ``False`` once ``max_episodes`` episodes are recorded."""
        self.env_steps.append(state.env_steps)
        self.returns.append(float(ret))
        self.lengths.append(int(length))
        return self.max_episodes is None or len(self.lengths) < self.max_episodes
