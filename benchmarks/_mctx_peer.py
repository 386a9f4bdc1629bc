"""mctx's ``muzero_policy`` on the same two tasks, run by ``mcts_speed.py`` in mctx's own venv:

    .mctx/bin/python benchmarks/_mctx_peer.py --batch 64 --simulations 200 --repeats 5

(a) tic-tac-toe, pure MCTS: the rules in ``jax.numpy`` inside ``recurrent_fn`` (reward +1 for
a winning move, discount -1 between the players, 0 after the end), a uniform prior and the value
of one random playout of at most 9 moves; (b) connect four with a policy-value MLP of the same
shape as ours (84 -> 3 x 128 ReLU -> 7 logits and a 64-unit tanh value head, random weights).
Prints one JSON object: simulations/s (median wall and CPU) per task, after a JIT warm-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import mctx
import numpy as np

TTT_LINES = jnp.array(
    [[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 3, 6], [1, 4, 7], [2, 5, 8], [0, 4, 8], [2, 4, 6]]
)


def c4_lines() -> jnp.ndarray:
    out = []
    for r in range(6):
        for c in range(7):
            for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
                cells = [(r + i * dr, c + i * dc) for i in range(4)]
                if all(0 <= a < 6 and 0 <= b < 7 for a, b in cells):
                    out.append([a * 7 + b for a, b in cells])
    return jnp.array(out)


C4_LINES = c4_lines()


def ttt_step(board, action):
    """board [B, 9] canonical (+1 mover); returns (next canonical board, reward, done)."""
    placed = board.at[jnp.arange(board.shape[0]), action].set(1)
    won = (placed[:, TTT_LINES] == 1).all(-1).any(-1)
    done = won | (placed != 0).all(-1)
    return -placed, won.astype(jnp.float32), done


def ttt_rollout(board, key):
    """Value of one random playout for the player to move, [B]."""
    batch = board.shape[0]

    def body(i, carry):
        board, value, sign, done, key = carry
        key, sub = jax.random.split(key)
        legal = board == 0
        action = jnp.argmax(jax.random.uniform(sub, board.shape) * legal, axis=-1)
        nxt, reward, finished = ttt_step(board, action)
        value = jnp.where(done, value, jnp.where(finished, sign * reward, value))
        board = jnp.where(done[:, None], board, nxt)
        return board, value, -sign, done | finished, key

    start_done = (board == -1)[:, TTT_LINES].all(-1).any(-1) | (board != 0).all(-1)
    init = (
        board,
        jnp.where(start_done & (board == -1)[:, TTT_LINES].all(-1).any(-1), -1.0, 0.0),
        jnp.ones(batch),
        start_done,
        key,
    )
    return jax.lax.fori_loop(0, 9, body, init)[1]


def ttt_search(batch: int, simulations: int):
    def recurrent_fn(params, key, action, board):
        nxt, reward, done = ttt_step(board, action)
        value = jnp.where(done, 0.0, ttt_rollout(nxt, key))
        logits = jnp.zeros((board.shape[0], 9))
        discount = jnp.where(done, 0.0, -1.0)
        out = mctx.RecurrentFnOutput(
            reward=reward, discount=discount, prior_logits=logits, value=value
        )
        return out, nxt

    @jax.jit
    def run(key):
        board = jnp.zeros((batch, 9), jnp.int32)
        k1, k2 = jax.random.split(key)
        root = mctx.RootFnOutput(
            prior_logits=jnp.zeros((batch, 9)), value=ttt_rollout(board, k1), embedding=board
        )
        return mctx.muzero_policy(
            None, k2, root, recurrent_fn, simulations, invalid_actions=board != 0
        ).action_weights

    return run


def c4_search(batch: int, simulations: int):
    rng = np.random.default_rng(0)
    sizes = [84, 128, 128, 128]
    weights = [
        (jnp.asarray(rng.normal(0, 1 / np.sqrt(a), (a, b)), jnp.float32), jnp.zeros(b))
        for a, b in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    policy = jnp.asarray(rng.normal(0, 0.1, (128, 7)), jnp.float32)
    v1 = jnp.asarray(rng.normal(0, 0.1, (128, 64)), jnp.float32)
    v2 = jnp.asarray(rng.normal(0, 0.1, (64, 1)), jnp.float32)

    def net(board):
        h = jnp.concatenate([board == 1, board == -1], axis=-1).astype(jnp.float32)
        for w, b in weights:
            h = jax.nn.relu(h @ w + b)
        return h @ policy, jnp.tanh(jax.nn.relu(h @ v1) @ v2)[:, 0]

    def step(board, action):
        rows = jnp.arange(board.shape[0])
        column = board.reshape(-1, 6, 7)[rows, :, action]
        row = (column == 0).sum(-1) - 1
        placed = board.at[rows, row * 7 + action].set(1)
        won = (placed[:, C4_LINES] == 1).all(-1).any(-1)
        done = won | (placed[:, :7] != 0).all(-1)
        return -placed, won.astype(jnp.float32), done

    def recurrent_fn(params, key, action, board):
        nxt, reward, done = step(board, action)
        logits, value = net(nxt)
        discount = jnp.where(done, 0.0, -1.0)
        out = mctx.RecurrentFnOutput(
            reward=reward, discount=discount, prior_logits=logits, value=jnp.where(done, 0.0, value)
        )
        return out, nxt

    @jax.jit
    def run(key):
        board = jnp.zeros((batch, 42), jnp.int32)
        logits, value = net(board)
        root = mctx.RootFnOutput(prior_logits=logits, value=value, embedding=board)
        return mctx.muzero_policy(
            None, key, root, recurrent_fn, simulations, invalid_actions=board[:, :7] != 0
        ).action_weights

    return run


def measure(run, batch: int, simulations: int, repeats: int) -> dict[str, float]:
    jax.block_until_ready(run(jax.random.PRNGKey(0)))  # compile
    walls, cpus = [], []
    for i in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        jax.block_until_ready(run(jax.random.PRNGKey(i + 1)))
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    return {"sims_per_s": batch * simulations / wall, "wall_s": wall, "cpu_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--ttt-simulations", type=int, default=200)
    parser.add_argument("--c4-simulations", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    out = {"jax": jax.__version__, "mctx": getattr(mctx, "__version__", "?"), "results": {}}
    for batch in args.batch:
        out["results"][f"ttt_uct_b{batch}"] = measure(
            ttt_search(batch, args.ttt_simulations), batch, args.ttt_simulations, args.repeats
        )
        out["results"][f"c4_puct_mlp_b{batch}"] = measure(
            c4_search(batch, args.c4_simulations), batch, args.c4_simulations, args.repeats
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
