"""MCTS speed: simulations per second of our batched array-tree search against (a) a plain
recursive Python UCT/PUCT with node objects (the layout of alpha-zero-general and
muzero-general, written here) and (b) mctx's ``muzero_policy`` (JAX, in its own venv).

Tasks, from the empty board, at batch 1 and batch 64 (64 roots: one batched search for ours and
mctx, 64 searches one after another for the plain one):
  * tic-tac-toe, pure MCTS: UCT (c 1.41), a uniform prior, one random playout per simulation,
    200 simulations per root (mctx: PUCT with a uniform prior over the same playout values);
  * connect four, PUCT with a policy-value network, 100 simulations per root: the MLP (3 x 128)
    for all three, and our small ResNet (32 channels, 3 blocks) for ours and the plain one.
The plain side uses the same torch network at batch 1 per leaf and its own list-based rules.
torch runs on 1 thread; medians of ``--repeats`` runs; CPU time beside wall time; ratios within
this one run. Each invocation appends one record to results/mcts_speed.json.

Run:  python benchmarks/mcts_speed.py [--repeats 5] [--mctx-python .mctx/bin/python]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import _common as common
import numpy as np
import torch

from modelbased.envs.games import ConnectFour, TicTacToe
from modelbased.models.policy_value import PolicyValueNet, PolicyValueNetConfig
from modelbased.planning.game_model import GameModel
from modelbased.planning.mcts import MCTS, MCTSConfig

# -- the plain side: list-based rules and node objects -------------------------------------------
TTT_LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]
C4_LINES = [tuple(int(c) for c in line) for line in ConnectFour.lines]
C4_THROUGH = [[line for line in C4_LINES if c in line] for c in range(42)]


class PlainTicTacToe:
    actions = 9

    @staticmethod
    def legal(board: list[int]) -> list[int]:
        return [i for i in range(9) if board[i] == 0]

    @staticmethod
    def step(board: list[int], a: int) -> tuple[list[int], float, bool]:
        nxt = [-v for v in board]
        nxt[a] = -1  # the mover's stone, already negated for the next player
        won = any(all(nxt[i] == -1 for i in line) for line in TTT_LINES if a in line)
        return nxt, float(won), won or 0 not in nxt


class PlainConnectFour:
    actions = 7

    @staticmethod
    def legal(board: list[int]) -> list[int]:
        return [c for c in range(7) if board[c] == 0]

    @staticmethod
    def step(board: list[int], a: int) -> tuple[list[int], float, bool]:
        row = max(r for r in range(6) if board[r * 7 + a] == 0)
        cell = row * 7 + a
        nxt = [-v for v in board]
        nxt[cell] = -1
        won = any(all(nxt[i] == -1 for i in line) for line in C4_THROUGH[cell])
        return nxt, float(won), won or all(v != 0 for v in nxt[:7])


class Node:
    __slots__ = ("prior", "visits", "value_sum", "children", "reward", "terminal")

    def __init__(self, prior: float) -> None:
        self.prior, self.visits, self.value_sum = prior, 0, 0.0
        self.children: dict[int, Node] = {}
        self.reward, self.terminal = 0.0, False

    def q(self) -> float:  # from the parent's view: the reward plus the negated child value
        return self.reward - (self.value_sum / self.visits if self.visits else 0.0)


def playout(game: Any, board: list[int], rng: random.Random) -> float:
    sign = 1.0
    while True:
        board, reward, done = game.step(board, rng.choice(game.legal(board)))
        if done:
            return sign * reward
        sign = -sign


class PlainSearch:
    """Recursive negamax MCTS over node objects: UCT with playouts or PUCT with a network."""

    def __init__(self, game: Any, simulations: int, net: PolicyValueNet | None, seed: int) -> None:
        self.game, self.simulations, self.net = game, simulations, net
        self.rng = random.Random(seed)
        self.shape = (3, 3) if game is PlainTicTacToe else (6, 7)

    def evaluate(self, board: list[int]) -> tuple[list[float], float]:
        legal = self.game.legal(board)
        if self.net is None:
            return [1.0 / len(legal)] * len(legal), playout(self.game, board, self.rng)
        b = np.asarray(board, np.float32).reshape(1, *self.shape)
        planes = np.stack([b == 1, b == -1], axis=1).astype(np.float32)
        prior, value = self.net.predict(planes)
        p = [float(prior[0, a]) for a in legal]
        total = sum(p)
        return [x / total for x in p], float(value[0])

    def expand(self, node: Node, board: list[int]) -> float:
        priors, value = self.evaluate(board)
        for a, p in zip(self.game.legal(board), priors, strict=True):
            node.children[a] = Node(p)
        return value

    def select(self, node: Node) -> int:
        best, best_score = -1, -math.inf
        log_n, sqrt_n = math.log(max(node.visits, 1)), math.sqrt(node.visits)
        for a, child in node.children.items():
            if self.net is None:
                if child.visits == 0:
                    return a
                score = (child.q() + 1) / 2 + 1.41 * math.sqrt(log_n / child.visits)
            else:
                score = (child.q() + 1) / 2 + 1.25 * child.prior * sqrt_n / (1 + child.visits)
            if score > best_score:
                best, best_score = a, score
        return best

    def simulate(self, node: Node, board: list[int]) -> float:
        """The value of ``node`` for its player to move, after one more simulation."""
        if node.terminal:
            value = 0.0
        elif not node.children:
            value = self.expand(node, board)
        else:
            a = self.select(node)
            child = node.children[a]
            nxt, reward, done = self.game.step(board, a)
            child.reward, child.terminal = reward, done
            value = reward - self.simulate(child, nxt)
        node.visits += 1
        node.value_sum += value
        return value

    def search(self, board: list[int]) -> list[int]:
        root = Node(1.0)
        for _ in range(self.simulations + 1):  # the first one evaluates the root
            self.simulate(root, board)
        return [root.children[a].visits if a in root.children else 0 for a in range(9)]


# -- timing ---------------------------------------------------------------------------------------
def ours(game: Any, batch: int, sims: int, net: PolicyValueNet | None) -> Any:
    rng = np.random.default_rng(0)
    if net is None:
        mcts = MCTS(GameModel(game, rng=rng), MCTSConfig(sims, rule="uct", c_uct=1.41))
    else:
        predict = lambda boards: net.predict(game.encode(boards))  # noqa: E731
        mcts = MCTS(GameModel(game, predict), MCTSConfig(sims))
    return lambda: mcts.search(game.initial(batch), rng)


def plain(game: Any, batch: int, sims: int, net: PolicyValueNet | None) -> Any:
    search = PlainSearch(game, sims, net, seed=0)
    cells = 9 if game is PlainTicTacToe else 42
    return lambda: [search.search([0] * cells) for _ in range(batch)]


def run_mctx(python: str, repeats: int) -> dict[str, Any]:
    if not Path(python).is_file():
        install = "python3 -m venv .mctx && .mctx/bin/pip install mctx"
        return {"skipped": f"mctx is not installed ({python} missing): {install}"}
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    }
    script = Path(__file__).with_name("_mctx_peer.py")
    command = [python, str(script), "--repeats", str(repeats)]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        return {"skipped": f"mctx run failed: {proc.stderr.strip().splitlines()[-1:]}"}
    return json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--mctx-python",
        default=str(Path(__file__).resolve().parents[1] / ".mctx" / "bin" / "python"),
        help="the interpreter of mctx's venv (docs/benchmarks.md)",
    )
    args = parser.parse_args()
    common.setup_torch_threads()
    record = common.start_record(args, seeds=[0])
    torch.manual_seed(0)
    # in eval mode, as agents keep them between updates (both sides call the same networks)
    mlp = PolicyValueNet(2, (6, 7), 7, PolicyValueNetConfig("mlp", blocks=3, hidden=128)).eval()
    resnet = PolicyValueNet(
        2, (6, 7), 7, PolicyValueNetConfig("resnet", channels=32, blocks=3, hidden=64)
    ).eval()
    tasks = [("ttt_uct", TicTacToe(), PlainTicTacToe, 200, None),
             ("c4_puct_mlp", ConnectFour(), PlainConnectFour, 100, mlp),
             ("c4_puct_resnet", ConnectFour(), PlainConnectFour, 100, resnet)]  # fmt: skip
    results: dict[str, Any] = {}
    for name, game, plain_game, sims, net in tasks:
        for batch in (1, 64):
            key = f"{name}_b{batch}"
            row = {"batch": batch, "simulations": sims}
            sides = {
                "ours": ours(game, batch, sims, net),
                "plain": plain(plain_game, batch, sims, net),
            }
            for side, make in sides.items():
                wall, cpu = common.timed(make, args.repeats if side == "ours" or batch == 1 else 1)
                t = {"wall_s": wall, "cpu_s": cpu}
                row[side] = {
                    **t,
                    "sims_per_s": batch * sims / t["wall_s"],
                    "sims_per_cpu_s": batch * sims / t["cpu_s"],
                }
            results[key] = row
            ours_rate, plain_rate = (row[side]["sims_per_s"] for side in ("ours", "plain"))
            line = f"{key}: ours {ours_rate:,.0f}/s, plain {plain_rate:,.0f}/s"
            print(line, file=sys.stderr, flush=True)
    peer = run_mctx(args.mctx_python, args.repeats)
    table = []
    for key, row in results.items():
        m = peer.get("results", {}).get(key)
        o, p = row["ours"], row["plain"]
        rates = [o["sims_per_s"], o["sims_per_cpu_s"], p["sims_per_s"], p["sims_per_cpu_s"]]
        ratios = [o["sims_per_s"] / p["sims_per_s"], o["sims_per_cpu_s"] / p["sims_per_cpu_s"]]
        versus_mctx = (
            [None, None] if m is None else [m["sims_per_s"], o["sims_per_s"] / m["sims_per_s"]]
        )
        table.append([key, *rates, *ratios, *versus_mctx])
        row["mctx"] = m
    header = ["task", "ours sims/s", "ours sims/cpu-s", "plain sims/s", "plain sims/cpu-s"]
    header += ["ours/plain", "ours/plain cpu", "mctx sims/s", "ours/mctx"]
    common.print_table(header, table, "MCTS simulations per second")
    if "skipped" in peer:
        print(f"mctx: {peer['skipped']}")
    path = common.append_record("mcts_speed", record, {"results": results, "mctx": peer})
    print(f"appended a record to {path}")


if __name__ == "__main__":
    main()
