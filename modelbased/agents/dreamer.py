"""Dreamer V1, V2 and V3 (Hafner et al. 2020, "Dream to control"; 2021, "Mastering Atari with
discrete world models"; 2023, "Mastering diverse domains through world models"): learn a
latent world model (RSSM) from replayed sequences and learn behaviour entirely inside it.

    initialise the replay D with `learning_starts` steps of random actions
    for each env step:
        # Environment interaction
        s_t ~ q(s | s_{t-1}, a_{t-1}, o_t);  a_t ~ pi(a | s_t);  o_{t+1}, r_{t+1} = env.step(a_t)
        add (o_{t+1}, a_t, r_{t+1}, first, terminal) to D
        for each gradient step due at the replay ratio (replayed steps per env step):
            # Dynamics learning
            draw B chunks of T steps from D; minimise the world-model loss
            (reconstruction + reward + continue + balanced KL with free bits) -> posteriors s
            # Behaviour learning
            imagine H steps from every posterior s; lambda-returns; critic and actor steps

V1, V2 and V3 are presets of this one implementation (``--set version=1|2|3``, table
:data:`VERSIONS`): Gaussian or categorical latents, KL balance and free bits, MSE or two-hot
symlog heads, the critic's target, return normalisation and the entropy bonus are switches in
the world-model and behaviour configs. The agent runs in the shared loop (``explore`` /
``observe``), so evaluation, checkpoints and stop signals are the library's. Its replay stores
actions in ``[-1, 1]`` (continuous, the actor's units) or one-hot (discrete).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from modelbased.core.agent import Agent
from modelbased.core.config import AgentConfig, merge, nest
from modelbased.core.env_utils import env_name
from modelbased.core.errors import UnsupportedSpaceError
from modelbased.core.registry import register_agent
from modelbased.core.seeding import derive_seed
from modelbased.core.timer import timed
from modelbased.data.sequence_replay import ReplayRatio, SequenceReplay
from modelbased.models.dreamer_behavior import ActorCritic, BehaviorConfig
from modelbased.models.rssm import Latent
from modelbased.models.rssm_world_model import Size, WorldModel, WorldModelConfig, to_tensors

# what each version changes from the defaults (which are V3's)
VERSIONS: dict[int, dict[str, Any]] = {
    1: {
        "model": {
            "classes": 0,
            "stoch": 30,
            "symlog_obs": False,
            "reward_head": "mse",
            "kl_dyn": 1.0,
            "kl_rep": 1.0,
            "free_bits": 3.0,
            "free_average": True,
            "lr": 6e-4,
            "grad_clip": 100.0,
        },
        "behavior": {
            "gamma": 0.99,
            "entropy": 0.0,
            "normalize_returns": False,
            "critic_head": "mse",
            "slow_reg": 0.0,
            "actor_lr": 8e-5,
            "critic_lr": 8e-5,
        },
        "expl_noise": 0.3,
    },
    2: {
        "model": {
            "symlog_obs": False,
            "reward_head": "mse",
            "kl_dyn": 0.8,
            "kl_rep": 0.2,
            "free_average": True,
            "lr": 3e-4,
            "grad_clip": 100.0,
        },
        "behavior": {
            "gamma": 0.99,
            "entropy": 1e-4,
            "normalize_returns": False,
            "critic_head": "mse",
            "critic_target": "slow",
            "slow_reg": 0.0,
            "actor_lr": 8e-5,
            "critic_lr": 8e-5,
        },
    },
    3: {},
}


@dataclasses.dataclass(frozen=True)
class DreamerConfig(AgentConfig):
    """Dreamer's settings (defaults: DreamerV3 at size xs); ``version`` picks V1/V2/V3."""

    algo = "dreamer"
    version: int = 3  # the preset the defaults come from: 1, 2 or 3 (VERSIONS)
    size: Size = "xs"  # model size: xs (CPU, tests), s, m (GPU); sets every width left at 0
    model: WorldModelConfig = WorldModelConfig()  # the RSSM world model and its loss
    behavior: BehaviorConfig = BehaviorConfig()  # actor and critic learned in imagination
    buffer_size: int = 1_000_000  # env steps kept in the sequence replay
    batch_size: int = 16  # B, chunks per gradient step
    seq_len: int = 64  # T, steps per chunk
    replay_ratio: float = 512.0  # replayed steps per env step (B * T per gradient step)
    learning_starts: int = 1000  # env steps of random actions before the first update
    expl_noise: float = 0.0  # std of Gaussian noise added to continuous actions (V1: 0.3)

    def validate(self) -> None:
        """A known version, positive sizes and ratio."""
        super().validate()
        self.require(self.version in VERSIONS, "version", "must be 1, 2 or 3")
        for key in ("buffer_size", "batch_size", "seq_len"):
            self.require(getattr(self, key) >= 1, key, "must be >= 1")
        self.require(self.replay_ratio > 0, "replay_ratio", "must be > 0")
        self.require(self.learning_starts >= 0, "learning_starts", "must be >= 0")
        self.require(self.expl_noise >= 0, "expl_noise", "must be >= 0")
        self.require(self.buffer_size >= self.seq_len, "buffer_size", "must hold one chunk")

    @classmethod
    def resolve(cls, env_id: str | None, overrides: Mapping[str, Any] | None = None):
        """Defaults, the env's preset, the ``version``'s switches (:data:`VERSIONS`; V3's are
        the defaults, so an env preset tuned for V3 keeps its sizes under V1 and V2 but not the
        switches those versions set), then ``overrides``."""
        preset, given = cls.preset(env_id), nest(overrides or {})
        version = merge(preset, given).get("version", cls.version)
        switches = VERSIONS.get(int(version), {}) if str(version).strip().isdigit() else {}
        return cls.from_dict(merge(merge(preset, switches), given))


@register_agent
class Dreamer(Agent):
    """Dreamer V1-V3 over any Box or Discrete action space; see the module docstring."""

    algo = "dreamer"
    Config = DreamerConfig
    config: DreamerConfig
    default_env = "Pendulum-v1"
    default_steps = 20_000

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        """Vector (``Box [O]``) or image (``Box [H, W, C]`` uint8) observations; Box or
        Discrete actions."""
        obs, act = env.observation_space, env.action_space
        image = isinstance(obs, gym.spaces.Box) and len(obs.shape) == 3 and obs.dtype == np.uint8
        if not (isinstance(obs, gym.spaces.Box) and (len(obs.shape) == 1 or image)):
            raise UnsupportedSpaceError(
                f"{cls.algo} needs vector (Box [O]) or 64x64 image observations; "
                f"{env_name(env)} has {obs}"
            )
        if image and tuple(obs.shape[:2]) != (64, 64):
            raise UnsupportedSpaceError(f"{cls.algo} needs 64x64 images; {env_name(env)} has {obs}")
        if not isinstance(act, (gym.spaces.Box, gym.spaces.Discrete)):
            raise UnsupportedSpaceError(
                f"{cls.algo} needs Box or Discrete actions; {env_name(env)} has {act}"
            )
        if isinstance(act, gym.spaces.Box) and not np.all(np.isfinite([act.low, act.high])):
            raise UnsupportedSpaceError(
                f"{cls.algo} needs finite action bounds; {env_name(env)} has {act}"
            )

    def setup(self) -> None:
        """World model, behaviour, optimizer, sequence replay, replay ratio, torch generator."""
        cfg = self.config
        space = self.env.action_space
        self.discrete = isinstance(space, gym.spaces.Discrete)
        self.action_dim = int(space.n) if self.discrete else int(np.prod(space.shape or ()))  # type: ignore[attr-defined]
        obs_space = self.env.observation_space
        self.obs_shape = tuple(obs_space.shape or ())
        self.model = WorldModel(cfg.model, cfg.size, self.obs_shape, self.action_dim).to(
            self.device
        )
        self.model_opt = torch.optim.Adam(self.model.parameters(), cfg.model.lr, eps=cfg.model.eps)
        self.replay = SequenceReplay(
            min(cfg.buffer_size, 10**9), self.obs_shape, self.action_dim, obs_space.dtype
        )
        self.ratio = ReplayRatio(cfg.replay_ratio, cfg.batch_size * cfg.seq_len)
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(derive_seed(self.seed, "torch"))
        self.setup_behavior()
        self.updates = self.updates_logged = 0
        self.sums: dict[str, torch.Tensor] = {}
        self._episode_open = False  # the training episode has steps in the replay
        self._train_latent: tuple[Latent, torch.Tensor] | None = None
        self._policy_latent: tuple[Latent, torch.Tensor] | None = None

    def setup_behavior(self) -> None:
        """The actor-critic (PlaNet has none)."""
        cfg = self.config
        _, hidden, layers, _ = cfg.model.dims(cfg.size)
        b = cfg.behavior
        self.behavior: ActorCritic | None = ActorCritic(
            b,
            self.model.rssm.config.feat_size,
            self.action_dim,
            self.discrete,
            b.hidden or hidden,
            b.layers or layers,
            cfg.model.act,
            cfg.model.norm,
        ).to(self.device)

    # -- actions between the env's units and the model's ------------------------------------
    def to_env(self, action: np.ndarray) -> Any:
        """A model action (``[-1, 1]^A`` or one-hot) in the env's units."""
        if self.discrete:
            return int(np.argmax(action))
        space = self.env.action_space
        low, high = space.low, space.high  # type: ignore[attr-defined]
        return (low + (np.clip(action, -1, 1) + 1) / 2 * (high - low)).astype(space.dtype)

    def random_action(self, rng: np.random.Generator) -> np.ndarray:
        """A uniform action in the model's units."""
        if self.discrete:
            return np.eye(self.action_dim, dtype=np.float32)[rng.integers(self.action_dim)]
        return rng.uniform(-1, 1, self.action_dim).astype(np.float32)

    # -- acting: filter the observation, then the actor -----------------------------------------
    @torch.no_grad()
    def filter(self, latent: tuple[Latent, torch.Tensor] | None, obs: Any, sample: bool) -> Latent:
        """The posterior state at ``obs`` after ``latent = (s_{t-1}, a_{t-1})`` (None: the
        episode starts)."""
        if latent is None:
            state = self.model.rssm.initial(1, self.device)
            action = torch.zeros(1, self.action_dim, device=self.device)
        else:
            state, action = latent
        x = self.model.preprocess(np.asarray(obs)[None])
        noise = self.model.rssm.noise((1,), self.gen, self.device) if sample else None
        return self.model.step_posterior(state, action, x, noise)

    @torch.no_grad()
    def choose(self, state: Latent, sample: bool) -> torch.Tensor:
        """The actor's action ``[1, A]`` at ``state`` (its mode unless ``sample``)."""
        assert self.behavior is not None
        actor = self.behavior.actor
        noise = self.behavior.action_noise((1,), self.gen, self.device) if sample else None
        return actor.sample(actor.dist_params(state.feat()), noise).detach()

    def explore(self, obs: Any) -> Any:
        """Random actions for ``learning_starts`` steps, then the actor's sample (plus
        ``expl_noise``); the latent state follows the episode."""
        cfg = self.config
        if not self._episode_open:
            self._train_latent = None
        state = self.filter(self._train_latent, obs, sample=True)
        if self.loop.env_steps < cfg.learning_starts:
            action = torch.as_tensor(self.random_action(self.rng), device=self.device)[None]
        else:
            action = self.choose(state, sample=True)
            if cfg.expl_noise and not self.discrete:
                noise = self.rng.normal(0.0, cfg.expl_noise, self.action_dim).astype(np.float32)
                action = (action + torch.as_tensor(noise, device=self.device)).clamp(-1, 1)
        self._train_latent = (state, action)
        self._last_action = action[0].cpu().numpy()
        return self.to_env(self._last_action)

    def observe(
        self, obs: Any, action: Any, reward: float, next_obs: Any, terminated: bool, truncated: bool
    ) -> None:
        """Store the step; then the gradient steps due at the replay ratio."""
        if not self._episode_open:  # the episode's first observation
            self.replay.add(obs, np.zeros(self.action_dim, np.float32), 0.0, True, False)
        self.replay.add(next_obs, self._last_action, reward, False, terminated)
        self._episode_open = not (terminated or truncated)
        if self.loop.env_steps >= self.config.learning_starts:
            for _ in range(self.ratio.due(1)):
                self.train_step()

    # -- learning ---------------------------------------------------------------------------
    @timed("train")
    def train_step(self) -> None:
        """One world-model step on ``B`` chunks of ``T`` steps, then behaviour learning from
        their posterior states."""
        cfg = self.config
        batch = to_tensors(self.replay.sample(cfg.batch_size, cfg.seq_len, self.rng), self.model)
        # Dynamics learning
        noise = self.model.rssm.noise((cfg.seq_len, cfg.batch_size), self.gen, self.device)
        loss, post, scalars = self.model.loss(batch, noise)
        self.model_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.model.grad_clip)
        self.model_opt.step()
        # Behaviour learning
        scalars |= self.learn_behavior(post, batch)
        for key, value in scalars.items():
            self.sums[key] = self.sums.get(key, 0.0) + value.detach().float()
        self.updates += 1

    def learn_behavior(self, post: Latent, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        """Actor and critic steps in imagination from the posterior states ``[B, T]``."""
        assert self.behavior is not None
        start = Latent(post.deter.flatten(0, 1), post.stoch.flatten(0, 1))
        cont0 = 1.0 - batch["is_terminal"].flatten().float()
        n = self.config.behavior.imagine_starts
        if 0 < n < len(cont0):
            pick = torch.as_tensor(
                self.rng.choice(len(cont0), n, replace=False), device=self.device
            )
            start, cont0 = Latent(start.deter[pick], start.stoch[pick]), cont0[pick]
        return self.behavior.update(self.model, start, cont0, self.gen)

    def train_scalars(self) -> dict[str, float]:
        """Mean losses of the gradient steps since the last call (``model_loss``, ``recon``,
        ``kl``, ``reward_error``, ``actor_loss``, ``critic_loss``, ...), their count, replay
        size."""
        count = self.updates - self.updates_logged
        out = {k: float(v) / count for k, v in self.sums.items()} if count else {}
        self.updates_logged, self.sums = self.updates, {}
        return out | {"updates": float(count), "replay": float(len(self.replay))}

    def open_loop_grid(self, path: str | Path, context: int = 5, horizon: int = 30) -> Path:
        """Save the open-loop prediction PNG (:mod:`modelbased.diagnostics.open_loop`) of the
        newest ``context + horizon`` replayed steps that lie in one episode (pixel tasks)."""
        from modelbased.diagnostics.open_loop import open_loop_frames, save_grid

        if not self.model.image:
            raise UnsupportedSpaceError(
                f"open-loop frames need image observations, not {self.env_id}"
            )
        steps = self.replay.steps
        length = min(context + horizon, len(self.replay))
        firsts = [
            t
            for t in range(steps - length, steps)
            if self.replay.is_first[t % self.replay.capacity]
        ]
        end = steps if not firsts or firsts[-1] <= steps - length else firsts[-1]
        slots = np.arange(end - length, end) % self.replay.capacity
        frames = open_loop_frames(
            self.model, self.replay.obs[slots], self.replay.action[slots], context
        )
        return save_grid(frames, path)

    @property
    def policy_ready(self) -> bool:
        """After the first gradient step."""
        return self.updates > 0

    # -- the Agent face ---------------------------------------------------------------------
    def reset_policy(self) -> None:
        """The next :meth:`policy` call starts an episode (fresh latent state)."""
        self._policy_latent = None

    def policy(self, obs: Any, deterministic: bool, rng: np.random.Generator) -> Any:
        """Filter ``obs`` (latent kept between calls; :meth:`reset_policy` at episode starts),
        then the actor's mode, or a sample with noise from ``rng``."""
        state = self.filter(self._policy_latent, obs, sample=False)
        action = self.policy_action(state, deterministic, rng)
        self._policy_latent = (state, action)
        return self.to_env(action[0].cpu().numpy())

    def policy_action(
        self, state: Latent, deterministic: bool, rng: np.random.Generator
    ) -> torch.Tensor:
        """The actor's action ``[1, A]`` (mode, or sampled with noise from ``rng``)."""
        assert self.behavior is not None
        actor = self.behavior.actor
        with torch.no_grad():
            params = actor.dist_params(state.feat())
            if deterministic:
                return actor.sample(params, None)
            shape = (1,) if self.discrete else (1, self.action_dim)
            noise = torch.as_tensor(
                rng.random(shape) if self.discrete else rng.standard_normal(shape),
                dtype=torch.float32,
                device=self.device,
            )
            return actor.sample(params, noise)

    def state_dict(self) -> dict[str, Any]:
        """Networks, optimizers, replay, ratio credit, generator and update count."""
        state = {
            "model": self.model.state_dict(),
            "model_opt": self.model_opt.state_dict(),
            "replay": self.replay.state_dict(),
            "ratio": self.ratio.state_dict(),
            "gen": self.gen.get_state(),
            "updates": self.updates,
            "updates_logged": self.updates_logged,
        }
        if self.behavior is not None:
            state |= {"behavior": self.behavior.state_dict(), **self.behavior.optim_state()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` wrote."""
        self.model.load_state_dict(state["model"])
        self.model_opt.load_state_dict(state["model_opt"])
        self.replay.load_state_dict(
            {k: np.asarray(v) if k != "steps" else v for k, v in state["replay"].items()}
        )
        self.ratio.load_state_dict(state["ratio"])
        self.gen.set_state(torch.as_tensor(state["gen"]).cpu())
        self.updates = int(state["updates"])
        self.updates_logged = int(state["updates_logged"])
        if self.behavior is not None:
            self.behavior.load_state_dict(state["behavior"])
            self.behavior.load_optim_state(state)
