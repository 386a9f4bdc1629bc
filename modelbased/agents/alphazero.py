"""AlphaZero (Silver et al. 2018, "A general reinforcement learning algorithm that masters
chess, shogi and Go through self-play"; the network and loss of Silver et al. 2017), and pure
MCTS (UCT with random playouts, Kocsis & Szepesvari 2006) as the ``mcts`` agent.

    repeat:
        play `parallel_games` games against itself, all at once: at every move one batched
            PUCT search (Dirichlet noise at the roots, tree reused between moves), one network
            call per simulation for all games; play ~ N^(1/T), T = 1 for `temperature_moves`
        store (s, pi, z) with the board's symmetries; fit the network on replay minibatches:
            loss = (z - v)^2 - pi . log p (+ weight decay)
        optionally gate: keep the new network only if it beats the best one in an arena

The agent drives its own loop but reports through the shared callbacks: every self-play game is
an episode (return: the first player's result), every iteration a train row and a checkpoint,
evaluations on the env (against its opponent) every ``eval_every`` self-play moves.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from modelbased.agents.arena import SearchPlayer, network_player, play_games, pure_mcts_player
from modelbased.core.agent import Agent
from modelbased.core.callbacks import Callback
from modelbased.core.config import AgentConfig
from modelbased.core.env_utils import env_name
from modelbased.core.errors import UnsupportedSpaceError
from modelbased.core.loop import evaluate_now, may_evaluate, maybe_checkpoint
from modelbased.core.registry import register_agent
from modelbased.core.schedule import crossed
from modelbased.core.timer import timed
from modelbased.data.game_replay import PositionReplay
from modelbased.envs.games import Game, GameEnv
from modelbased.models.policy_value import PolicyValueNet, PolicyValueNetConfig, alphazero_loss
from modelbased.planning.game_model import GameModel
from modelbased.planning.mcts import MCTS, MCTSConfig


def require_game(algo: str, env: gym.Env) -> Game:
    """The rules (``env.unwrapped.game``) of a two-player game env; UnsupportedSpaceError
    otherwise."""
    game = getattr(env.unwrapped, "game", None)
    if not isinstance(env.unwrapped, GameEnv) or game is None:
        name = env_name(env)
        raise UnsupportedSpaceError(
            f"{algo} plays two-player board games (modelbased/TicTacToe-v0, "
            f"modelbased/ConnectFour-v0); {name} is not one"
        )
    return game


@dataclasses.dataclass(frozen=True)
class AlphaZeroConfig(AgentConfig):
    """Network, search, self-play and training settings (defaults: tic-tac-toe scale)."""

    algo = "alphazero"
    moved = {k: f"net.{k}" for k in ("channels", "blocks", "hidden")} | {
        k: f"search.{k}"
        for k in ("num_simulations", "c_puct", "dirichlet_alpha", "dirichlet_fraction")
    }
    net: PolicyValueNetConfig = PolicyValueNetConfig()  # the policy-value network
    # the self-play search (PUCT, Dirichlet noise at the root)
    search: MCTSConfig = MCTSConfig(num_simulations=50, dirichlet_fraction=0.25)
    eval_simulations: int = 50  # simulations per move of evaluation, arena and play (no noise)
    parallel_games: int = 64  # self-play games played at once
    temperature_moves: int = 3  # moves played ~ N (T = 1) before the most visited (T -> 0)
    reuse_tree: bool = True  # keep the chosen child's subtree for the next move
    buffer_size: int = 20_000  # positions kept for training
    batch_size: int = 256  # positions per gradient step
    updates_per_iteration: int = 50  # gradient steps after each round of self-play
    lr: float = 1e-3  # Adam step size
    weight_decay: float = 1e-4  # L2 on the network's weights
    augment: bool = True  # store every symmetric copy of a position
    gating: bool = False  # keep a new network only if it beats the best one
    gating_games: int = 40  # arena games of a gating match
    gating_threshold: float = 0.55  # score (wins + draws / 2) the new network needs

    def validate(self) -> None:
        """Search budgets, sizes and counts >= 1, a positive rate, a gating threshold in (0, 1)."""
        super().validate()
        for key in (
            "eval_simulations",
            "parallel_games",
            "buffer_size",
            "batch_size",
            "gating_games",
        ):
            self.require(getattr(self, key) >= 1, key, "must be >= 1")
        for key in ("temperature_moves", "updates_per_iteration"):
            self.require(getattr(self, key) >= 0, key, "must be >= 0")
        self.require(self.lr > 0, "lr", "must be > 0")
        self.require(0 < self.gating_threshold < 1, "gating_threshold", "must be in (0, 1)")


class GameAgent(Agent):
    """An agent that plays the two-player game of its env, knowing its rules (``self.game``)."""

    default_env = "modelbased/TicTacToe-v0"
    play_budget_key: ClassVar[str]  # the config key of the search budget per move when playing

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        """Accept only the package's two-player game envs (a ``GameEnv``)."""
        require_game(cls.algo, env)

    def setup(self) -> None:
        """Keep the env's game rules as ``self.game``."""
        self.game = require_game(self.algo, self.env)


@register_agent
class AlphaZero(GameAgent):
    """Self-play with batched PUCT and a policy-value network; see the module docstring."""

    algo = "alphazero"
    Config = AlphaZeroConfig
    config: AlphaZeroConfig
    play_budget_key = "eval_simulations"
    default_steps = 20_000

    def setup(self) -> None:
        """Build the network, its best copy, Adam, the position replay and the self-play state."""
        super().setup()
        cfg = self.config
        shape, actions = self.game.board_shape, self.game.num_actions
        self.net = PolicyValueNet(2, shape, actions, cfg.net).to(self.device).eval()
        self.best = copy.deepcopy(self.net)  # the network self-play uses (differs with gating)
        self.optimizer = torch.optim.Adam(
            self.net.parameters(), cfg.lr, weight_decay=cfg.weight_decay
        )
        self.replay = PositionReplay(cfg.buffer_size, shape, actions)
        self.iteration = 0

    def search_config(self, training: bool) -> MCTSConfig:
        """Self-play's search, or the noise-free one of evaluation and play."""
        search = self.config.search
        return search if training else search.for_play(self.config.eval_simulations)

    def evaluator(self, net: PolicyValueNet) -> Any:
        """``boards [B, H, W] -> (prior [B, A], value [B])`` of ``net``, as the search's
        evaluate."""
        return lambda boards: net.predict(self.game.encode(boards))

    def player(self, net: PolicyValueNet | None = None) -> SearchPlayer:
        """This agent as an arena player (a fresh noise-free search per move)."""
        net = self.best if net is None else net
        return network_player(
            self.game, self.evaluator(net), self.search_config(False), "alphazero"
        )

    # -- the AlphaZero loop -----------------------------------------------------------------
    def training_loop(self, steps: int, callback: Callback) -> None:
        """Self-play iterations until ``steps`` more moves have been played."""
        target, stop = self.loop.env_steps + steps, False
        start, wall0 = time.perf_counter(), self.loop.wall_time_s
        while self.loop.env_steps < target and not stop:
            states, pis, z, results, lengths = self.self_play(self.best)
            self.replay.add(*self.augment(states, pis, z))
            scalars = self.train_network()
            if self.config.gating:
                scalars |= self.gate()
            else:
                self.best.load_state_dict(self.net.state_dict())
            self.iteration += 1
            scalars |= {
                "iteration": self.iteration,
                "replay": len(self.replay),
                "first_player_wins": float(np.mean(results > 0)),
                "draws": float(np.mean(results == 0)),
            }
            self.loop.wall_time_s = wall0 + time.perf_counter() - start
            stop = self.report(results, lengths, scalars, target, callback)

    @timed("self_play")
    def self_play(self, net: PolicyValueNet) -> tuple[np.ndarray, ...]:
        """``parallel_games`` games at once. Returns every position's ``(state [k, H, W],
        pi [k, A], z [k])``, each game's result for the first player ``[G]`` and its length."""
        cfg, game = self.config, self.game
        mcts = MCTS(GameModel(game, self.evaluator(net), self.rng), self.search_config(True))
        boards = game.initial(cfg.parallel_games)
        active = np.arange(cfg.parallel_games)
        result = np.zeros(cfg.parallel_games)
        length = np.zeros(cfg.parallel_games, dtype=np.int64)
        records: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]] = []
        tree, move = None, 0
        while len(active):
            temperature = 1.0 if move < cfg.temperature_moves else 0.0
            tree, actions, pi = mcts.decide(
                tree if tree is not None else boards[active], self.rng, temperature
            )
            records.append((boards[active], pi, active, move))
            boards[active], reward, done = game.step(boards[active], actions)
            result[active[done]] = reward[done] * (1 if move % 2 == 0 else -1)
            length[active[done]] = move + 1
            tree = mcts.advance(tree, actions).take(~done) if cfg.reuse_tree else None
            active, move = active[~done], move + 1
        states = np.concatenate([r[0] for r in records])
        pis = np.concatenate([r[1] for r in records])
        z = np.concatenate([result[r[2]] * (1 if r[3] % 2 == 0 else -1) for r in records])
        return states, pis, z.astype(np.float32), result, length

    def augment(self, states: np.ndarray, pis: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, ...]:
        """Every symmetric copy of ``(states [B, H, W], pis [B, A], z [B])`` if ``augment`` is
        on."""
        if not self.config.augment:
            return states, pis, z
        s, p = self.game.symmetries(states, pis)
        return s, p, np.tile(z, len(s) // len(z))

    @timed("train")
    def train_network(self) -> dict[str, float]:
        """``updates_per_iteration`` Adam steps on replay minibatches; the mean losses."""
        cfg = self.config
        self.net.train()
        totals: dict[str, float] = {}
        for _ in range(cfg.updates_per_iteration):
            s, pi, z = self.replay.sample(cfg.batch_size, self.rng)
            planes, pi, z = (
                torch.from_numpy(x).to(self.device) for x in (self.game.encode(s), pi, z)
            )
            loss, parts = alphazero_loss(self.net, planes, pi, z)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            for k, v in parts.items():
                totals[k] = totals.get(k, 0.0) + v / cfg.updates_per_iteration
        self.net.eval()  # searches call it next
        return totals

    def gate(self) -> dict[str, float]:
        """Arena: the new network against the best; it replaces the best if it scores enough."""
        cfg = self.config
        table = play_games(
            self.game, self.player(self.net), self.player(self.best), cfg.gating_games, self.rng
        )["total"]
        score = (table["wins"] + 0.5 * table["draws"]) / table["games"]
        accepted = score >= cfg.gating_threshold
        if accepted:
            self.best.load_state_dict(self.net.state_dict())
        return {"gating_score": score, "gating_accepted": float(accepted)}

    def report(
        self,
        results: np.ndarray,
        lengths: np.ndarray,
        scalars: dict[str, float],
        target: int,
        cb: Callback,
    ) -> bool:
        """Episodes, then on the shared schedule (``log_every``, ``eval_every``,
        ``checkpoint_every`` moves) the train row, an evaluation, a checkpoint; True to stop."""
        state, cfg, stop = self.loop, self.config, False
        before = state.env_steps
        state.env_steps += int(lengths.sum())
        last = state.env_steps >= target
        for r, n in zip(results, lengths, strict=True):
            state.episodes += 1
            stop |= cb.on_episode(state, float(r), int(n)) is False
        if crossed(before, state.env_steps, cfg.log_every) or last:
            stop |= cb.on_train(state, scalars | self.timer.scalars()) is False
        if may_evaluate(stop) and (crossed(before, state.env_steps, cfg.eval_every) or last):
            stop |= evaluate_now(self, cb) is False
        maybe_checkpoint(self, cb)
        return stop

    # -- the Agent face ---------------------------------------------------------------------
    def policy(self, obs: Any, deterministic: bool, rng: np.random.Generator) -> int:
        """One noise-free search of ``eval_simulations`` from ``obs``; its decision
        (:meth:`MCTS.decide`: the most visited move when ``deterministic``, else one drawn by
        visit count, or Gumbel's), all randomness from ``rng``."""
        board = np.asarray(obs, dtype=np.int8)[None]
        mcts = MCTS(GameModel(self.game, self.evaluator(self.best), rng), self.search_config(False))
        return int(mcts.decide(board, rng, 0.0 if deterministic else 1.0).actions[0])

    def state_dict(self) -> dict[str, Any]:
        """Networks, optimizer, replay and iteration count."""
        return {
            "net": self.net.state_dict(),
            "best": self.best.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "replay": self.replay.state_dict(),
            "iteration": self.iteration,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` wrote."""
        self.net.load_state_dict(state["net"])
        self.best.load_state_dict(state["best"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.replay.load_state_dict({k: np.asarray(v) for k, v in state["replay"].items()})
        self.iteration = int(state["iteration"])


@dataclasses.dataclass(frozen=True)
class MCTSAgentConfig(AgentConfig):
    """Pure MCTS: UCT with one random playout per simulation; nothing is learned."""

    algo = "mcts"
    moved = {"num_simulations": "search.num_simulations", "c_uct": "search.c_uct"}
    # the search: UCT on the rules, a random playout per new leaf
    search: MCTSConfig = MCTSConfig(num_simulations=200, rule="uct")


@register_agent
class MCTSAgent(GameAgent):
    """UCT search with random playouts on the game's rules, through the shared loop (training
    plays episodes against the env's opponent and learns nothing)."""

    algo = "mcts"
    Config = MCTSAgentConfig
    config: MCTSAgentConfig
    play_budget_key = "search.num_simulations"
    default_steps = 50

    def player(self) -> SearchPlayer:
        """This agent as an arena player: UCT with random playouts at its search budget."""
        search = self.config.search
        return pure_mcts_player(self.game, search.num_simulations, self.seed, search.c_uct)

    def policy(self, obs: Any, deterministic: bool, rng: np.random.Generator) -> int:
        """The move of one UCT search from ``obs`` (the same with or without ``deterministic``)."""
        return int(self.player()(np.asarray(obs, dtype=np.int8)[None], rng)[0])

    def explore(self, obs: Any) -> int:
        """The same search as :meth:`policy`, drawing from the training stream."""
        return self.policy(obs, True, self.rng)

    def observe(self, *transition: Any) -> None:
        """Nothing to learn: the rules are the model."""
