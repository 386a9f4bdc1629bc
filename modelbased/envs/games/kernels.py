"""The rules' inner loop compiled (numba): one move on each of ``B`` boards, as
:meth:`Game.step <modelbased.envs.games.base.Game.step>` and the search's model call it at every
simulation, where numpy's per-call cost on a handful of small arrays outweighs the work."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def step_boards(flat, actions, cell_lines, columns):
    """Play ``actions [B]`` on canonical boards ``flat int8 [B, cells]``.

    ``columns > 0``: an action is a column and the stone drops to its lowest empty cell (connect
    four, ``columns`` wide); 0: an action is a cell (tic-tac-toe). ``cell_lines [cells, K, k]``
    are the winning lines through each cell, padded with the index ``cells``.

    Returns ``(next int8 [B, cells]`` canonical for the next player, ``reward float32 [B]`` the
    mover's (+1 a win), ``done bool [B]``, ``moves bool [B, A]`` the next player's moves on
    unfinished boards).
    """
    batch, cells = flat.shape
    num_actions = columns if columns > 0 else cells
    out = np.empty_like(flat)
    reward = np.zeros(batch, np.float32)
    done = np.zeros(batch, np.bool_)
    moves = np.zeros((batch, num_actions), np.bool_)
    board = np.empty(cells + 1, np.int8)  # one extra, always empty, pads cell_lines
    for b in range(batch):
        board[:cells] = flat[b]
        board[cells] = 0
        cell = actions[b]
        if columns > 0:
            while cell + columns < cells and board[cell + columns] == 0:
                cell += columns
        board[cell] = 1
        won = False
        for k in range(cell_lines.shape[1]):
            line_won = True
            for i in range(cell_lines.shape[2]):
                if board[cell_lines[cell, k, i]] != 1:
                    line_won = False
                    break
            if line_won:
                won = True
                break
        full = True
        for c in range(cells):
            out[b, c] = -board[c]
            if board[c] == 0:
                full = False
        reward[b] = 1.0 if won else 0.0
        done[b] = won or full
        if not done[b]:
            for a in range(num_actions):
                moves[b, a] = board[a] == 0  # the top cell of a column, or the cell itself
    return out, reward, done, moves
