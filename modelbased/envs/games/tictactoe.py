"""Tic-tac-toe on a 3x3 board: actions 0-8 are cells in row-major order."""

from __future__ import annotations

import numpy as np

from modelbased.envs.games.base import Game, cell_lines, stone

_LINES = np.array(
    [[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 3, 6], [1, 4, 7], [2, 5, 8], [0, 4, 8], [2, 4, 6]]
)


def _dihedral(board: np.ndarray) -> list[np.ndarray]:
    """The 8 rotations and reflections of the last two axes."""
    out = []
    for k in range(4):
        rotated = np.rot90(board, k, axes=(-2, -1))
        out += [rotated, np.flip(rotated, axis=-1)]
    return out


class TicTacToe(Game):
    """Tic-tac-toe on 3x3: three in a row wins; actions are the cells 0-8, row by row."""

    name = "tictactoe"
    board_shape = (3, 3)
    num_actions = 9
    lines = _LINES
    columns = 0  # stones drop down columns (see Game.columns)
    cell_lines = cell_lines(_LINES, 9)

    def symmetries(self, boards: np.ndarray, pis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The 8 rotations and reflections: ``[8B, 3, 3]``, ``[8B, 9]``."""
        b = _dihedral(np.asarray(boards))
        p = _dihedral(np.asarray(pis).reshape(-1, 3, 3))
        return np.concatenate(b), np.concatenate(p).reshape(-1, 9)

    def render(self, board: np.ndarray) -> str:
        """The board in absolute colours, free cells numbered 1-9."""
        cells = self.absolute(np.asarray(board)).reshape(9)
        rows = []
        for r in range(3):
            row = [
                stone(v) if v else str(3 * r + c + 1)
                for c, v in enumerate(cells[3 * r : 3 * r + 3])
            ]
            rows.append(" " + " | ".join(row))
        return "\n---+---+---\n".join(rows)

    def action_label(self, action: int) -> str:
        """The cell number 1-9."""
        return str(int(action) + 1)

    def parse_action(self, text: str, board: np.ndarray) -> int:
        """The number 1-9 of an empty cell; ValueError with a hint otherwise."""
        hint = "enter the number (1-9) of an empty cell"
        try:
            action = int(text.strip()) - 1
        except ValueError:
            raise ValueError(f"{text.strip()!r} is not a cell number; {hint}") from None
        if not 0 <= action < 9:
            raise ValueError(f"there is no cell {action + 1}; {hint}")
        if not self.legal(np.asarray(board)[None])[0, action]:
            raise ValueError(f"cell {action + 1} is taken; {hint}")
        return action
