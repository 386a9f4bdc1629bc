"""The two-player game interface shared by tic-tac-toe and connect four, batched over games.

A state is the *canonical* board of the player to move: an ``int8`` array ``[H, W]`` with +1 for
that player's stones, -1 for the opponent's and 0 for empty cells (the layout of
alpha-zero-general). A batch of states is ``[B, H, W]``; copying a state is copying the array.
Stepping places a +1 stone for the mover and negates the board, so the result is canonical for
the next player. Who is who in absolute terms (first player "X", second "O") follows from the
number of stones on the board.

Rewards and values are zero-sum and seen from one side: :meth:`Game.step` returns the reward of
the player who moved (+1 for a winning move, 0 otherwise) and :meth:`Game.outcome` the value of a
finished board for the player to move (-1: the opponent has just won, 0: a draw). This is the
"game rules as a known model" face MCTS plans with (Silver et al. 2017, 2018).
"""

from __future__ import annotations

import numpy as np

from modelbased.envs.games.kernels import step_boards


class Game:
    """Batched rules of a two-player, zero-sum, perfect-information board game."""

    name: str = "game"
    board_shape: tuple[int, int] = (0, 0)
    num_actions: int = 0
    lines: np.ndarray  # [L, k] flat indices of the cells of every winning line
    cell_lines: np.ndarray  # [cells, K, k] the lines through each cell (see cell_lines())
    columns: int = 0  # > 0: a move drops a stone down one of this many columns (connect four);
    # 0: action a places a stone on cell a (row-major)

    @property
    def cells(self) -> int:
        """Cells on the board, ``H * W``."""
        return self.board_shape[0] * self.board_shape[1]

    def initial(self, batch: int = 1) -> np.ndarray:
        """Empty boards, ``int8 [batch, H, W]``."""
        return np.zeros((batch, *self.board_shape), dtype=np.int8)

    def moves(self, boards: np.ndarray) -> np.ndarray:
        """Moves the board has room for, ``bool [B, A]``, without checking for a finished game:
        an empty cell (``columns == 0``: action ``a`` fills cell ``a``) or a column whose top
        cell is empty (``columns > 0``: the top row holds the first ``columns`` cells)."""
        flat = np.asarray(boards).reshape(len(boards), self.cells)
        return flat[:, : self.num_actions] == 0

    def legal(self, boards: np.ndarray) -> np.ndarray:
        """Legal-action mask ``bool [B, A]`` (all False on finished boards)."""
        done, _ = self.outcome(boards)
        return self.moves(boards) & ~done[:, None]

    def step(
        self, boards: np.ndarray, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Play ``actions [B]`` (assumed legal) for the player to move.

        Returns ``(next_boards int8 [B, H, W], reward float32 [B], done bool [B])``: the next
        boards are canonical for the next player, ``reward`` is the mover's (+1 win, 0 else).
        """
        nxt, reward, done, _ = self.step_legal(boards, actions)
        return nxt, reward, done

    def step_legal(
        self, boards: np.ndarray, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`step` and the next player's legal moves ``bool [B, A]`` in one compiled pass
        (``kernels.step_boards``; none on finished boards)."""
        boards = np.asarray(boards, dtype=np.int8)
        flat = np.ascontiguousarray(boards.reshape(len(boards), self.cells))
        actions = np.asarray(actions, dtype=np.int64)
        nxt, reward, done, legal = step_boards(flat, actions, self.cell_lines, self.columns)
        return nxt.reshape(boards.shape), reward, done, legal

    def outcome(self, boards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(done bool [B], value float32 [B])`` for the player to move on each board."""
        flat = np.asarray(boards, dtype=np.int8).reshape(len(boards), self.cells)
        lost = (flat[:, self.lines] == -1).all(axis=2).any(axis=1)
        full = ~(flat == 0).any(axis=1)
        return lost | full, np.where(lost, -1.0, 0.0).astype(np.float32)

    def to_move(self, boards: np.ndarray) -> np.ndarray:
        """+1 where the first player is to move, -1 where the second is, ``int8 [B]``."""
        stones = (np.asarray(boards).reshape(len(boards), self.cells) != 0).sum(axis=1)
        return np.where(stones % 2 == 0, 1, -1).astype(np.int8)

    def encode(self, boards: np.ndarray) -> np.ndarray:
        """Network input ``float32 [B, 2, H, W]``: the mover's stones, the opponent's."""
        boards = np.asarray(boards)
        sides = np.array([1, -1], boards.dtype).reshape(2, *([1] * (boards.ndim - 1)))
        return (boards[:, None] == sides).astype(np.float32)  # one comparison: [B, 2, H, W]

    def symmetries(self, boards: np.ndarray, pis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every symmetric copy of ``(boards [B, H, W], pis [B, A])``: ``[K*B, ...]``."""
        raise NotImplementedError

    # -- for people -----------------------------------------------------------------------
    def render(self, board: np.ndarray) -> str:
        """The board in absolute colours (X moves first), with action labels."""
        raise NotImplementedError

    def parse_action(self, text: str, board: np.ndarray) -> int:
        """A person's move; raises ``ValueError`` with a hint if it is malformed or illegal."""
        raise NotImplementedError

    def action_label(self, action: int) -> str:
        """The label a person types for ``action`` (``parse_action``'s inverse)."""
        raise NotImplementedError

    def absolute(self, board: np.ndarray) -> np.ndarray:
        """The canonical board in absolute colours: +1 first player (X), -1 second (O)."""
        return board * self.to_move(board[None])[0]


def cell_lines(lines: np.ndarray, cells: int) -> np.ndarray:
    """For each cell, the winning lines through it, ``[cells, K, k]``, padded with index
    ``cells`` (a cell that is always empty, so a padded line never wins)."""
    through = [[line for line in lines if c in line] for c in range(cells)]
    most = max(len(t) for t in through)
    out = np.full((cells, most, lines.shape[1]), cells, dtype=np.int64)
    for c, ls in enumerate(through):
        out[c, : len(ls)] = ls
    return out


def stone(value: int) -> str:
    """The character of a cell in absolute colours: ``X``, ``O`` or ``.``."""
    return {1: "X", -1: "O"}.get(int(value), ".")
