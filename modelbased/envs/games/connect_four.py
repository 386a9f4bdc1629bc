"""Connect four on the standard 6x7 board: action c drops a stone into column c (0-6).

Row 0 is the top row; a stone falls to the lowest empty row of its column.
"""

from __future__ import annotations

import numpy as np

from modelbased.envs.games.base import Game, cell_lines, stone

ROWS, COLS = 6, 7


def _windows() -> np.ndarray:
    """All 69 lines of four cells (flat indices): horizontal, vertical and both diagonals."""
    out = []
    for r in range(ROWS):
        for c in range(COLS):
            for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
                cells = [(r + i * dr, c + i * dc) for i in range(4)]
                if all(0 <= rr < ROWS and 0 <= cc < COLS for rr, cc in cells):
                    out.append([rr * COLS + cc for rr, cc in cells])
    return np.array(out, dtype=np.int64)


_LINES = _windows()


class ConnectFour(Game):
    """Connect four on 6x7: four in a row wins, stones drop down the 7 columns."""

    name = "connect-four"
    board_shape = (ROWS, COLS)
    num_actions = COLS
    lines = _LINES
    columns = COLS  # stones drop down columns (see Game.columns)
    cell_lines = cell_lines(_LINES, ROWS * COLS)

    def symmetries(self, boards: np.ndarray, pis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The board and its mirror image: ``[2B, 6, 7]``, ``[2B, 7]``."""
        boards, pis = np.asarray(boards), np.asarray(pis)
        return (
            np.concatenate([boards, boards[:, :, ::-1]]),
            np.concatenate([pis, pis[:, ::-1]]),
        )

    def render(self, board: np.ndarray) -> str:
        """The board in absolute colours with the column numbers below."""
        cells = self.absolute(np.asarray(board))
        rows = [" ".join(stone(v) for v in row) for row in cells]
        return "\n".join([*rows, " ".join(str(c + 1) for c in range(COLS))])

    def action_label(self, action: int) -> str:
        """The column number 1-7."""
        return str(int(action) + 1)

    def parse_action(self, text: str, board: np.ndarray) -> int:
        """A column number 1-7 that is not full; ValueError with a hint otherwise."""
        hint = f"enter a column number 1-{COLS} that is not full"
        try:
            action = int(text.strip()) - 1
        except ValueError:
            raise ValueError(f"{text.strip()!r} is not a column number; {hint}") from None
        if not 0 <= action < COLS:
            raise ValueError(f"there is no column {action + 1}; {hint}")
        if not self.legal(np.asarray(board)[None])[0, action]:
            raise ValueError(f"column {action + 1} is full; {hint}")
        return action
