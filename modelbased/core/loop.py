"""The shared interaction loop (act, observe, update, evaluate) and policy evaluation.

Most agents learn through :func:`run_loop`: it collects real steps, hands each transition to the
agent (which updates itself, e.g. Dyna-Q's direct RL and planning), logs the agent's scalars
every ``log_every`` steps, evaluates every ``eval_every`` steps (and at the last step) on a
separate evaluation env seeded per evaluation (never, if ``eval_episodes`` is 0), and asks for a
checkpoint at the first episode boundary after each ``checkpoint_every`` steps or
``checkpoint_minutes`` of wall-clock time. Every training episode is reset with a seed derived
from the run seed and the episode index, so a run resumed from such a checkpoint continues
exactly as an uninterrupted one would. A stop signal (:mod:`modelbased.core.interrupt`) ends the
loop after the current step; an evaluation it cuts short is marked ``eval_pending`` and redone
first on resume.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from modelbased.core.callbacks import Callback
from modelbased.core.env_utils import load_env_state
from modelbased.core.errors import ConfigError, TrainingDivergedError
from modelbased.core.interrupt import EvaluationInterrupted, requested
from modelbased.core.seeding import derive_seed

if TYPE_CHECKING:
    from modelbased.core.agent import Agent


@dataclasses.dataclass
class LoopState:
    """Where a run stands; plain data, saved in every checkpoint."""

    env_steps: int = 0
    episodes: int = 0
    evaluations: int = 0
    wall_time_s: float = 0.0
    last_checkpoint_step: int = 0
    last_eval_return: float | None = None
    eval_pending: bool = False  # a scheduled evaluation was cut short by a stop signal


def evaluate_policy(
    act: Callable[[Any], Any],
    env: gym.Env,
    episodes: int,
    seed: int,
    world: dict[str, Any] | None = None,
    on_episode_start: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run ``episodes`` episodes of ``act`` on ``env``; episode ``i`` resets with a derived seed.

    ``world`` is persistent env state (e.g. a changing maze's clock) restored before each
    episode, so every evaluation episode sees the same world; ``on_episode_start`` is called
    before each episode (a planner forgets its warm start there). Raises
    :class:`EvaluationInterrupted` if a stop signal arrives during training's evaluations.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise ConfigError(f"evaluate: episodes={episodes!r} must be a whole number >= 1")
    returns, lengths = [], []
    for i in range(episodes):
        load_env_state(env, world)
        if on_episode_start is not None:
            on_episode_start()
        obs, _ = env.reset(seed=derive_seed(seed, i))
        total, length, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(obs))
            total += float(reward)
            length += 1
            done = terminated or truncated
            if requested() is not None:
                raise EvaluationInterrupted
        returns.append(total)
        lengths.append(length)
    return {
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "length_mean": float(np.mean(lengths)),
        "episodes": episodes,
        "returns": returns,
    }


def run_loop(agent: Agent, steps: int, callback: Callback) -> None:
    """Advance ``agent`` by ``steps`` real env steps (see the module docstring)."""
    cfg, state, env = agent.config, agent.loop, agent.env
    target = state.env_steps + steps
    start, wall0 = time.perf_counter(), state.wall_time_s
    obs, _ = env.reset(seed=derive_seed(agent.seed, "episode", state.episodes))
    ep_return, ep_length, stop = 0.0, 0, False
    while state.env_steps < target and not stop and requested() is None:
        action = agent.explore(obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        if not math.isfinite(float(reward)):
            raise TrainingDivergedError(
                f"the environment returned reward {reward} at env step {state.env_steps + 1}"
            )
        state.env_steps += 1
        ep_return += float(reward)
        ep_length += 1
        agent.observe(obs, action, float(reward), next_obs, bool(terminated), bool(truncated))
        obs = next_obs
        state.wall_time_s = wall0 + time.perf_counter() - start
        if state.env_steps % cfg.log_every == 0:
            scalars = agent.train_scalars() | agent.timer.scalars()
            if scalars:
                stop |= callback.on_train(state, scalars) is False
        if may_evaluate(stop) and (
            state.env_steps % cfg.eval_every == 0 or state.env_steps == target
        ):
            stop |= evaluate_now(agent, callback) is False
        if terminated or truncated:
            state.episodes += 1
            stop |= callback.on_episode(state, ep_return, ep_length) is False
            obs, _ = env.reset(seed=derive_seed(agent.seed, "episode", state.episodes))
            ep_return, ep_length = 0.0, 0
            maybe_checkpoint(agent, callback)


def may_evaluate(stop: bool) -> bool:
    """Whether a due evaluation runs: not after a callback asked to stop, but after a stop
    signal it does, in the sense that :func:`evaluate_now` marks it pending for the resume."""
    return not stop or requested() is not None


def maybe_checkpoint(agent: Agent, callback: Callback) -> None:
    """At a consistent point (an episode boundary): ask for a checkpoint when
    ``checkpoint_every`` env steps or ``checkpoint_minutes`` of wall-clock time have passed
    since the last one."""
    state, cfg = agent.loop, agent.config
    by_steps = state.env_steps - state.last_checkpoint_step >= cfg.checkpoint_every
    minutes = (time.monotonic() - agent.checkpoint_clock) / 60
    if by_steps or 0 < cfg.checkpoint_minutes <= minutes:
        request_checkpoint(agent, callback)


def request_checkpoint(agent: Agent, callback: Callback) -> None:
    """Hand the agent to ``on_checkpoint`` now and restart both checkpoint clocks."""
    agent.loop.last_checkpoint_step = agent.loop.env_steps
    agent.checkpoint_clock = time.monotonic()
    callback.on_checkpoint(agent)


def evaluate_now(agent: Agent, callback: Callback) -> bool | None:
    """One scheduled evaluation: seeded by the run seed and the evaluation index; none at all
    when ``eval_episodes`` is 0 (e.g. a benchmark that scores training episodes itself). Its
    stats carry its ``wall_s`` and ``cpu_s``, so callbacks can leave evaluations out of timings
    (``time/eval_s`` in the next train row sums them too), and ``policy_ready``, whether the
    agent's policy acted from what it learned (:attr:`Agent.policy_ready`). One cut short by a
    stop signal is not reported: it sets ``eval_pending`` and returns ``False``."""
    state = agent.loop
    if agent.config.eval_episodes == 0:
        state.eval_pending = False
        return None
    if requested() is not None:
        state.eval_pending = True
        return False
    with agent.timer.phase("eval"):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            stats = agent.evaluate(
                agent.config.eval_episodes, seed=derive_seed(agent.seed, "eval", state.evaluations)
            )
        except EvaluationInterrupted:
            state.eval_pending = True
            return False
        stats |= {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}
    state.eval_pending = False
    stats["policy_ready"] = bool(agent.policy_ready)
    state.evaluations += 1
    state.last_eval_return = stats["return_mean"]
    return callback.on_eval(state, stats)
