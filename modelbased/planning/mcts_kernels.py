"""Compiled (numba) inner loops of the batched search, mctx's ``simulate``, ``expand`` and
``backward``: descending every tree to a leaf, adding the model's new nodes and backing the leaf
values up. They loop over the ``B`` trees and down each path in machine code, so a simulation
costs three kernel calls plus one batched ``recurrent_fn`` of the model, whatever the batch size.

Each kernel takes the :class:`~modelbased.planning.tree.Tree` as one argument (a ``NamedTuple``
of arrays ``[B, N, A]``, ``[B, N]``, ``[B]``), the scalars of the search as one
:class:`SearchParams` and one simulation's scratch as one :class:`Paths`:

    select_leaves(tree, rule, params, root_prior [B, A], paths)  # fills paths
    expand(tree, paths, reward [k], terminal [k], prior [k, A], value [k], legal [k, A])
    backup(tree, params, paths)

The selection ``rule`` names a function of one edge, mctx's way (PUCT: Silver et al. 2017, with
MuZero's ``c(N)``, Schrittwieser et al. 2020; UCT: Kocsis & Szepesvari 2006). Each rule has its
own compiled descent binding its score function at compile time, because numba cannot cache a
kernel that takes a function as an argument. The compiled functions receive the structures as
plain tuples and name them again inside: numba types a plain tuple in C but a ``NamedTuple`` in
Python, which would cost more per call than a whole descent of a small tree.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from modelbased.planning.tree import UNEXPANDED, Tree


class SearchParams(NamedTuple):
    """The scalars of one search as the kernels read them (built from ``MCTSConfig``)."""

    c_puct: float  # PUCT: c(N) = c_puct + log((N + c_base + 1) / c_base)
    c_base: float  # visit scale of c(N)
    c_uct: float  # UCT exploration constant
    bounded: bool  # Q normalised by known bounds (else by the tree's min and max, MuZero)
    value_low: float  # the known bounds, used when ``bounded``
    value_high: float
    gamma: float  # discount of rewards along a path
    sign: float  # -1 in zero-sum two-player games (a child's value is the opponent's), else 1
    c_visit: float  # Gumbel: sigma(q) = (c_visit + max N) * c_scale * q
    c_scale: float


class Paths(NamedTuple):
    """One simulation's path in each of ``B`` trees (at most ``D`` edges deep)."""

    nodes: np.ndarray  # int64 [B, D] the node at each depth
    actions: np.ndarray  # int64 [B, D] the action taken there
    depth: np.ndarray  # int64 [B] edges taken
    expand: np.ndarray  # bool [B] the last edge is unexpanded (else it ends at a terminal)
    value: np.ndarray  # float64 [B] the leaf's value, for the player to move there

    @classmethod
    def empty(cls, batch: int, depth: int) -> Paths:
        return cls(
            nodes=np.zeros((batch, depth), np.int64),
            actions=np.zeros((batch, depth), np.int64),
            depth=np.zeros(batch, np.int64),
            expand=np.zeros(batch, bool),
            value=np.zeros(batch, np.float64),
        )


@numba.njit(cache=True)
def seed_kernels(seed: int) -> None:
    """Seed numba's generator (used for tie-breaks) from the caller's ``numpy`` generator."""
    np.random.seed(seed)


@numba.njit(cache=True, inline="always")
def puct_score(q, n, prior, n_parent, first_play, params):
    """PUCT: ``Q + c(N) * P * sqrt(N) / (1 + n)``; an unvisited edge's Q is its parent's value."""
    c = params.c_puct + np.log((n_parent + params.c_base + 1.0) / params.c_base)
    return (q if n > 0 else first_play) + c * prior * np.sqrt(n_parent) / (1.0 + n)


@numba.njit(cache=True, inline="always")
def uct_score(q, n, prior, n_parent, first_play, params):
    """UCT: ``Q + c_uct * sqrt(ln N / n)``; untried edges first."""
    if n > 0:
        return q + params.c_uct * np.sqrt(np.log(max(n_parent, 1.0)) / n)
    return 1e6


@numba.njit(cache=True, inline="always")
def _normalise(q, tree, b, params):
    """``q`` mapped to [0, 1] by the known bounds, or by the tree's min and max once it has two
    distinct values."""
    if params.bounded:
        return (q - params.value_low) / (params.value_high - params.value_low)
    if tree.qmax[b] > tree.qmin[b]:
        return (q - tree.qmin[b]) / (tree.qmax[b] - tree.qmin[b])
    return q


@numba.njit(inline="always")
def _descend(tree, score, params, root_prior, paths):
    """For each tree, descend from the root by ``score`` over legal actions (the root's prior is
    ``root_prior [B, A]``, e.g. with Dirichlet noise) until an unexpanded edge
    (``paths.expand[b]``) or a terminal child; fill ``paths.nodes``, ``.actions``, ``.depth``."""
    batch, _, actions = tree.children.shape
    for b in range(batch):
        node, d = 0, 0
        while True:
            n_parent = float(tree.node_visits[b, node])
            first_play = _normalise(tree.node_value[b, node], tree, b, params)
            best, best_score = -1, -np.inf
            for a in range(actions):
                if not tree.legal[b, node, a]:
                    continue
                n = tree.child_visits[b, node, a]
                q = _normalise(tree.child_q[b, node, a], tree, b, params)
                p = root_prior[b, a] if d == 0 else tree.prior[b, node, a]
                s = score(q, n, p, n_parent, first_play, params)
                s += 1e-7 * np.random.random()  # random tie-break
                if s > best_score:
                    best, best_score = a, s
            node = _take_edge(tree, b, node, d, best, paths)
            d += 1
            if node < 0:
                break
        paths.depth[b] = d


@numba.njit(inline="always")
def _take_edge(tree, b, node, d, action, paths):
    """Record edge ``d`` of tree ``b``'s path (``node``, ``action``); the child to descend
    into, or -1 when the path ends here (an unexpanded edge, ``paths.expand``, or a terminal
    child)."""
    paths.nodes[b, d] = node
    paths.actions[b, d] = action
    paths.value[b] = 0.0  # a known end (terminal child) is worth 0 beyond its edge's reward
    child = tree.children[b, node, action]
    if child < 0:
        paths.expand[b] = True
        return -1
    if tree.terminal[b, child]:
        paths.expand[b] = False
        return -1
    return child


@numba.njit(cache=True)
def _select_puct(tree, params, root_prior, paths):
    _descend(Tree(*tree), puct_score, SearchParams(*params), root_prior, Paths(*paths))


@numba.njit(cache=True)
def _select_uct(tree, params, root_prior, paths):
    _descend(Tree(*tree), uct_score, SearchParams(*params), root_prior, Paths(*paths))


_SELECT = {"puct": _select_puct, "uct": _select_uct}


# -- Gumbel MuZero (Danihelka et al. 2022, "Policy improvement by planning with Gumbel") ---------
@numba.njit(cache=True, inline="always")
def sigma_completed_q(tree, b, node, params, out):
    """Write ``sigma(completed Q) [A]`` of ``node`` into ``out`` (legal actions only): unvisited
    edges take v_mix, the prior-weighted mix of the node's raw value and its visited Qs (eq. 33);
    the completed Qs are min-max rescaled to [0, 1] over the node's legal actions and scaled by
    ``(c_visit + max_b N(b)) * c_scale`` (eq. 8)."""
    actions = out.shape[0]
    sum_n, max_n, sum_p, weighted = 0.0, 0.0, 0.0, 0.0
    for a in range(actions):
        if not tree.legal[b, node, a]:
            continue
        n = float(tree.child_visits[b, node, a])
        sum_n += n
        max_n = max(max_n, n)
        if n > 0:
            p = max(float(tree.prior[b, node, a]), 1e-30)
            sum_p += p
            weighted += p * float(tree.child_q[b, node, a])
    v_mix = float(tree.raw_value[b, node])
    if sum_n > 0:
        v_mix = (v_mix + sum_n * weighted / sum_p) / (1.0 + sum_n)
    low, high = np.inf, -np.inf
    for a in range(actions):
        if not tree.legal[b, node, a]:
            continue
        q = float(tree.child_q[b, node, a]) if tree.child_visits[b, node, a] > 0 else v_mix
        out[a] = q
        low, high = min(low, q), max(high, q)
    scale = (params.c_visit + max_n) * params.c_scale / max(high - low, 1e-8)
    for a in range(actions):
        out[a] = (out[a] - low) * scale if tree.legal[b, node, a] else 0.0


@numba.njit(cache=True, inline="always")
def log_prior(p):
    """The prior's logit (``log p``, floored so a zero prior on a legal action stays finite)."""
    return np.log(max(p, 1e-30))


@numba.njit(cache=True)
def _select_gumbel(tree, params, gumbel, considered, paths):
    """Gumbel MuZero's descent: at the root, among the actions visited exactly
    ``considered [B]`` times so far (sequential halving's schedule), the argmax of
    ``g + logits + sigma(completed Q)``; below it, the deterministic choice
    ``argmax pi'(a) - N(a) / (1 + sum N)`` with ``pi' = softmax(logits + sigma(completed Q))``
    (Danihelka et al. 2022, sections 4 and 5). ``gumbel [B, A]`` is this search's noise."""
    tree, params, paths = Tree(*tree), SearchParams(*params), Paths(*paths)
    batch, _, actions = tree.children.shape
    sigma = np.empty(actions)
    for b in range(batch):
        node, d = 0, 0
        while True:
            sigma_completed_q(tree, b, node, params, sigma)
            best = -1
            if d == 0:
                best = _gumbel_root_action(tree, b, gumbel, sigma, considered[b])
            else:
                best = _gumbel_interior_action(tree, b, node, sigma)
            node = _take_edge(tree, b, node, d, best, paths)
            d += 1
            if node < 0:
                break
        paths.depth[b] = d


@numba.njit(inline="always")
def _gumbel_root_action(tree, b, gumbel, sigma, considered):
    """The root's action: the best ``g + logits + sigma`` among the legal actions with exactly
    ``considered`` visits (all legal actions when none has, e.g. in a reused tree)."""
    best, best_score, any_considered = -1, -np.inf, False
    for a in range(sigma.shape[0]):
        if tree.legal[b, 0, a] and tree.child_visits[b, 0, a] == considered:
            any_considered = True
    for a in range(sigma.shape[0]):
        if not tree.legal[b, 0, a]:
            continue
        if any_considered and tree.child_visits[b, 0, a] != considered:
            continue
        s = gumbel[b, a] + log_prior(float(tree.prior[b, 0, a])) + sigma[a]
        if s > best_score:
            best, best_score = a, s
    return best


@numba.njit(inline="always")
def _gumbel_interior_action(tree, b, node, sigma):
    """``argmax pi'(a) - N(a) / (1 + sum N)`` over legal actions (ties to the lowest index)."""
    top, total, sum_n = -np.inf, 0.0, 0.0
    for a in range(sigma.shape[0]):
        if tree.legal[b, node, a]:
            sigma[a] += log_prior(float(tree.prior[b, node, a]))  # now the logit of pi'
            top = max(top, sigma[a])
            sum_n += tree.child_visits[b, node, a]
    for a in range(sigma.shape[0]):
        if tree.legal[b, node, a]:
            sigma[a] = np.exp(sigma[a] - top)
            total += sigma[a]
    best, best_score = -1, -np.inf
    for a in range(sigma.shape[0]):
        if not tree.legal[b, node, a]:
            continue
        s = sigma[a] / total - tree.child_visits[b, node, a] / (1.0 + sum_n)
        if s > best_score:
            best, best_score = a, s
    return best


def select_gumbel(
    tree: Tree, params: SearchParams, gumbel: np.ndarray, considered: np.ndarray, paths: Paths
) -> None:
    """Descend every tree to a leaf by Gumbel MuZero's rules (see :func:`_select_gumbel`):
    ``gumbel float64 [B, A]``, ``considered int64 [B]`` the root visit count the next
    simulation's root action must have (:func:`considered_visits`)."""
    _select_gumbel(tuple(tree), tuple(params), gumbel, considered, tuple(paths))


def considered_visits(max_considered: int, num_simulations: int) -> np.ndarray:
    """Sequential halving's schedule (Danihelka et al. 2022, section 4; Karnin et al. 2013):
    ``table [max_considered + 1, num_simulations]``, row ``m`` for ``m`` considered actions,
    entry ``s`` the visit count an action must have to be visited by simulation ``s``. Each
    phase gives the remaining actions ``max(1, floor(n / (ceil(log2 m) * remaining)))`` visits
    each, then halves them (never below 2)."""
    table = np.zeros((max_considered + 1, num_simulations), np.int64)
    for m in range(1, max_considered + 1):
        if m == 1:
            table[m] = np.arange(num_simulations)
            continue
        phases = int(np.ceil(np.log2(m)))
        visits, remaining = np.zeros(m, np.int64), m
        out: list[int] = []
        while len(out) < num_simulations:
            extra = max(1, num_simulations // (phases * remaining))
            for _ in range(extra):
                out.extend(visits[:remaining].tolist())
                visits[:remaining] += 1
            remaining = max(2, remaining // 2)
        table[m] = out[:num_simulations]
    return table


def gumbel_scores(tree: Tree, params: SearchParams) -> np.ndarray:
    """``logits + sigma(completed Q)``, float64 ``[B, A]`` at the roots: the logits of Gumbel
    MuZero's improved policy (eq. 11), -inf on illegal actions."""
    return _gumbel_scores(tuple(tree), tuple(params))


@numba.njit(cache=True)
def _gumbel_scores(tree, params):
    tree, params = Tree(*tree), SearchParams(*params)
    batch, _, actions = tree.children.shape
    out = np.full((batch, actions), -np.inf)
    sigma = np.empty(actions)
    for b in range(batch):
        sigma_completed_q(tree, b, 0, params, sigma)
        for a in range(actions):
            if tree.legal[b, 0, a]:
                out[b, a] = log_prior(float(tree.prior[b, 0, a])) + sigma[a]
    return out


def select_leaves(
    tree: Tree, rule: str, params: SearchParams, root_prior: np.ndarray, paths: Paths
) -> None:
    """Descend every tree to a leaf by ``rule``, ``"puct"`` or ``"uct"`` (see :func:`_descend`)."""
    _SELECT[rule](tuple(tree), tuple(params), root_prior, tuple(paths))


def expand(
    tree: Tree,
    paths: Paths,
    reward: np.ndarray,
    terminal: np.ndarray,
    prior: np.ndarray,
    value: np.ndarray,
    legal: np.ndarray,
) -> None:
    """mctx's ``expand``: add the node at the end of every path with ``paths.expand`` from the
    model's step to it (``k`` rows, the expanding trees in batch order): ``reward float32 [k]``
    of the edge, ``terminal bool [k]``, ``prior float32 [k, A]`` (masked to the legal actions
    and renormalised here, uniform where it vanishes), ``value float64 [k]``,
    ``legal bool [k, A]``. A node with no legal action is terminal, and a terminal node is worth
    0 beyond its edge's reward. Each new node's value goes to ``paths.value``; the caller writes
    its state (at slot ``tree.num_nodes`` before the call)."""
    _expand(tuple(tree), tuple(paths), reward, terminal, prior, value, legal)


@numba.njit(cache=True)
def _expand(tree, paths, reward, terminal, prior, value, legal):
    tree, paths = Tree(*tree), Paths(*paths)
    i = 0
    for b in range(paths.depth.shape[0]):
        if not paths.expand[b]:
            continue
        d = paths.depth[b] - 1
        parent, a = paths.nodes[b, d], paths.actions[b, d]
        new = tree.num_nodes[b]
        tree.num_nodes[b] = new + 1
        tree.children[b, parent, a] = new
        tree.child_reward[b, parent, a] = reward[i]
        tree.parent[b, new] = parent
        tree.children[b, new] = UNEXPANDED
        tree.child_visits[b, new] = 0
        tree.child_q[b, new] = 0.0
        ends = terminal[i] or not legal[i].any()
        tree.terminal[b, new] = ends
        tree.legal[b, new] = legal[i]
        _set_masked_prior(tree.prior[b, new], prior[i], legal[i])
        leaf_value = 0.0 if ends else value[i]
        tree.node_visits[b, new] = 1
        tree.node_value[b, new] = leaf_value
        tree.raw_value[b, new] = leaf_value
        paths.value[b] = leaf_value
        i += 1


@numba.njit(cache=True, inline="always")
def _set_masked_prior(out, prior, legal):
    """``out[a] = prior[a] / sum(prior[legal])`` on legal actions, 0 elsewhere; uniform over the
    legal actions when the prior vanishes there."""
    total, count = 0.0, 0
    for a in range(prior.shape[0]):
        if legal[a]:
            total += float(prior[a])
            count += 1
    for a in range(prior.shape[0]):
        if not legal[a]:
            out[a] = 0.0
        elif total > 0:
            out[a] = float(prior[a]) / total
        else:
            out[a] = 1.0 / count


@numba.njit(cache=True)
def leaves(paths):
    """The expanding trees' rows ``[k]`` and the parent node ``[k]`` and action ``[k]`` of
    each one's last edge (the model's inputs), in one call."""
    paths = Paths(*paths)
    k = 0
    for b in range(paths.expand.shape[0]):
        k += paths.expand[b]
    rows = np.empty(k, np.int64)
    parents = np.empty(k, np.int64)
    actions = np.empty(k, np.int64)
    i = 0
    for b in range(paths.expand.shape[0]):
        if paths.expand[b]:
            d = paths.depth[b] - 1
            rows[i], parents[i], actions[i] = b, paths.nodes[b, d], paths.actions[b, d]
            i += 1
    return rows, parents, actions


def expand_and_backup(
    tree: Tree,
    params: SearchParams,
    paths: Paths,
    reward: np.ndarray,
    terminal: np.ndarray,
    prior: np.ndarray,
    value: np.ndarray,
    legal: np.ndarray,
) -> None:
    """:func:`expand` then :func:`backup` in one kernel call (one dispatch per simulation)."""
    _expand_and_backup(
        tuple(tree), tuple(params), tuple(paths), reward, terminal, prior, value, legal
    )


@numba.njit(cache=True)
def _expand_and_backup(tree, params, paths, reward, terminal, prior, value, legal):
    _expand(tree, paths, reward, terminal, prior, value, legal)
    _backup(tree, params, paths)


def backup(tree: Tree, params: SearchParams, paths: Paths) -> None:
    """From each leaf up: an edge's return is its reward plus the discounted (in two-player
    games negated, ``params.sign = -1``) return below it; running means on edges and nodes."""
    _backup(tuple(tree), tuple(params), tuple(paths))


@numba.njit(cache=True)
def _backup(tree, params, paths):
    tree, params, paths = Tree(*tree), SearchParams(*params), Paths(*paths)
    for b in range(paths.depth.shape[0]):
        g = paths.value[b]
        for d in range(paths.depth[b] - 1, -1, -1):
            node, a = paths.nodes[b, d], paths.actions[b, d]
            g = tree.child_reward[b, node, a] + params.gamma * params.sign * g
            n = tree.child_visits[b, node, a] + 1
            tree.child_visits[b, node, a] = n
            q = tree.child_q[b, node, a] + (g - tree.child_q[b, node, a]) / n
            tree.child_q[b, node, a] = q
            m = tree.node_visits[b, node] + 1
            tree.node_visits[b, node] = m
            tree.node_value[b, node] += (g - tree.node_value[b, node]) / m
            tree.qmin[b] = min(tree.qmin[b], q)
            tree.qmax[b] = max(tree.qmax[b], q)


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
