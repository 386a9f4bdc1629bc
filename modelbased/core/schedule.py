"""The one schedule rule every agent uses: "every ``n`` env steps once ``k`` have been taken".

Agents read the shared loop's step counter (``agent.loop.env_steps``, the real steps taken so
far, the current one included inside ``observe``) and ask :func:`due` whether a periodic phase
(a gradient step, a model refit, a replan) falls on it, the way Stable-Baselines3 converts
``train_freq`` and ``learning_starts`` into one test.
"""

from __future__ import annotations


def due(step: int, every: int, after: int = 0) -> bool:
    """True at steps ``after, after + every, after + 2 every, ...``; with ``every = 0`` only at
    ``after`` (a phase that runs once). ``step`` counts real steps taken, from 1."""
    if step < after:
        return False
    return step == after if every <= 0 else (step - after) % every == 0


def crossed(before: int, after: int, every: int) -> bool:
    """True when a step ``k * every`` lies in ``(before, after]``: a loop that advances several
    steps at once (a round of self-play games) passed a scheduled point."""
    return after // every > before // every
