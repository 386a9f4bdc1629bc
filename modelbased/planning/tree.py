"""The search tree of batched MCTS, kept in preallocated arrays as in mctx (no node objects).

Shapes: ``B`` trees (one per root), ``N`` node slots per tree, ``A`` actions. Node 0 is the
root of every tree; a node's children always have larger indices than the node itself.
Edge statistics live on the parent (``child_visits``, ``child_q``, ``child_reward``), so
selection reads one ``[B, A]`` row per step. Values are zero-sum where ``two_player``: a
node's value is seen by the player to move there, an edge's Q by the player who chooses it.

:class:`Tree` is a ``NamedTuple`` of arrays, so the compiled kernels (``mcts_kernels``) take it
as one argument and read its fields by name, as mctx's functions take its ``Tree`` dataclass.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

UNEXPANDED = -1


class Tree(NamedTuple):
    """``B`` search trees of ``N`` node slots over ``A`` actions (see the module docstring)."""

    states: np.ndarray  # [B, N, *S] the model state of each node
    legal: np.ndarray  # bool [B, N, A]
    prior: np.ndarray  # float32 [B, N, A] policy prior, zero on illegal actions
    children: np.ndarray  # int32 [B, N, A] child node index or UNEXPANDED
    child_visits: np.ndarray  # int32 [B, N, A]
    child_q: np.ndarray  # float32 [B, N, A] mean return of the edge, chooser's view
    child_reward: np.ndarray  # float32 [B, N, A] reward of the edge to the chooser
    node_visits: np.ndarray  # int32 [B, N] (0: the root is not evaluated yet)
    node_value: np.ndarray  # float32 [B, N] mean value, seen by the player to move
    raw_value: np.ndarray  # float32 [B, N] the model's own value of the node (Gumbel's v_mix)
    terminal: np.ndarray  # bool [B, N]
    parent: np.ndarray  # int32 [B, N]
    num_nodes: np.ndarray  # int32 [B] slots in use
    qmin: np.ndarray  # float32 [B] smallest Q seen in the tree (min-max normalisation)
    qmax: np.ndarray  # float32 [B]

    @property
    def batch_size(self) -> int:
        return self.node_visits.shape[0]

    @property
    def capacity(self) -> int:
        return self.node_visits.shape[1]

    @classmethod
    def empty(cls, states: np.ndarray, num_actions: int, capacity: int) -> Tree:
        """Trees whose roots hold ``states [B, *S]`` and are not evaluated yet."""
        batch = len(states)
        tree = cls(
            states=np.zeros((batch, capacity, *states.shape[1:]), dtype=states.dtype),
            legal=np.zeros((batch, capacity, num_actions), dtype=bool),
            prior=np.zeros((batch, capacity, num_actions), dtype=np.float32),
            children=np.full((batch, capacity, num_actions), UNEXPANDED, dtype=np.int32),
            child_visits=np.zeros((batch, capacity, num_actions), dtype=np.int32),
            child_q=np.zeros((batch, capacity, num_actions), dtype=np.float32),
            child_reward=np.zeros((batch, capacity, num_actions), dtype=np.float32),
            node_visits=np.zeros((batch, capacity), dtype=np.int32),
            node_value=np.zeros((batch, capacity), dtype=np.float32),
            raw_value=np.zeros((batch, capacity), dtype=np.float32),
            terminal=np.zeros((batch, capacity), dtype=bool),
            parent=np.full((batch, capacity), -1, dtype=np.int32),
            num_nodes=np.ones(batch, dtype=np.int32),
            qmin=np.full(batch, np.inf, dtype=np.float32),
            qmax=np.full(batch, -np.inf, dtype=np.float32),
        )
        tree.states[:, 0] = states
        return tree

    def grow(self, capacity: int) -> Tree:
        """The same trees with at least ``capacity`` node slots."""
        extra = capacity - self.capacity
        if extra <= 0:
            return self
        fill = {"children": UNEXPANDED, "parent": -1}
        out = {}
        for name, arr in self._asdict().items():
            if arr.ndim < 2 or name == "num_nodes":
                out[name] = arr
                continue
            pad = np.full((arr.shape[0], extra, *arr.shape[2:]), fill.get(name, 0), arr.dtype)
            out[name] = np.concatenate([arr, pad], axis=1)
        return Tree(**out)

    def take(self, rows: np.ndarray) -> Tree:
        """The trees at ``rows`` (e.g. the games still being played)."""
        return Tree(**{name: arr[rows] for name, arr in self._asdict().items()})

    def root_visits(self) -> np.ndarray:
        """Visit counts of the root's actions, ``int32 [B, A]``."""
        return self.child_visits[:, 0]

    def root_value(self) -> np.ndarray:
        """The search's value of each root for the player to move, ``float32 [B]``."""
        return self.node_value[:, 0]

    def subtrees(self, actions: np.ndarray) -> tuple[Tree, np.ndarray]:
        """Re-root every tree at the child reached by ``actions [B]``, keeping its subtree
        (AlphaZero's tree reuse between moves). Returns the new trees and a mask ``[B]`` of
        rows whose child was never expanded; those rows hold a bare unevaluated root with no
        state, which the caller fills in."""
        batch = self.batch_size
        rows = np.arange(batch)
        new_root = self.children[rows, 0, actions]
        missing = new_root == UNEXPANDED
        keep = np.zeros((batch, self.capacity), dtype=bool)
        keep[rows[~missing], new_root[~missing]] = True
        frontier = keep.copy()
        while frontier.any():  # one vectorised step per level of the kept subtree
            b, n = np.nonzero(frontier)
            kids = self.children[b, n]  # [k, A]
            has = kids >= 0
            frontier = np.zeros_like(keep)
            frontier[np.repeat(b, has.sum(1)), kids[has]] = True
            keep |= frontier
        order = np.argsort(~keep, axis=1, kind="stable")  # kept nodes first, in index order
        new_index = np.cumsum(keep, axis=1, dtype=np.int32) - 1
        out = {}
        for name, arr in self._asdict().items():
            if arr.ndim < 2 or name == "num_nodes":
                continue
            idx = order.reshape(batch, -1, *([1] * (arr.ndim - 2)))
            out[name] = np.take_along_axis(arr, idx, axis=1)
        kids = out["children"]
        remapped = np.take_along_axis(new_index, np.maximum(kids, 0).reshape(batch, -1), 1)
        out["children"] = np.where(kids >= 0, remapped.reshape(kids.shape), UNEXPANDED)
        par = out["parent"]
        out["parent"] = np.where(par >= 0, np.take_along_axis(new_index, np.maximum(par, 0), 1), -1)
        out["parent"][:, 0] = -1
        out["num_nodes"] = keep.sum(axis=1).astype(np.int32)
        out["qmin"], out["qmax"] = self.qmin.copy(), self.qmax.copy()
        tree = Tree(**out)
        tree.num_nodes[missing] = 1
        tree.node_visits[missing, 0] = 0
        tree.node_value[missing, 0] = 0.0
        tree.raw_value[missing, 0] = 0.0
        tree.terminal[missing, 0] = False
        tree.children[missing, 0] = UNEXPANDED
        tree.child_visits[missing, 0] = 0
        tree.child_q[missing, 0] = 0.0
        tree.qmin[missing], tree.qmax[missing] = np.inf, -np.inf
        return tree, missing
