"""Environments registered under the ``modelbased/`` namespace on import, and the known
reward and termination functions of standard tasks (batched torch, PETS-style).

Mazes of Sutton & Barto chapter 8 (``DynaMaze-v0``, ``BlockingMaze-v0``, ``ShortcutMaze-v0``)
a continuous cart-pole swing-up (``CartPoleSwingUp-v0``) and two-player games played against a
chosen opponent (``TicTacToe-v0``, ``ConnectFour-v0``; rules in ``envs.games``), and pixel
versions of Pendulum and the swing-up (``PixelPendulum-v0``, ``PixelCartPoleSwingUp-v0``: 64x64
RGB, ``envs.pixels``).
"""

from __future__ import annotations

import gymnasium as gym

from modelbased.envs.cartpole_swingup import CartPoleSwingUp
from modelbased.envs.mazes import BlockingMaze, DynaMaze, Maze, ShortcutMaze
from modelbased.envs.reward_fns import (
    KNOWN_FUNCTIONS,
    PLANNING_REWARDS,
    known_functions,
    planning_reward,
)

# The mazes have no natural time limit; 10k steps only stops a greedy policy that loops forever.
MAZE_LIMIT = 10_000

ENVIRONMENTS = {
    "modelbased/DynaMaze-v0": ("modelbased.envs.mazes:DynaMaze", MAZE_LIMIT),
    "modelbased/BlockingMaze-v0": ("modelbased.envs.mazes:BlockingMaze", MAZE_LIMIT),
    "modelbased/ShortcutMaze-v0": ("modelbased.envs.mazes:ShortcutMaze", MAZE_LIMIT),
    "modelbased/CartPoleSwingUp-v0": ("modelbased.envs.cartpole_swingup:CartPoleSwingUp", 200),
    "modelbased/PixelPendulum-v0": ("modelbased.envs.pixels:make_pixel_pendulum", None),
    "modelbased/PixelCartPoleSwingUp-v0": ("modelbased.envs.pixels:make_pixel_swingup", None),
    "modelbased/TicTacToe-v0": ("modelbased.envs.games.env:TicTacToeEnv", None),
    "modelbased/ConnectFour-v0": ("modelbased.envs.games.env:ConnectFourEnv", None),
}


def register_envs() -> None:
    """Register the package's environments with Gymnasium (idempotent; done on import)."""
    for env_id, (entry_point, limit) in ENVIRONMENTS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, max_episode_steps=limit)


register_envs()

__all__ = [
    "ENVIRONMENTS",
    "KNOWN_FUNCTIONS",
    "PLANNING_REWARDS",
    "BlockingMaze",
    "CartPoleSwingUp",
    "DynaMaze",
    "Maze",
    "ShortcutMaze",
    "known_functions",
    "planning_reward",
    "register_envs",
]
