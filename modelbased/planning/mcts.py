"""Batched Monte Carlo tree search: UCT with rollouts and PUCT with a policy-value model.

UCT (Kocsis & Szepesvari 2006, "Bandit based Monte-Carlo Planning") selects
``Q + c_uct * sqrt(ln N / n)`` and evaluates a new leaf by a random playout (pure MCTS, when the
model's value is a rollout). PUCT (Silver et al. 2017, "Mastering the game of Go without
human knowledge"; 2018, "A general reinforcement learning algorithm that masters chess, shogi
and Go through self-play"; the ``c(N)`` schedule of MuZero, Schrittwieser et al. 2020) selects
``Q + c(N) * P * sqrt(N) / (1 + n)`` with the model's prior ``P``, Dirichlet noise at the root
and values normalised to [0, 1] (by known bounds or, as MuZero, the min and max in the tree).

The search runs ``B`` trees at once (a :class:`~modelbased.planning.tree.Tree` of arrays): each
simulation descends all trees in one compiled kernel (``mcts_kernels``), steps the model once
for all the new leaves with a batched ``recurrent_fn`` (one network call for the whole batch),
writes them into the trees and backs their values up in two more kernels. The model comes in as
two batched functions, mctx's way:

    root_fn(observations [B, *O])
        -> RootOutput(state [B, *S], prior [B, A], value [B], legal bool [B, A])
    recurrent_fn(states [k, *S], actions [k])
        -> RecurrentOutput(state [k, *S], reward [k], terminal bool [k],
                           prior [k, A], value [k], legal bool [k, A])
    num_actions: int

Values are for the player to move in the state, rewards for the one who chose the action;
priors need not be masked or normalised. Game rules (AlphaZero, ``GameModel``: the state is the
board) and a learned latent model (MuZero: representation, then dynamics, each followed by
prediction) plug in alike.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, NamedTuple, Protocol

import numpy as np

from modelbased.core.config import Config
from modelbased.planning.mcts_kernels import (
    Paths,
    SearchParams,
    backup,
    considered_visits,
    expand_and_backup,
    gumbel_scores,
    leaves,
    seed_kernels,
    select_gumbel,
    select_leaves,
)
from modelbased.planning.tree import Tree


class RootOutput(NamedTuple):
    """What the model says about ``B`` roots (mctx's ``RootFnOutput``)."""

    state: np.ndarray  # [B, *S] the model state of each root
    prior: np.ndarray  # [B, A] policy prior
    value: np.ndarray  # [B] value for the player to move
    legal: np.ndarray  # bool [B, A] legal actions (none: a finished game)


class RecurrentOutput(NamedTuple):
    """One step of the model from ``k`` states (mctx's ``RecurrentFnOutput`` and embedding)."""

    state: np.ndarray  # [k, *S] the next state
    reward: np.ndarray  # [k] reward of the step, to the player who chose the action
    terminal: np.ndarray  # bool [k] the next state ends the episode
    prior: np.ndarray  # [k, A] policy prior at the next state
    value: np.ndarray  # [k] value of the next state for its player to move
    legal: np.ndarray  # bool [k, A] legal actions at the next state


class Decision(NamedTuple):
    """What :meth:`MCTS.decide` returns for ``B`` roots (mctx's ``PolicyOutput``)."""

    tree: Tree  # the searched trees
    actions: np.ndarray  # int64 [B] the chosen action at each root
    target: np.ndarray  # float32 [B, A] the policy target (visit distribution or improved policy)


class SearchModel(Protocol):
    """The model MCTS plans with (see the module docstring)."""

    num_actions: int

    def root_fn(self, observations: np.ndarray) -> RootOutput: ...

    def recurrent_fn(self, states: np.ndarray, actions: np.ndarray) -> RecurrentOutput: ...


@dataclasses.dataclass(frozen=True)
class MCTSConfig(Config):
    """Search settings (defaults: AlphaZero's PUCT with MuZero's ``c(N)``)."""

    num_simulations: int = 100  # simulations per search
    rule: Literal["puct", "uct"] = "puct"  # the selection rule (root = puct)
    # puct: the rule at every node; gumbel: Gumbel MuZero (sequential halving at the root,
    # improved-policy matching below it, Danihelka et al. 2022), for small budgets
    root: Literal["puct", "gumbel"] = "puct"
    max_considered_actions: int = 16  # gumbel: actions sampled at the root (Gumbel-top-k)
    gumbel_scale: float = 1.0  # gumbel: scale of the root's Gumbel noise when exploring
    c_visit: float = 50.0  # gumbel: sigma(q) = (c_visit + max N) * c_scale * q
    c_scale: float = 0.1  # gumbel: see c_visit
    c_puct: float = 1.25  # c(N) = c_puct + log((N + c_base + 1) / c_base)
    c_base: float = 19652.0  # visit scale of c(N)
    c_uct: float = 1.41  # UCT exploration constant, on Q normalised to [0, 1]
    dirichlet_alpha: float = 0.3  # concentration of the root noise
    dirichlet_fraction: float = 0.0  # share of root noise in the prior (AlphaZero self-play 0.25)
    gamma: float = 1.0  # discount of rewards along a path
    two_player: bool = True  # a child's value is the opponent's: negate it on the way up
    value_bounds: tuple[float, float] | None = (-1.0, 1.0)  # None: min-max over the tree

    def for_play(self, num_simulations: int) -> MCTSConfig:
        """The noise-free search of evaluation, arena and play, at ``num_simulations``."""
        return self.replace(num_simulations=num_simulations, dirichlet_fraction=0.0)

    def validate(self) -> None:
        self.require(self.num_simulations >= 1, "num_simulations", "must be >= 1")
        self.require(self.c_puct >= 0, "c_puct", "must be >= 0")
        self.require(self.c_uct >= 0, "c_uct", "must be >= 0")
        self.require(self.c_base > 0, "c_base", "must be > 0")
        self.require(self.dirichlet_alpha > 0, "dirichlet_alpha", "must be > 0")
        self.require(0 <= self.dirichlet_fraction <= 1, "dirichlet_fraction", "must be in [0, 1]")
        self.require(0 < self.gamma <= 1, "gamma", "must be in (0, 1]")
        self.require(self.max_considered_actions >= 1, "max_considered_actions", "must be >= 1")
        self.require(self.gumbel_scale >= 0, "gumbel_scale", "must be >= 0")
        self.require(self.c_visit >= 0, "c_visit", "must be >= 0")
        self.require(self.c_scale >= 0, "c_scale", "must be >= 0")
        self.require(
            self.root != "gumbel" or self.dirichlet_fraction == 0,
            "dirichlet_fraction",
            "must be 0 with root=gumbel (the Gumbel noise explores instead)",
        )
        bounds = self.value_bounds
        self.require(
            bounds is None or bounds[0] < bounds[1],
            "value_bounds",
            "must be (low, high) with low < high, or None",
        )


class MCTS:
    """``search(observations or trees, rng) -> trees``; read the result with :meth:`policy`."""

    def __init__(self, model: SearchModel, config: MCTSConfig | None = None) -> None:
        self.model = model
        self.config = cfg = config or MCTSConfig()
        self.num_actions = int(model.num_actions)
        low, high = cfg.value_bounds or (0.0, 1.0)
        self.params = SearchParams(
            c_puct=float(cfg.c_puct),
            c_base=float(cfg.c_base),
            c_uct=float(cfg.c_uct),
            bounded=cfg.value_bounds is not None,
            value_low=float(low),
            value_high=float(high),
            gamma=float(cfg.gamma),
            sign=-1.0 if cfg.two_player else 1.0,
            c_visit=float(cfg.c_visit),
            c_scale=float(cfg.c_scale),
        )

    # -- the search ---------------------------------------------------------------------------
    def decide(
        self, roots: np.ndarray | Tree, rng: np.random.Generator, temperature: float = 1.0
    ) -> Decision:
        """Search from ``roots`` (as :meth:`search`) and choose an action at every root.

        PUCT/UCT: the policy target is the visit distribution (``T = 1``) and the action is drawn
        from the visits at ``temperature`` (the most visited at 0). Gumbel
        (``root="gumbel"``): the policy target is the improved policy
        ``softmax(logits + sigma(completed Q))`` and the action is sequential halving's
        winner, ``argmax g + logits + sigma(completed Q)`` over the most visited actions, with
        Gumbel noise ``g`` (scaled by ``gumbel_scale``) when ``temperature > 0`` and none at 0
        (Danihelka et al. 2022, algorithm 2).
        """
        if self.config.root != "gumbel":
            tree = self.search(roots, rng)
            visits = tree.root_visits().astype(np.float32)
            _, actions = visit_policy(visits, temperature, rng)
            return Decision(tree, actions, visits / visits.sum(axis=1, keepdims=True))
        tree = self._prepare(roots)
        g = np.zeros(tree.legal[:, 0].shape)
        if temperature > 0:
            g = rng.gumbel(size=g.shape) * self.config.gumbel_scale
        tree = self._run(tree, rng, g)
        logits = gumbel_scores(tree, self.params)
        target = np.exp(logits - logits.max(axis=1, keepdims=True))
        target /= target.sum(axis=1, keepdims=True)
        visits = tree.root_visits()
        most = visits == visits.max(axis=1, keepdims=True)
        actions = np.argmax(np.where(most & tree.legal[:, 0], g + logits, -np.inf), axis=1)
        return Decision(tree, actions, target.astype(np.float32))

    def search(self, roots: np.ndarray | Tree, rng: np.random.Generator) -> Tree:
        """Run ``num_simulations`` simulations on every tree; ``roots`` is a batch of
        observations ``[B, *O]`` (fresh trees from ``root_fn``) or trees from :meth:`advance`
        (reused subtrees). A root with no legal action (a finished game) is an error. With
        ``root="gumbel"`` the action depends on the search's noise: use :meth:`decide`."""
        tree = self._prepare(roots)
        gumbel = None
        if self.config.root == "gumbel":
            gumbel = rng.gumbel(size=tree.legal[:, 0].shape) * self.config.gumbel_scale
        return self._run(tree, rng, gumbel)

    def _prepare(self, roots: np.ndarray | Tree) -> Tree:
        cfg = self.config
        tree = roots if isinstance(roots, Tree) else self._new_trees(np.asarray(roots))
        tree = tree.grow(int(tree.num_nodes.max()) + cfg.num_simulations)
        finished = np.flatnonzero(~tree.legal[:, 0].any(axis=1))
        if len(finished):
            raise ValueError(f"root {finished[0]} has no legal action (a finished game)")
        return tree

    def _run(self, tree: Tree, rng: np.random.Generator, gumbel: np.ndarray | None) -> Tree:
        """The simulations: PUCT/UCT descents, or Gumbel's when ``gumbel [B, A]`` is given."""
        cfg = self.config
        root_prior = self._root_prior(tree, rng)
        seed_kernels(int(rng.integers(2**31)))
        paths = Paths.empty(tree.batch_size, tree.capacity)
        if gumbel is None:
            for _ in range(cfg.num_simulations):
                select_leaves(tree, cfg.rule, self.params, root_prior, paths)
                self._expand_and_backup(tree, paths)
            return tree
        # sequential halving over min(max_considered_actions, legal actions) at each root; its
        # schedule continues from the visits a reused root already has
        done = tree.root_visits().sum(axis=1)
        table = considered_visits(cfg.max_considered_actions, int(done.max()) + cfg.num_simulations)
        m = np.minimum(tree.legal[:, 0].sum(axis=1), cfg.max_considered_actions)
        gumbel = np.ascontiguousarray(gumbel, dtype=np.float64)
        for s in range(cfg.num_simulations):
            considered = table[m, done + s]
            select_gumbel(tree, self.params, gumbel, considered, paths)
            self._expand_and_backup(tree, paths)
        return tree

    def _new_trees(self, observations: np.ndarray) -> Tree:
        out = self.model.root_fn(observations)
        tree = Tree.empty(np.asarray(out.state), self.num_actions, self.config.num_simulations + 1)
        _set_roots(tree, np.arange(tree.batch_size), out)
        return tree

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

    def _expand_and_backup(self, tree: Tree, paths: Paths) -> None:
        """The rest of a simulation once ``paths`` holds a leaf in every tree: expand and
        evaluate the leaves in one batched model call, back up (mctx's ``expand``,
        ``backward``)."""
        rows, parents, actions = leaves(tuple(paths))
        if not len(rows):
            backup(tree, self.params, paths)
            return
        out = self.model.recurrent_fn(tree.states[rows, parents], actions)
        tree.states[rows, tree.num_nodes[rows]] = out.state
        expand_and_backup(
            tree,
            self.params,
            paths,
            np.asarray(out.reward, dtype=np.float32),
            np.asarray(out.terminal, dtype=bool),
            np.asarray(out.prior, dtype=np.float32),
            np.asarray(out.value, dtype=np.float64),
            np.asarray(out.legal, dtype=bool),
        )

    # -- between moves ------------------------------------------------------------------------
    def advance(self, tree: Tree, actions: np.ndarray) -> Tree:
        """Play ``actions [B]`` at the roots and keep the subtrees below them (tree reuse).
        Rows whose child was never expanded get a fresh root from ``recurrent_fn``."""
        actions = np.asarray(actions, dtype=np.int64)
        states = tree.states[np.arange(tree.batch_size), 0]
        new, missing = tree.subtrees(actions)
        if missing.any():
            rows = np.flatnonzero(missing)
            _set_roots(new, rows, self.model.recurrent_fn(states[rows], actions[rows]))
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


def _set_roots(tree: Tree, rows: np.ndarray, out: RootOutput | RecurrentOutput) -> None:
    """Make the model's ``out`` the evaluated roots of the trees at ``rows``."""
    legal = np.asarray(out.legal, dtype=bool)
    tree.states[rows, 0] = out.state
    tree.legal[rows, 0] = legal
    tree.prior[rows, 0] = _masked_distribution(out.prior, legal)
    tree.node_visits[rows, 0] = 1
    tree.node_value[rows, 0] = out.value
    tree.raw_value[rows, 0] = out.value


def _masked_distribution(prior: np.ndarray, legal: np.ndarray) -> np.ndarray:
    """``prior`` restricted to legal actions and renormalised (uniform if it vanishes there)."""
    p = np.where(legal, np.asarray(prior, dtype=np.float64), 0.0)
    total = p.sum(axis=1, keepdims=True)
    uniform = legal / np.maximum(legal.sum(axis=1, keepdims=True), 1)
    return np.where(total > 0, p / np.where(total > 0, total, 1), uniform).astype(np.float32)
