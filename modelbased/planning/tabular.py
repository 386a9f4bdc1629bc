"""Tabular planning (Sutton & Barto 2018, ch. 4 and 8).

* :func:`q_learning_updates` — one-step tabular Q-learning applied sequentially to a batch of
  transitions, real or simulated (S&B 8.2, "random-sample one-step tabular Q-planning"). It is
  the only per-sample loop of the Dyna family, so it is compiled with numba.
* :func:`value_iteration`, :func:`policy_evaluation`, :func:`policy_iteration` — dynamic
  programming on explicit arrays ``P[s, a, s']``, ``R[s, a]`` (S&B 4.3-4.4).
* :class:`PriorityQueue` — the max-priority queue of prioritized sweeping (S&B 8.4;
  Moore & Atkeson 1993).
"""

from __future__ import annotations

import heapq
import itertools

import numba
import numpy as np


@numba.njit(cache=True)
def q_learning_updates(
    Q: np.ndarray,
    s: np.ndarray,
    a: np.ndarray,
    r: np.ndarray,
    s2: np.ndarray,
    terminal: np.ndarray,
    alpha: float,
    gamma: float,
) -> float:
    """``Q(s,a) += alpha [r + gamma max_a' Q(s',a') - Q(s,a)]`` for each row in order.

    Shapes: ``Q [S, A]`` float64; ``s, a, s2 [N]`` int64; ``r [N]`` float64; ``terminal [N]``
    bool. Returns the mean absolute TD error (0 for an empty batch).
    """
    total = 0.0
    n_actions = Q.shape[1]
    for k in range(s.shape[0]):
        target = r[k]
        if not terminal[k]:
            best = Q[s2[k], 0]
            for b in range(1, n_actions):
                if Q[s2[k], b] > best:
                    best = Q[s2[k], b]
            target += gamma * best
        td = target - Q[s[k], a[k]]
        Q[s[k], a[k]] += alpha * td
        total += abs(td)
    return total / max(s.shape[0], 1)


@numba.njit(cache=True)
def dyna_q_planning(
    Q: np.ndarray,
    pairs: np.ndarray,
    idx: np.ndarray,
    next_state: np.ndarray,
    reward: np.ndarray,
    terminal: np.ndarray,
    alpha: float,
    gamma: float,
) -> float:
    """Dyna-Q's planning step (f) on a last-seen model, fused into one compiled loop.

    For each ``k``: ``(s, a) = divmod(pairs[idx[k]], A)``, then the Q-learning update on
    ``(s, a, reward[s,a], next_state[s,a], terminal[s,a])``. Same result as sampling the model
    in numpy and calling :func:`q_learning_updates`, without the per-call numpy overhead that
    dominates at small ``n``. Shapes: ``pairs [P]``, ``idx [N]`` int64; model arrays ``[S, A]``.
    """
    total = 0.0
    n_actions = Q.shape[1]
    for k in range(idx.shape[0]):
        p = pairs[idx[k]]
        s, a = p // n_actions, p % n_actions
        target = reward[s, a]
        if not terminal[s, a]:
            s2 = next_state[s, a]
            best = Q[s2, 0]
            for b in range(1, n_actions):
                if Q[s2, b] > best:
                    best = Q[s2, b]
            target += gamma * best
        td = target - Q[s, a]
        Q[s, a] += alpha * td
        total += abs(td)
    return total / max(idx.shape[0], 1)


def continuation(P: np.ndarray, D: np.ndarray | None) -> np.ndarray:
    """``P * (1 - D)``: the kernel of transitions that do not end the episode."""
    return P if D is None else P * (1.0 - D)


def bellman_q(
    P: np.ndarray, R: np.ndarray, V: np.ndarray, gamma: float, D: np.ndarray | None = None
) -> np.ndarray:
    """``Q[s,a] = R[s,a] + gamma * sum_s' P[s,a,s'] (1 - D[s,a,s']) V[s']``."""
    C = continuation(P, D)
    return R + gamma * (C @ V)


def value_iteration(
    P: np.ndarray,
    R: np.ndarray,
    gamma: float,
    D: np.ndarray | None = None,
    theta: float = 1e-10,
    max_iterations: int = 1_000_000,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Synchronous value iteration until the largest change is below ``theta``.

    Returns ``(V [S], Q [S, A], iterations)``. With ``gamma = 1`` it converges on episodic
    tasks whose optimal policy terminates (e.g. FrozenLake).
    """
    C = continuation(P, D)
    V = np.zeros(P.shape[0])
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        V_new = (R + gamma * (C @ V)).max(axis=1)
        delta = np.max(np.abs(V_new - V))
        V = V_new
        if delta < theta:
            break
    return V, R + gamma * (C @ V), iterations


def policy_evaluation(
    P: np.ndarray,
    R: np.ndarray,
    policy: np.ndarray,
    gamma: float,
    D: np.ndarray | None = None,
    theta: float = 1e-10,
    max_iterations: int = 1_000_000,
) -> np.ndarray:
    """``V^pi`` of a deterministic policy ``[S]``: a linear solve for ``gamma < 1``, iterative
    evaluation for ``gamma = 1`` (where improper policies make the system singular)."""
    C = continuation(P, D)
    states = np.arange(P.shape[0])
    C_pi, R_pi = C[states, policy], R[states, policy]
    if gamma < 1.0:
        return np.linalg.solve(np.eye(len(states)) - gamma * C_pi, R_pi)
    V = np.zeros(len(states))
    for _ in range(max_iterations):
        V_new = R_pi + gamma * (C_pi @ V)
        if np.max(np.abs(V_new - V)) < theta:
            return V_new
        V = V_new
    return V


def policy_iteration(
    P: np.ndarray,
    R: np.ndarray,
    gamma: float,
    D: np.ndarray | None = None,
    theta: float = 1e-10,
    max_iterations: int = 10_000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Howard's policy iteration. Returns ``(V, Q, policy, iterations)``.

    The improvement step keeps the current action when it is within ``1e-9`` of the best, so
    the loop cannot cycle between equally good policies.
    """
    policy = np.zeros(P.shape[0], dtype=np.int64)
    states = np.arange(P.shape[0])
    for it in range(1, max_iterations + 1):
        V = policy_evaluation(P, R, policy, gamma, D, theta)
        Q = bellman_q(P, R, V, gamma, D)
        best = Q.argmax(axis=1)
        keep = Q[states, policy] >= Q[states, best] - 1e-9
        new_policy = np.where(keep, policy, best)
        if np.array_equal(new_policy, policy):
            return V, Q, policy, it
        policy = new_policy
    return V, Q, policy, it


class PriorityQueue:
    """Max-priority queue over ``(s, a)`` pairs; re-inserting a pair keeps its higher priority
    (S&B 8.4). Stale heap entries are skipped lazily on pop."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, int]] = []
        self._priority: dict[tuple[int, int], float] = {}
        self._counter = itertools.count()

    def __len__(self) -> int:
        return len(self._priority)

    def push(self, s: int, a: int, priority: float) -> None:
        """Queue ``(s, a)`` with ``priority``, unless it is already queued with a higher one."""
        key = (int(s), int(a))
        if priority <= self._priority.get(key, -np.inf):
            return
        self._priority[key] = priority
        heapq.heappush(self._heap, (-priority, next(self._counter), key[0], key[1]))

    def pop(self) -> tuple[int, int, float]:
        """The highest-priority pair and its priority ``(s, a, priority)``; IndexError if empty."""
        while self._heap:
            neg, _, s, a = heapq.heappop(self._heap)
            if self._priority.get((s, a)) == -neg:
                del self._priority[(s, a)]
                return s, a, -neg
        raise IndexError("pop from an empty priority queue")

    def state(self) -> list[list[float]]:
        """Live entries as ``[priority, order, s, a]`` rows, enough to restore pop order."""
        live = [
            (-neg, order, s, a)
            for neg, order, s, a in self._heap
            if self._priority.get((s, a)) == -neg
        ]
        return [list(map(float, row)) for row in sorted(live, key=lambda row: row[1])]

    def load_state(self, rows: list[list[float]]) -> None:
        """Restore the entries of :meth:`state`, in their pop order."""
        self._heap = [(-p, int(order), int(s), int(a)) for p, order, s, a in rows]
        heapq.heapify(self._heap)
        self._priority = {(int(s), int(a)): p for p, _, s, a in rows}
        start = max((int(order) for _, order, _, _ in rows), default=-1) + 1
        self._counter = itertools.count(start)
