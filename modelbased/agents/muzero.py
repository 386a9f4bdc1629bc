"""MuZero (Schrittwieser et al. 2020, "Mastering Atari, Go, chess and shogi by planning with a
learned model"), with MuZero Reanalyse (same paper, appendix H).

    repeat, one round of `num_envs` episodes at a time:
        observe the N envs; search all of them in one batched MCTS over the learned model
            (representation at the roots, dynamics + prediction per simulation; Dirichlet
            noise, min-max normalised Q); play ~ N^(1/T), T from the temperature schedule
        store (o, a, u, pi, v) in each env's lane of the replay
        at `updates_per_step` gradient steps per env step: sample positions by priority,
            re-search a `reanalyse_fraction` of them with the latest network for fresh
            targets, unroll K steps and minimise
            l = sum_k l^p(pi_{t+k}, p_k) + w l^v(z_{t+k}, v_k) + l^r(u_{t+k}, r_k)
            (gradient into the dynamics x 0.5, unrolled steps x 1/K, importance weights)

Single-player tasks (CartPole-v1) play through Gymnasium's vector API; two-player games play
themselves on their batched rules (values from the mover's view, the legal-move mask at the
root only). Every episode is reported through the shared callbacks, train rows with the
``self_play``, ``train`` and ``reanalyse`` phase times, a checkpoint after a round (where every
episode is complete), evaluations every ``eval_every`` env steps.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from modelbased.agents.arena import SearchPlayer
from modelbased.core.agent import Agent
from modelbased.core.callbacks import Callback
from modelbased.core.config import AgentConfig
from modelbased.core.env_utils import env_name, env_state, load_env_state, make_eval_env
from modelbased.core.errors import ConfigError, UnsupportedSpaceError
from modelbased.core.interrupt import requested
from modelbased.core.loop import evaluate_now, may_evaluate, maybe_checkpoint
from modelbased.core.registry import register_agent
from modelbased.core.schedule import crossed
from modelbased.core.seeding import derive_seed, make_rng
from modelbased.core.timer import timed
from modelbased.data.trajectory_replay import TrajectoryReplay
from modelbased.envs.batched import EpisodeBatch, SelfPlayEpisodes, VectorEpisodes
from modelbased.envs.games import GameEnv
from modelbased.models.muzero_net import MuZeroNet, MuZeroNetConfig, UnrollBatch, muzero_loss
from modelbased.models.support import logits_to_scalar
from modelbased.planning.latent_model import LatentModel
from modelbased.planning.mcts import MCTS, MCTSConfig


@dataclasses.dataclass(frozen=True)
class MuZeroConfig(AgentConfig):
    """Network, search, acting, replay and training settings (defaults: CartPole scale)."""

    algo = "muzero"
    net: MuZeroNetConfig = MuZeroNetConfig()  # representation, dynamics and prediction
    # the self-play search: PUCT, Dirichlet noise at the root, Q min-max normalised in the tree
    search: MCTSConfig = MCTSConfig(
        num_simulations=50,
        dirichlet_alpha=0.25,
        dirichlet_fraction=0.25,
        gamma=0.997,
        two_player=False,
        value_bounds=None,
    )
    eval_simulations: int = 50  # simulations per move of evaluation, arena and play (no noise)
    num_envs: int = 8  # environments stepped together and searched in one batched call
    temperatures: tuple[float, ...] = (1.0, 0.5, 0.25)  # visit-count temperature of acting
    temperature_steps: tuple[int, ...] = (5_000, 10_000)  # env steps where the next one starts
    temperature_moves: int = 1_000_000  # moves of an episode by temperature; greedy after
    unroll_steps: int = 5  # K, steps the dynamics is unrolled in training
    n_step: int = 50  # n of the bootstrapped value targets
    buffer_size: int = 100_000  # steps kept in replay, over all envs
    batch_size: int = 128  # positions per gradient step
    updates_per_step: float = 1.0  # gradient steps per real env step (the replay ratio)
    learning_starts: int = 500  # env steps before the first gradient step
    lr: float = 3e-3  # Adam step size
    weight_decay: float = 1e-4  # L2 on the weights
    max_grad_norm: float = 10.0  # gradient clipping by global norm
    value_loss_weight: float = 1.0  # w of the value loss (MuZero Reanalyse used 0.25)
    priority_alpha: float = 0.6  # P ~ priority^alpha (0: uniform replay)
    priority_beta: float = 0.4  # importance weights (N P)^-beta
    reanalyse_fraction: float = 0.0  # share of each batch whose targets a fresh search renews

    def validate(self) -> None:
        """Positive sizes and rates, fractions in [0, 1], one temperature per phase."""
        super().validate()
        for key in ("eval_simulations", "num_envs", "buffer_size", "batch_size", "n_step"):
            self.require(getattr(self, key) >= 1, key, "must be >= 1")
        for key in ("learning_starts", "temperature_moves", "unroll_steps"):
            self.require(getattr(self, key) >= 0, key, "must be >= 0")
        for key in ("updates_per_step", "lr", "max_grad_norm"):
            self.require(getattr(self, key) > 0, key, "must be > 0")
        for key in ("reanalyse_fraction", "priority_alpha", "priority_beta"):
            self.require(0 <= getattr(self, key) <= 1, key, "must be in [0, 1]")
        self.require(
            len(self.temperatures) == len(self.temperature_steps) + 1,
            "temperatures",
            "needs one more entry than temperature_steps",
        )
        self.require(all(t >= 0 for t in self.temperatures), "temperatures", "must be >= 0")
        self.require(
            self.buffer_size >= self.num_envs * (self.unroll_steps + self.n_step + 1),
            "buffer_size",
            "must hold num_envs * (unroll_steps + n_step + 1) steps",
        )


@register_agent
class MuZero(Agent):
    """MuZero with batched self-play and Reanalyse; see the module docstring."""

    algo = "muzero"
    Config = MuZeroConfig
    config: MuZeroConfig
    default_env = "CartPole-v1"
    default_steps = 15_000
    play_budget_key = "eval_simulations"

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        """A Discrete action space; a two-player game env or a task with a spec to copy."""
        space = env.action_space
        if not isinstance(space, gym.spaces.Discrete):
            raise UnsupportedSpaceError(
                f"{cls.algo} needs a Discrete action space; {env_name(env)} has {space}"
            )
        if not isinstance(env.unwrapped, GameEnv) and env.spec is None:
            raise UnsupportedSpaceError(
                f"{cls.algo} runs num_envs copies of its env: pass a registered env id"
            )

    def setup(self) -> None:
        """Build the network, Adam, the replay, the batch of envs and the search model."""
        cfg = self.config
        unwrapped = self.env.unwrapped
        self.game = unwrapped.game if isinstance(unwrapped, GameEnv) else None
        if cfg.search.two_player != (self.game is not None):
            want = "true" if self.game is not None else "false"
            raise ConfigError(f"muzero: search.two_player must be {want} on {self.env_id}")
        obs_space = self.env.observation_space
        obs_shape = tuple(obs_space.shape or ())
        self.num_actions = int(self.env.action_space.n)  # type: ignore[attr-defined]
        x = self.encode(np.zeros((1, *obs_shape), dtype=obs_space.dtype))
        self.net = MuZeroNet(x.shape[1:], self.num_actions, cfg.net).to(self.device)
        self.optimizer = torch.optim.Adam(
            self.net.parameters(), cfg.lr, weight_decay=cfg.weight_decay
        )
        lanes = cfg.num_envs
        self.replay = TrajectoryReplay(
            lanes, cfg.buffer_size // lanes, obs_shape, self.num_actions, obs_space.dtype
        )
        self.rounds, self.update_credit = 0, 0.0
        self.sums: dict[str, float] = {}
        self.net.eval()  # training switches it to train mode for each update
        self.model = LatentModel(self.net, self.num_actions, self.encode, self.legal, self.device)
        self._episodes: EpisodeBatch | None = None

    # -- observations and legal moves of the task ----------------------------------------------
    def encode(self, obs: np.ndarray) -> np.ndarray:
        """Network input: board planes ``[B, 2, H, W]``, one-hot states ``[B, n]`` of a
        Discrete observation space, or the observation vectors as float32."""
        if self.game is not None:
            return self.game.encode(obs)
        space = self.env.observation_space
        if isinstance(space, gym.spaces.Discrete):
            return np.eye(int(space.n), dtype=np.float32)[np.asarray(obs, dtype=np.int64)]
        return np.asarray(obs, dtype=np.float32)

    def legal(self, obs: np.ndarray) -> np.ndarray:
        """Legal moves ``bool [B, A]`` at real observations (every action off the games)."""
        if self.game is None:
            return np.ones((len(obs), self.num_actions), dtype=bool)
        return self.game.legal(obs)

    @property
    def episodes(self) -> EpisodeBatch:
        """The ``num_envs`` environments of self-play, made on first use."""
        if self._episodes is None:
            n = self.config.num_envs
            self._episodes = (
                SelfPlayEpisodes(self.game, n)
                if self.game is not None
                else VectorEpisodes(lambda: make_eval_env(self.env), n)
            )
        return self._episodes

    def search_config(self, training: bool) -> MCTSConfig:
        """Self-play's search, or the noise-free one of evaluation and play."""
        search = self.config.search
        return search if training else search.for_play(self.config.eval_simulations)

    def temperature(self, move: int) -> float:
        """The visit-count temperature at the current env step and ``move`` of the episode."""
        cfg = self.config
        if move >= cfg.temperature_moves:
            return 0.0
        phase = int(np.searchsorted(cfg.temperature_steps, self.loop.env_steps, side="right"))
        return cfg.temperatures[phase]

    # -- the MuZero loop -------------------------------------------------------------------
    def training_loop(self, steps: int, callback: Callback) -> None:
        """Rounds of ``num_envs`` episodes (training between the batched steps) until ``steps``
        more env steps have been taken; episodes still going then are cut short. A stop signal
        ends the round after the current batched step (an evaluation due then is left pending);
        checkpoints by steps or wall clock are requested only after a complete round."""
        cfg, state = self.config, self.loop
        target, stop = state.env_steps + steps, False
        start, wall0 = time.perf_counter(), state.wall_time_s
        mcts = MCTS(self.model, self.search_config(True))
        while state.env_steps < target and not stop:
            seeds = [derive_seed(self.seed, "round", self.rounds, i) for i in range(cfg.num_envs)]
            obs, active = self.episodes.reset(seeds), np.ones(cfg.num_envs, dtype=bool)
            returns, move = np.zeros(cfg.num_envs), 0
            while active.any() and state.env_steps < target and not stop and not requested():
                lanes = np.flatnonzero(active)
                # Search: one batched MCTS over every env still playing
                actions, pi, value = self.self_play(mcts, obs[lanes], move)
                # Act: step the envs, store (o, a, u, pi, v) in their lanes
                step_actions = np.zeros(cfg.num_envs, dtype=np.int64)
                step_actions[lanes] = actions
                next_obs, reward, done = self.episodes.step(step_actions)
                self.replay.add(lanes, obs[lanes], actions, reward[lanes], pi, value)
                finished = lanes[done[lanes]]
                self.replay.end_episodes(finished)
                sign = (-1.0) ** move if self.game is not None else 1.0
                returns[lanes] += sign * reward[lanes]  # games: the first player's result
                obs, move, before = next_obs, move + 1, state.env_steps
                state.env_steps += len(lanes)
                active[finished] = False
                # Train: gradient steps at the replay ratio on prioritized, reanalysed batches
                if state.env_steps >= cfg.learning_starts and self.can_train():
                    self.update_credit += len(lanes) * cfg.updates_per_step
                    while self.update_credit >= 1:
                        self.train_step()
                        self.update_credit -= 1
                state.wall_time_s = wall0 + time.perf_counter() - start
                stop |= self.report(finished, returns, move, before, target, callback)
            self.replay.end_episodes(np.flatnonzero(active))  # cut short by the step budget
            self.rounds += 1
            if not active.any():  # a complete round: a consistent point
                maybe_checkpoint(self, callback)
            stop |= requested() is not None

    @timed("self_play")
    def self_play(
        self, mcts: MCTS, obs: np.ndarray, move: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One batched search from ``obs [k, *O]``: actions ``[k]`` at the current temperature,
        the policy targets ``[k, A]`` (the visit distribution, or Gumbel's improved policy) and
        the root values ``[k]``."""
        tree, actions, pi = mcts.decide(obs, self.rng, self.temperature(move))
        return actions, pi, tree.root_value()

    def can_train(self) -> bool:
        """Whether the replay holds a position whose unroll targets are all known."""
        return len(self.replay.known(self.config.unroll_steps, self.config.n_step)) > 0

    @timed("train")
    def train_step(self) -> None:
        """One Adam step on a prioritized batch unrolled ``K`` steps; new priorities."""
        cfg, search = self.config, self.config.search
        lanes, times, weight = self.replay.sample(
            cfg.batch_size,
            cfg.unroll_steps,
            cfg.n_step,
            cfg.priority_alpha,
            cfg.priority_beta,
            self.rng,
        )
        fresh = round(cfg.reanalyse_fraction * cfg.batch_size)
        sign = -1.0 if search.two_player else 1.0
        args = (cfg.unroll_steps, cfg.n_step, search.gamma, sign, self.rng)
        parts = [self.replay.targets(lanes[fresh:], times[fresh:], *args)]
        if fresh:
            policy, bootstrap = self.reanalyse(lanes[:fresh], times[:fresh])
            parts.insert(
                0, self.replay.targets(lanes[:fresh], times[:fresh], *args, policy, bootstrap)
            )
        targets = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        obs = self.encode(self.replay.observations(lanes, times))
        batch = UnrollBatch(
            obs=torch.as_tensor(obs, dtype=torch.float32, device=self.device),
            weight=torch.as_tensor(weight, device=self.device),
            **{k: torch.as_tensor(v, device=self.device) for k, v in targets.items()},
        )
        self.net.train()
        loss, root_logits, losses = muzero_loss(self.net, batch, cfg.value_loss_weight)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        self.net.eval()  # searches run the network in eval mode until the next update
        error = (logits_to_scalar(root_logits) - batch.target_value[:, 0]).abs()
        self.replay.update_priorities(lanes, times, error.cpu().numpy() + 1e-6)
        for key, value in (losses | {"loss": loss.detach()}).items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value)
        self.sums["updates"] = self.sums.get("updates", 0.0) + 1

    @timed("reanalyse")
    def reanalyse(self, lanes: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fresh targets for positions ``(lanes [b], times [b])`` from one batched search with
        the latest network at every ``t + k`` (policy ``[b, K+1, A]``) and ``t + k + n``
        (bootstrap values ``[b, K+1]``) inside the episode (MuZero Reanalyse)."""
        cfg = self.config
        pos = times[:, None] + np.arange(cfg.unroll_steps + 1)
        end = self.replay.episode_end(lanes, times)[:, None]
        row = np.broadcast_to(lanes[:, None], pos.shape)
        policy = np.zeros((*pos.shape, self.num_actions), dtype=np.float32)
        bootstrap = np.zeros(pos.shape, dtype=np.float32)
        here, ahead = pos < end, pos + cfg.n_step < end
        roots = np.concatenate([pos[here], pos[ahead] + cfg.n_step])
        rows = np.concatenate([row[here], row[ahead]])
        if len(roots):
            tree, _, pi = MCTS(self.model, self.search_config(True)).decide(
                self.replay.observations(rows, roots), self.rng
            )
            value = tree.root_value()
            policy[here], bootstrap[ahead] = pi[: here.sum()], value[here.sum() :]
        return policy, bootstrap

    def report(
        self,
        finished: np.ndarray,
        returns: np.ndarray,
        move: int,
        before: int,
        target: int,
        cb: Callback,
    ) -> bool:
        """Finished episodes, then on the shared schedule the train row and an evaluation;
        True to stop."""
        state, cfg, stop = self.loop, self.config, False
        for lane in finished:
            state.episodes += 1
            stop |= cb.on_episode(state, float(returns[lane]), move) is False
        last = before < target <= state.env_steps
        if crossed(before, state.env_steps, cfg.log_every) or last:
            stop |= cb.on_train(state, self.train_scalars() | self.timer.scalars()) is False
        if may_evaluate(stop) and (crossed(before, state.env_steps, cfg.eval_every) or last):
            stop |= evaluate_now(self, cb) is False
        return stop

    def train_scalars(self) -> dict[str, float]:
        """Mean losses of the gradient steps since the last call, replay size, rounds."""
        updates = self.sums.pop("updates", 0.0)
        out = {k: v / updates for k, v in self.sums.items()} if updates else {}
        self.sums = {}
        return out | {"updates": updates, "replay": len(self.replay), "rounds": self.rounds}

    # -- the Agent face ---------------------------------------------------------------------
    def policy(self, obs: Any, deterministic: bool, rng: np.random.Generator) -> int:
        """One noise-free search of ``eval_simulations`` from ``obs``; its decision
        (:meth:`MCTS.decide`: the most visited action when ``deterministic``, else one drawn by
        visit count, or Gumbel's), all randomness from ``rng``."""
        mcts = MCTS(self.model, self.search_config(False))
        decision = mcts.decide(np.asarray(obs)[None], rng, 0.0 if deterministic else 1.0)
        return int(decision.actions[0])

    def evaluate(self, episodes: int = 10, seed: int | None = None) -> dict[str, Any]:
        """Mean/std return and mean length of ``episodes`` deterministic episodes, played at
        once on copies of the evaluation env (episode ``i`` reset with ``derive_seed(seed,
        i)``) with one batched noise-free search per step; randomness (ties) from a fresh
        generator of ``seed``."""
        seed = derive_seed(self.seed, "evaluate") if seed is None else seed
        rng = make_rng(seed, "act")
        envs = VectorEpisodes(lambda: make_eval_env(self.env), episodes)
        for env in envs.envs.envs:  # the world as training sees it now
            load_env_state(env, env_state(self.env))
        obs = envs.reset([derive_seed(seed, i) for i in range(episodes)])
        mcts = MCTS(self.model, self.search_config(False))
        active = np.ones(episodes, dtype=bool)
        returns, lengths = np.zeros(episodes), np.zeros(episodes, dtype=np.int64)
        while active.any():
            actions = np.zeros(episodes, dtype=np.int64)
            actions[active] = mcts.decide(obs[active], rng, 0.0).actions
            obs, reward, done = envs.step(actions)
            returns[active] += reward[active]
            lengths[active] += 1
            active &= ~done
        envs.envs.close()
        return {
            "return_mean": float(returns.mean()),
            "return_std": float(returns.std()),
            "length_mean": float(lengths.mean()),
            "episodes": episodes,
            "returns": returns.tolist(),
        }

    def player(self) -> SearchPlayer:
        """This agent as an arena player (two-player games only)."""
        if self.game is None:
            raise UnsupportedSpaceError(f"{self.env_id} is not a two-player game")
        return SearchPlayer(MCTS(self.model, self.search_config(False)), self.algo)

    def state_dict(self) -> dict[str, Any]:
        """Network, optimizer, replay, rounds played and the fractional update credit."""
        return {
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "replay": self.replay.state_dict(),
            "rounds": self.rounds,
            "update_credit": self.update_credit,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` wrote."""
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.replay.load_state_dict({k: np.asarray(v) for k, v in state["replay"].items()})
        self.rounds = int(state["rounds"])
        self.update_credit = float(state["update_credit"])
        if not math.isfinite(self.update_credit):
            raise ValueError("update_credit is not finite")
