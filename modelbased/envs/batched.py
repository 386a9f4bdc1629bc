"""Episodes of ``N`` environments played together, for agents that search all of them in one
batched call (MuZero's self-play actors).

Both kinds share one face: ``reset(seeds) -> observations [N, *O]``, ``step(actions [N]) ->
(observations, rewards [N], done bool [N])``, ``legal(observations) -> bool [N, A]``, and a
``two_player`` flag:

* :class:`VectorEpisodes` - a single-player Gymnasium task behind Gymnasium's vector API
  (``SyncVectorEnv``); the reward is the env's.
* :class:`SelfPlayEpisodes` - a two-player board game played against itself on its batched
  rules; the observation is the canonical board of the player to move and the reward that of
  the player who moved (+1 for a winning move).

A caller plays whole episodes: it keeps stepping all ``N`` and ignores each one's outputs
after it is done (the vector env resets a finished env on its next step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import gymnasium as gym
import numpy as np

from modelbased.core.env_utils import make_env
from modelbased.envs.games import Game


class EpisodeBatch(Protocol):
    """``N`` environments stepped together (see the module docstring)."""

    num_envs: int
    two_player: bool

    def reset(self, seeds: list[int]) -> np.ndarray:
        """Start an episode in every env; observations ``[N, *O]``."""
        ...

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Step every env: ``(observations [N, *O], rewards [N], done [N])``."""
        ...

    def legal(self, observations: np.ndarray) -> np.ndarray:
        """Legal actions ``bool [N, A]`` at ``observations``."""
        ...


class VectorEpisodes:
    """``num_envs`` copies of a single-player env in a ``gymnasium.vector.SyncVectorEnv``; ``env``
    is an id or a function making one copy (e.g. ``make_eval_env`` of an instance, keeping its
    ``gym.make`` arguments)."""

    two_player = False

    def __init__(self, env: str | Callable[[], gym.Env], num_envs: int) -> None:
        self.num_envs = int(num_envs)
        make = env if callable(env) else (lambda: make_env(env))
        self.envs = gym.vector.SyncVectorEnv(
            [make for _ in range(self.num_envs)],
            autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP,
        )
        self.num_actions = int(self.envs.single_action_space.n)  # type: ignore[attr-defined]

    def reset(self, seeds: list[int]) -> np.ndarray:
        """Start an episode in every env, env ``i`` seeded with ``seeds[i]``."""
        obs, _ = self.envs.reset(seed=list(seeds))
        return obs

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One step of every env: ``(observations, rewards, terminated | truncated)``."""
        obs, reward, terminated, truncated, _ = self.envs.step(np.asarray(actions))
        return obs, reward.astype(np.float32), terminated | truncated

    def legal(self, observations: np.ndarray) -> np.ndarray:
        """Every action is legal."""
        return np.ones((len(observations), self.num_actions), dtype=bool)


class SelfPlayEpisodes:
    """``num_envs`` games of ``game`` played by one agent for both sides, on the batched rules."""

    two_player = True

    def __init__(self, game: Game, num_envs: int) -> None:
        self.game, self.num_envs = game, int(num_envs)
        self.boards = game.initial(self.num_envs)

    def reset(self, seeds: list[int]) -> np.ndarray:
        """Empty boards (the seeds are not needed: the games start alike)."""
        self.boards = self.game.initial(self.num_envs)
        return self.boards.copy()

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Play ``actions`` on every board still going (finished boards stay as they are)."""
        actions = np.asarray(actions)
        going = self.game.legal(self.boards).any(axis=1)
        reward = np.zeros(self.num_envs, dtype=np.float32)
        done: np.ndarray = np.logical_not(going)
        if going.any():
            nxt, r, d = self.game.step(self.boards[going], actions[going])
            self.boards[going], reward[going], done[going] = nxt, r, d
        return self.boards.copy(), reward, done

    def legal(self, observations: np.ndarray) -> np.ndarray:
        """The legal moves of the canonical boards ``[N, H, W]``."""
        return self.game.legal(observations)
