"""Batched Monte Carlo tree search: UCT with rollouts and PUCT with a policy-value model.

UCT (Kocsis & Szepesvari 2006, "Bandit based Monte-Carlo Planning") selects
``Q + c_uct * sqrt(ln N / n)`` and evaluates a new leaf by a random playout (pure MCTS, when the
model's ``evaluate`` is a rollout). PUCT (Silver et al. 2017, "Mastering the game of Go without
human knowledge"; 2018, "A general reinforcement learning algorithm that masters chess, shogi
and Go through self-play"; the ``c(N)`` schedule of MuZero, Schrittwieser et al. 2020) selects
``Q + c(N) * P * sqrt(N) / (1 + n)`` with the model's prior ``P``, Dirichlet noise at the root
and values normalised to [0, 1] (by known bounds or, as MuZero, the min and max in the tree).

The search runs ``B`` trees at once (a :class:`~modelbased.planning.tree.Tree` of arrays): each
simulation descends all trees in one compiled kernel (``mcts_kernels``), expands one leaf per
tree with a single batched ``model.step`` and a single batched ``model.evaluate`` (one network
call for the whole batch), and backs the values up in a second kernel. The model is anything with

    step(states [k, *S], actions [k]) -> (next_states [k, *S], reward [k], terminal [k])
    evaluate(states [k, *S]) -> (prior [k, A], value [k])   # value for the player to move
    legal(states [k, *S]) -> bool [k, A]
    num_actions: int

so game rules (AlphaZero) and a learned latent model (MuZero) plug in alike.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Protocol

import numpy as np

from modelbased.core.config import Config
from modelbased.planning.mcts_kernels import backup, seed_kernels, select_leaves
from modelbased.planning.tree import UNEXPANDED, Tree


class Model(Protocol):
    num_actions: int

    def step(
        self, states: np.ndarray, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...

    def evaluate(self, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def legal(self, states: np.ndarray) -> np.ndarray: ...


@dataclasses.dataclass(frozen=True)
class MCTSConfig(Config):
    """Search settings (defaults: AlphaZero's PUCT with MuZero's ``c(N)``)."""

    num_simulations: int = 100  # simulations per search
    rule: Literal["puct", "uct"] = "puct"  # the selection rule
    c_puct: float = 1.25  # c(N) = c_puct + log((N + c_base + 1) / c_base)
    c_base: float = 19652.0  # visit scale of c(N)
    c_uct: float = 1.41  # UCT exploration constant, on Q normalised to [0, 1]
    dirichlet_alpha: float = 0.3  # concentration of the root noise
    dirichlet_fraction: float = 0.0  # share of root noise in the prior (AlphaZero self-play 0.25)
    gamma: float = 1.0  # discount of rewards along a path
    two_player: bool = True  # a child's value is the opponent's: negate it on the way up
    value_bounds: tuple[float, float] | None = (-1.0, 1.0)  # None: min-max over the tree

    def validate(self) -> None:
        self.require(self.num_simulations >= 1, "num_simulations", "must be >= 1")
        self.require(self.c_puct >= 0, "c_puct", "must be >= 0")
        self.require(self.c_uct >= 0, "c_uct", "must be >= 0")
        self.require(self.c_base > 0, "c_base", "must be > 0")
        self.require(self.dirichlet_alpha > 0, "dirichlet_alpha", "must be > 0")
        self.require(0 <= self.dirichlet_fraction <= 1, "dirichlet_fraction", "must be in [0, 1]")
        self.require(0 < self.gamma <= 1, "gamma", "must be in (0, 1]")
        bounds = self.value_bounds
        self.require(
            bounds is None or bounds[0] < bounds[1],
            "value_bounds",
            "must be (low, high) with low < high, or None",
        )


class MCTS:
    """``search(states or trees, rng) -> trees``; read the result with :meth:`policy`."""

    def __init__(self, model: Model, config: MCTSConfig | None = None) -> None:
        self.model = model
        self.config = config or MCTSConfig()
        self.num_actions = int(model.num_actions)

    # -- the search ---------------------------------------------------------------------------
    def search(self, roots: np.ndarray | Tree, rng: np.random.Generator) -> Tree:
        """Run ``num_simulations`` simulations on every tree; ``roots`` is a batch of states
        ``[B, *S]`` (fresh trees) or trees from :meth:`advance` (reused subtrees)."""
        cfg = self.config
        tree = roots if isinstance(roots, Tree) else Tree.empty(
            np.asarray(roots), self.num_actions, cfg.num_simulations + 1
        )  # fmt: skip
        tree = tree.grow(int(tree.num_nodes.max()) + cfg.num_simulations)
        self._evaluate_roots(tree)
        root_prior = self._root_prior(tree, rng)
        seed_kernels(int(rng.integers(2**31)))
        batch, depth = tree.batch_size, tree.capacity
        paths = np.zeros((2, batch, depth), np.int64)  # node and action along each path
        scratch = (paths[0], paths[1], np.zeros(batch, np.int64), np.zeros(batch, bool),
                   np.zeros(batch, np.float64))  # fmt: skip
        for _ in range(cfg.num_simulations):
            self._simulate(tree, root_prior, scratch)
        return tree

    def _evaluate_roots(self, tree: Tree) -> None:
        rows = np.flatnonzero(tree.node_visits[:, 0] == 0)
        if len(rows) == 0:
            return
        states = tree.states[rows, 0]
        legal = np.asarray(self.model.legal(states), dtype=bool)
        finished = np.flatnonzero(~legal.any(axis=1))
        if len(finished):
            raise ValueError(f"root {rows[finished[0]]} has no legal action (a finished game)")
        prior, value = self.model.evaluate(states)
        tree.legal[rows, 0] = legal
        tree.prior[rows, 0] = _masked_distribution(prior, legal)
        tree.node_visits[rows, 0] = 1
        tree.node_value[rows, 0] = value

    def _root_prior(self, tree: Tree, rng: np.random.Generator) -> np.ndarray:
        cfg = self.config
        prior, legal = tree.prior[:, 0], tree.legal[:, 0]
        if cfg.dirichlet_fraction == 0:
            return prior
        noise = rng.gamma(cfg.dirichlet_alpha, size=prior.shape) * legal
        noise /= np.maximum(noise.sum(axis=1, keepdims=True), 1e-12)
        return ((1 - cfg.dirichlet_fraction) * prior + cfg.dirichlet_fraction * noise).astype(
            np.float32
        )

    def _simulate(self, tree: Tree, root_prior: np.ndarray, scratch: tuple) -> None:
        """Select a leaf in every tree, expand and evaluate them in one batch, back up."""
        cfg = self.config
        paths, path_actions, depth, expand, value = scratch
        bounded = cfg.value_bounds is not None
        low, high = cfg.value_bounds if bounded else (0.0, 1.0)
        select_leaves(tree.children, tree.child_visits, tree.child_q, tree.prior, tree.legal,
                      tree.node_visits, tree.node_value, tree.terminal, root_prior, tree.qmin,
                      tree.qmax, low, high, bounded, cfg.rule == "puct", cfg.c_puct, cfg.c_base,
                      cfg.c_uct, paths, path_actions, depth, expand)  # fmt: skip
        value[:] = 0.0  # a known end (terminal child) is worth 0 beyond its edge's reward
        rows = np.flatnonzero(expand)
        last = depth[rows] - 1
        self._expand(tree, rows, paths[rows, last], path_actions[rows, last], value)
        backup(tree.child_visits, tree.child_q, tree.child_reward, tree.node_visits,
               tree.node_value, tree.qmin, tree.qmax, paths, path_actions, depth, value,
               cfg.gamma, -1.0 if cfg.two_player else 1.0)  # fmt: skip

    def _expand(
        self,
        tree: Tree,
        rows: np.ndarray,
        parents: np.ndarray,
        actions: np.ndarray,
        value: np.ndarray,
    ) -> None:
        """Add the child reached by ``actions`` below ``parents`` in each of ``rows``."""
        if len(rows) == 0:
            return
        states, reward, terminal = self.model.step(tree.states[rows, parents], actions)
        new = tree.num_nodes[rows].astype(np.int64)
        tree.num_nodes[rows] += 1
        tree.states[rows, new] = states
        tree.children[rows, parents, actions] = new
        tree.child_reward[rows, parents, actions] = reward
        tree.parent[rows, new] = parents
        tree.children[rows, new] = UNEXPANDED
        tree.child_visits[rows, new] = 0
        tree.child_q[rows, new] = 0.0
        prior, leaf_value = self.model.evaluate(states)
        legal = np.asarray(self.model.legal(states), dtype=bool)
        terminal = np.asarray(terminal, dtype=bool) | ~legal.any(axis=1)
        leaf_value = np.where(terminal, 0.0, leaf_value)
        tree.terminal[rows, new] = terminal
        tree.legal[rows, new] = legal
        tree.prior[rows, new] = _masked_distribution(prior, legal)
        tree.node_visits[rows, new] = 1
        tree.node_value[rows, new] = leaf_value
        value[rows] = leaf_value

    # -- between moves ------------------------------------------------------------------------
    def advance(self, tree: Tree, actions: np.ndarray) -> Tree:
        """Play ``actions [B]`` at the roots and keep the subtrees below them (tree reuse).
        Rows whose child was never expanded get a fresh root from ``model.step``."""
        actions = np.asarray(actions, dtype=np.int64)
        states = tree.states[np.arange(tree.batch_size), 0]
        new, missing = tree.subtrees(actions)
        if missing.any():
            nxt, _, _ = self.model.step(states[missing], actions[missing])
            new.states[missing, 0] = nxt
        return new

    @staticmethod
    def policy(
        tree: Tree, temperature: float = 1.0, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(pi [B, A], actions [B])`` from the root visit counts: ``pi ~ N^(1/T)``, sampled
        for ``T > 0``; at ``T = 0`` the most visited action (ties at random)."""
        return visit_policy(tree.root_visits(), temperature, rng)


def visit_policy(
    visits: np.ndarray, temperature: float, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Visit-count policy ``[B, A]`` at ``temperature`` and an action per row drawn from it."""
    rng = rng if rng is not None else np.random.default_rng()
    visits = np.asarray(visits, dtype=np.float64)
    if temperature <= 0:
        best = visits == visits.max(axis=1, keepdims=True)
        pi = best / best.sum(axis=1, keepdims=True)
    else:
        scaled = np.power(
            visits / np.maximum(visits.max(axis=1, keepdims=True), 1), 1 / temperature
        )
        pi = scaled / scaled.sum(axis=1, keepdims=True)
    u = rng.random((len(pi), 1))
    actions = np.minimum((np.cumsum(pi, axis=1) < u).sum(axis=1), pi.shape[1] - 1)
    # never pick a zero-probability action through rounding at the end of the cumsum
    bad = pi[np.arange(len(pi)), actions] == 0
    actions[bad] = np.argmax(pi[bad], axis=1)
    return pi.astype(np.float32), actions


def _masked_distribution(prior: np.ndarray, legal: np.ndarray) -> np.ndarray:
    """``prior`` restricted to legal actions and renormalised (uniform if it vanishes there)."""
    p = np.where(legal, np.asarray(prior, dtype=np.float64), 0.0)
    total = p.sum(axis=1, keepdims=True)
    uniform = legal / np.maximum(legal.sum(axis=1, keepdims=True), 1)
    return np.where(total > 0, p / np.where(total > 0, total, 1), uniform).astype(np.float32)
