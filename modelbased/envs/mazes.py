"""Gridworld mazes of Sutton & Barto (2018), chapter 8.

* ``DynaMaze`` — the 6x9 maze of figure 8.2 (section 8.2): start S, goal G, reward +1 on
  reaching G and 0 elsewhere; the shortest path takes 14 steps.
* ``BlockingMaze`` — figure 8.4 (section 8.3): after 1000 steps the short way round is blocked
  and a longer one opens.
* ``ShortcutMaze`` — figure 8.5 (section 8.3): after 3000 steps a shortcut opens on the right.

The changing mazes count steps across episodes (the book's time axis), so that count is env
state: ``state_dict``/``load_state_dict`` carry it through checkpoints. The current transition
table is exposed as ``P`` in the toy-text format ``P[s][a] = [(prob, s', r, terminated)]`` so
that planners can use the maze as a known model.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

Cell = tuple[int, int]
MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))  # up, down, left, right
ROWS, COLS = 6, 9


class Maze(gym.Env):
    """A deterministic gridworld whose walls may change after ``change_at`` total steps."""

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 8}

    def __init__(
        self,
        start: Cell,
        goal: Cell,
        walls: frozenset[Cell],
        new_walls: frozenset[Cell] | None = None,
        change_at: int | None = None,
        rows: int = ROWS,
        cols: int = COLS,
        render_mode: str | None = None,
    ) -> None:
        self.rows, self.cols = rows, cols
        self.start, self.goal = start, goal
        self.initial_walls, self.new_walls, self.change_at = walls, new_walls, change_at
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Discrete(rows * cols)
        self.action_space = gym.spaces.Discrete(len(MOVES))
        self.total_steps = 0
        self.pos = start

    @property
    def walls(self) -> frozenset[Cell]:
        """The walls now: the new ones once ``total_steps`` reaches ``change_at``."""
        changed = self.change_at is not None and self.total_steps >= self.change_at
        return self.new_walls if changed and self.new_walls is not None else self.initial_walls

    def index(self, cell: Cell) -> int:
        """The observation (flat index, row-major) of a cell."""
        return cell[0] * self.cols + cell[1]

    def move(self, cell: Cell, action: int) -> Cell:
        """The cell after a move; walls and the border leave it in place."""
        dr, dc = MOVES[action]
        nxt = (min(max(cell[0] + dr, 0), self.rows - 1), min(max(cell[1] + dc, 0), self.cols - 1))
        return cell if nxt in self.walls else nxt

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Back to the start cell (the total step count, and so the walls, are kept)."""
        super().reset(seed=seed)
        self.pos = self.start
        return self.index(self.pos), {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        """One move; reward 1 and termination on reaching the goal, else 0."""
        if not self.action_space.contains(action):
            raise ValueError(
                f"invalid action {action!r}; the maze takes 0-3 (up, down, left, right)"
            )
        self.pos = self.move(self.pos, int(action))
        self.total_steps += 1
        at_goal = self.pos == self.goal
        return self.index(self.pos), float(at_goal), at_goal, False, {}

    @property
    def P(self) -> dict[int, dict[int, list[tuple[float, int, float, bool]]]]:  # noqa: N802
        """The current dynamics in Gymnasium's toy-text format (the goal is absorbing)."""
        table: dict[int, dict[int, list[tuple[float, int, float, bool]]]] = {}
        for r in range(self.rows):
            for c in range(self.cols):
                s = self.index((r, c))
                table[s] = {}
                for a in range(len(MOVES)):
                    if (r, c) == self.goal:
                        table[s][a] = [(1.0, s, 0.0, True)]
                        continue
                    nxt = self.move((r, c), a)
                    table[s][a] = [
                        (1.0, self.index(nxt), float(nxt == self.goal), nxt == self.goal)
                    ]
        return table

    def state_dict(self) -> dict[str, Any]:
        """The total step count across episodes (what decides the walls)."""
        return {"total_steps": self.total_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` wrote."""
        self.total_steps = int(state["total_steps"])

    def render(self) -> str | np.ndarray | None:
        """Text (``ansi``) or an RGB image (``rgb_array``) of the maze, else ``None``."""
        if self.render_mode == "ansi":
            return self._text()
        if self.render_mode == "rgb_array":
            return self._image()
        return None

    def _text(self) -> str:
        lines = []
        for r in range(self.rows):
            row = ""
            for c in range(self.cols):
                cell = (r, c)
                row += (
                    "A"
                    if cell == self.pos
                    else "G"
                    if cell == self.goal
                    else "S"
                    if cell == self.start
                    else "#"
                    if cell in self.walls
                    else "."
                )
            lines.append(row)
        return "\n".join(lines) + "\n"

    def _image(self, scale: int = 32) -> np.ndarray:
        colors = {
            "#": (60, 60, 60),
            ".": (235, 235, 235),
            "S": (150, 200, 255),
            "G": (120, 220, 120),
            "A": (230, 80, 60),
        }
        grid = self._text().split()
        img = np.array([[colors[ch] for ch in row] for row in grid], dtype=np.uint8)
        return np.kron(img, np.ones((scale, scale, 1), dtype=np.uint8))


def _row(r: int, cols: range) -> frozenset[Cell]:
    return frozenset((r, c) for c in cols)


class DynaMaze(Maze):
    """S&B figure 8.2: the 6x9 maze, start (2, 0), goal (0, 8)."""

    def __init__(self, render_mode: str | None = None) -> None:
        walls = frozenset({(1, 2), (2, 2), (3, 2), (4, 5), (0, 7), (1, 7), (2, 7)})
        super().__init__((2, 0), (0, 8), walls, render_mode=render_mode)


class BlockingMaze(Maze):
    """S&B figure 8.4: the gap in row 3 moves from the right end to the left after 1000 steps."""

    def __init__(self, change_at: int = 1000, render_mode: str | None = None) -> None:
        super().__init__(
            (5, 3),
            (0, 8),
            _row(3, range(0, 8)),
            _row(3, range(1, 9)),
            change_at,
            render_mode=render_mode,
        )


class ShortcutMaze(Maze):
    """S&B figure 8.5: a shortcut opens at the right end of row 3 after 3000 steps."""

    def __init__(self, change_at: int = 3000, render_mode: str | None = None) -> None:
        super().__init__(
            (5, 3),
            (0, 8),
            _row(3, range(1, 9)),
            _row(3, range(1, 8)),
            change_at,
            render_mode=render_mode,
        )
