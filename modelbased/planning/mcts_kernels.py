"""Compiled (numba) inner loops of the batched search: descending every tree to a leaf and
backing the leaf values up. They loop over the ``B`` trees and down each path in machine code,
so a simulation costs two kernel calls plus one batched ``model.step`` and ``model.evaluate``,
whatever the batch size. Array shapes are those of :class:`~modelbased.planning.tree.Tree`;
``paths``/``path_actions`` are ``[B, D]`` scratch arrays, ``depth`` is ``[B]``.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def seed_kernels(seed: int) -> None:
    """Seed numba's generator (used for tie-breaks) from the caller's ``numpy`` generator."""
    np.random.seed(seed)


@numba.njit(cache=True, inline="always")
def _normalise(q, b, qmin, qmax, low, high, bounded):
    if bounded:
        return (q - low) / (high - low)
    if qmax[b] > qmin[b]:
        return (q - qmin[b]) / (qmax[b] - qmin[b])
    return q


@numba.njit(cache=True)
def select_leaves(children, child_visits, child_q, prior, legal, node_visits, node_value, terminal,
                  root_prior, qmin, qmax, low, high, bounded, puct, c_puct, c_base, c_uct,
                  paths, path_actions, depth, expand):  # fmt: skip
    """For each tree, descend from the root by PUCT (or UCT) over legal actions until an
    unexpanded edge (``expand[b]``) or a terminal child; fill ``paths``, ``path_actions``,
    ``depth`` (the number of edges taken)."""
    batch, _, actions = children.shape
    for b in range(batch):
        node, d = 0, 0
        while True:
            n_parent = float(node_visits[b, node])
            best, best_score = -1, -np.inf
            c = c_puct + np.log((n_parent + c_base + 1.0) / c_base)
            first_play = _normalise(node_value[b, node], b, qmin, qmax, low, high, bounded)
            for a in range(actions):
                if not legal[b, node, a]:
                    continue
                n = child_visits[b, node, a]
                q = _normalise(child_q[b, node, a], b, qmin, qmax, low, high, bounded)
                if puct:
                    p = root_prior[b, a] if d == 0 else prior[b, node, a]
                    score = (q if n > 0 else first_play) + c * p * np.sqrt(n_parent) / (1.0 + n)
                elif n > 0:
                    score = q + c_uct * np.sqrt(np.log(max(n_parent, 1.0)) / n)
                else:
                    score = 1e6  # untried moves first
                score += 1e-7 * np.random.random()  # random tie-break
                if score > best_score:
                    best, best_score = a, score
            paths[b, d] = node
            path_actions[b, d] = best
            d += 1
            child = children[b, node, best]
            if child < 0:
                expand[b] = True
                break
            if terminal[b, child]:
                expand[b] = False
                break
            node = child
        depth[b] = d


@numba.njit(cache=True)
def backup(child_visits, child_q, child_reward, node_visits, node_value, qmin, qmax, paths,
           path_actions, depth, value, discount, sign):  # fmt: skip
    """From each leaf up: an edge's return is its reward plus the discounted (in two-player
    games negated, ``sign = -1``) return below it; running means on edges and nodes."""
    for b in range(paths.shape[0]):
        g = value[b]
        for d in range(depth[b] - 1, -1, -1):
            node, a = paths[b, d], path_actions[b, d]
            g = child_reward[b, node, a] + discount * sign * g
            n = child_visits[b, node, a] + 1
            child_visits[b, node, a] = n
            q = child_q[b, node, a] + (g - child_q[b, node, a]) / n
            child_q[b, node, a] = q
            m = node_visits[b, node] + 1
            node_visits[b, node] = m
            node_value[b, node] += (g - node_value[b, node]) / m
            qmin[b] = min(qmin[b], q)
            qmax[b] = max(qmax[b], q)


@numba.njit(cache=True)
def playouts(flat, lines, cell_lines, columns, seed):
    """One uniformly random playout from each canonical board ``flat [B, cells]`` (``int8``):
    the result for the player to move. ``columns > 0``: stones drop to the lowest empty row of
    that many columns (connect four); 0: any empty cell (tic-tac-toe)."""
    np.random.seed(seed)
    batch, cells = flat.shape
    out = np.zeros(batch, dtype=np.float32)
    moves = np.empty(cells, dtype=np.int64)
    board = np.empty(cells + 1, dtype=np.int8)  # one extra, always empty, pads cell_lines
    for b in range(batch):
        board[:cells] = flat[b]
        board[cells] = 0
        lost = False
        for line in range(lines.shape[0]):
            if all_equal(board, lines[line], -1):
                lost = True
        if lost:
            out[b] = -1.0
            continue
        player, result = 1, 0.0
        while True:
            count = 0
            if columns > 0:
                for c in range(columns):
                    if board[c] == 0:
                        moves[count] = c
                        count += 1
            else:
                for c in range(cells):
                    if board[c] == 0:
                        moves[count] = c
                        count += 1
            if count == 0:
                break  # a draw
            cell = moves[np.random.randint(count)]
            if columns > 0:
                while cell + columns < cells and board[cell + columns] == 0:
                    cell += columns
            board[cell] = player
            won = False
            for k in range(cell_lines.shape[1]):
                if all_equal(board, cell_lines[cell, k], player):
                    won = True
                    break
            if won:
                result = float(player)  # +1 if the leaf's player made the winning move
                break
            player = -player
        out[b] = result
    return out


@numba.njit(cache=True, inline="always")
def all_equal(board, line, value):
    for i in range(line.shape[0]):  # noqa: SIM110 (a plain loop for numba)
        if board[line[i]] != value:
            return False
    return True
