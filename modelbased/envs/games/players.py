"""Reference opponents: uniform random, a perfect memoised minimax for tic-tac-toe, and a
depth-limited alpha-beta search for connect four (compiled with numba).

A player maps a batch of canonical boards ``int8 [B, H, W]`` to actions ``int64 [B]``. Ties
between equally good moves are broken at random, so that games against a deterministic search
still differ from one another.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

from modelbased.core.errors import UnknownNameError
from modelbased.envs.games.base import Game
from modelbased.envs.games.connect_four import COLS, ROWS, ConnectFour
from modelbased.envs.games.tictactoe import TicTacToe


class Player:
    """``player(boards, rng) -> actions``; ``name`` is what tables print."""

    name = "player"

    def __call__(self, boards: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One action per board of ``boards [B, H, W]`` (canonical for the player to move),
        ``[B]``."""
        raise NotImplementedError


def random_legal(legal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniformly random legal action per row of ``legal [B, A]``."""
    return np.argmax(rng.random(legal.shape) * legal, axis=1)


class RandomPlayer(Player):
    """A uniformly random legal move."""

    name = "random"

    def __init__(self, game: Game) -> None:
        self.game = game

    def __call__(self, boards: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One uniformly random legal action per board, ``[B]``."""
        return random_legal(self.game.legal(boards), rng)


# -- tic-tac-toe: exact negamax over all positions ------------------------------------------
@functools.cache
def tictactoe_value(board: bytes) -> int:
    """Exact value (+1 win, 0 draw, -1 loss) for the player to move on a canonical board."""
    game = TicTacToe()
    cells = np.frombuffer(board, dtype=np.int8).reshape(1, 3, 3)
    done, value = game.outcome(cells)
    if done[0]:
        return int(value[0])
    return max(-tictactoe_value(child.tobytes()) for child in _children(game, cells))


def _children(game: Game, boards: np.ndarray) -> list[np.ndarray]:
    legal = np.flatnonzero(game.legal(boards)[0])
    nxt, _, _ = game.step(np.repeat(boards, len(legal), axis=0), legal)
    return list(nxt)


def tictactoe_action_values(board: np.ndarray) -> np.ndarray:
    """Exact value of every action (``-inf`` where illegal) for the player to move, ``[9]``."""
    game = TicTacToe()
    boards = np.asarray(board, dtype=np.int8)[None]
    out = np.full(9, -np.inf)
    legal = np.flatnonzero(game.legal(boards)[0])
    nxt, reward, done = game.step(np.repeat(boards, len(legal), axis=0), legal)
    for a, child, r, d in zip(legal, nxt, reward, done, strict=True):
        out[a] = r if d else -tictactoe_value(child.tobytes())
    return out


class MinimaxPlayer(Player):
    """Perfect tic-tac-toe: a random move among those of the best exact value."""

    name = "minimax"

    def __init__(self, game: Game) -> None:
        if not isinstance(game, TicTacToe):
            raise UnknownNameError("the minimax player solves tic-tac-toe only; try alphabeta:4")

    def __call__(self, boards: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A random move among those of the best exact value, per board, ``[B]``."""
        actions = []
        for board in boards:
            values = tictactoe_action_values(board)
            actions.append(rng.choice(np.flatnonzero(values == values.max())))
        return np.array(actions, dtype=np.int64)


# -- connect four: depth-limited alpha-beta with a window heuristic -------------------------
WIN = 10_000.0
_ORDER = np.array([3, 2, 4, 1, 5, 0, 6], dtype=np.int64)  # centre columns first
_WINDOWS = ConnectFour.lines
_WEIGHTS = np.array([0.0, 1.0, 4.0, 16.0, 0.0])  # a window holding 0..4 stones of one side


@numba.njit(cache=True)
def _heuristic(flat: np.ndarray, windows: np.ndarray, weights: np.ndarray) -> float:
    """Open lines of the player to move (+1) minus the opponent's, plus centre stones."""
    score = 0.0
    for w in range(windows.shape[0]):
        mine, theirs = 0, 0
        for i in range(4):
            v = flat[windows[w, i]]
            if v == 1:
                mine += 1
            elif v == -1:
                theirs += 1
        if theirs == 0:
            score += weights[mine]
        elif mine == 0:
            score -= weights[theirs]
    for r in range(ROWS):
        v = flat[r * COLS + 3]
        score += 0.5 * v
    return score


@numba.njit(cache=True)
def _wins_at(flat: np.ndarray, cell: int, cell_windows: np.ndarray) -> bool:
    for w in range(cell_windows.shape[1]):
        line = cell_windows[cell, w]
        if line[0] == ROWS * COLS:
            return False
        if flat[line[0]] == 1 and flat[line[1]] == 1 and flat[line[2]] == 1 and flat[line[3]] == 1:
            return True
    return False


@numba.njit(cache=True)
def _negamax(flat, heights, depth, alpha, beta, order, windows, cell_windows, weights) -> float:
    """Alpha-beta negamax value for the player to move (+1 stones) of a flat canonical board."""
    if depth == 0:
        return _heuristic(flat, windows, weights)
    best = -np.inf
    moved = False
    for c in order:
        if heights[c] == ROWS:
            continue
        moved = True
        cell = (ROWS - 1 - heights[c]) * COLS + c
        flat[cell] = 1
        if _wins_at(flat, cell, cell_windows):
            value = WIN + depth  # a sooner win is worth more
        else:
            heights[c] += 1
            flat *= -1
            value = -_negamax(
                flat, heights, depth - 1, -beta, -alpha, order, windows, cell_windows, weights
            )
            flat *= -1
            heights[c] -= 1
        flat[cell] = 0
        if value > best:
            best = value
        if best > alpha:
            alpha = best
        if alpha >= beta:
            break
    return best if moved else 0.0  # a full board is a draw


@numba.njit(cache=True)
def connect_four_action_values(flat, depth, order, windows, cell_windows, weights) -> np.ndarray:
    """The depth-limited value of every column (``-inf`` where full), ``[7]``."""
    heights = np.zeros(COLS, dtype=np.int64)
    for c in range(COLS):
        for r in range(ROWS):
            if flat[r * COLS + c] != 0:
                heights[c] += 1
    out = np.full(COLS, -np.inf)
    for c in order:
        if heights[c] == ROWS:
            continue
        cell = (ROWS - 1 - heights[c]) * COLS + c
        flat[cell] = 1
        if _wins_at(flat, cell, cell_windows):
            out[c] = WIN + depth
        else:
            heights[c] += 1
            flat *= -1
            out[c] = -_negamax(
                flat, heights, depth - 1, -np.inf, np.inf, order, windows, cell_windows, weights
            )
            flat *= -1
            heights[c] -= 1
        flat[cell] = 0
    return out


class AlphaBetaPlayer(Player):
    """Connect four by alpha-beta to ``depth`` plies (the move itself counts as one)."""

    def __init__(self, game: Game, depth: int = 4) -> None:
        if not isinstance(game, ConnectFour):
            raise UnknownNameError("the alphabeta player plays connect four only; try minimax")
        if depth < 1:
            raise UnknownNameError(f"alphabeta depth must be >= 1, got {depth}")
        self.depth = depth
        self.name = f"alphabeta:{depth}"

    def action_values(self, board: np.ndarray) -> np.ndarray:
        """The alpha-beta value of every column for the player to move (``-inf`` where illegal),
        ``[7]``."""
        flat = np.asarray(board, dtype=np.int8).reshape(-1).astype(np.int64)
        return connect_four_action_values(
            flat, self.depth, _ORDER, _WINDOWS, ConnectFour.cell_lines, _WEIGHTS
        )

    def __call__(self, boards: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A random move among those of the best alpha-beta value, per board, ``[B]``."""
        actions = []
        for board in boards:
            values = self.action_values(board)
            best = np.flatnonzero(values >= values.max() - 1e-9)
            actions.append(rng.choice(best))
        return np.array(actions, dtype=np.int64)


GAME_PLAYERS = "random, minimax (tic-tac-toe), alphabeta:DEPTH (connect four)"


def make_player(spec: str, game: Game) -> Player:
    """A reference player from its name: ``random``, ``minimax`` or ``alphabeta:DEPTH``."""
    name, _, arg = spec.partition(":")
    if name == "random" and not arg:
        return RandomPlayer(game)
    if name == "minimax" and not arg:
        return MinimaxPlayer(game)
    if name == "alphabeta":
        try:
            depth = int(arg) if arg else 4
        except ValueError:
            raise UnknownNameError(f"bad alphabeta depth {arg!r}: expected alphabeta:4") from None
        return AlphaBetaPlayer(game, depth)
    raise UnknownNameError(f"unknown player {spec!r}; built-in players: {GAME_PLAYERS}")
