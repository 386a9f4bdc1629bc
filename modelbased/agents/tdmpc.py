"""TD-MPC2: model-predictive control in a decoder-free latent model, bootstrapped by a learned Q
(Hansen et al. 2022, "Temporal Difference Learning for Model Predictive Control"; Hansen et al.
2024, "TD-MPC2: Scalable, Robust World Models for Continuous Control", algorithms 1-2).

    act uniformly at random for `seed_steps` steps, then
    for each real step:
        z_0 = h(s); plan by MPPI over H-step action sequences in the latent model, scoring
            sum_t gamma^t R(z_t, a_t) + gamma^H Q(z_H, pi(z_H)), with `num_pi_trajs` rollouts
            of the policy prior among the samples, warm-started from the last plan
        take the plan's first action (+ the planner's std as exploration noise); store it
        every `train_freq` steps from `seed_steps` on (a burst of `pretrain_updates` then):
            sample B windows (s_0, a_{0:H}, r_{0:H}, s_{1:H+1}, terminated_{0:H})
            td_t = r_t + gamma (1 - terminated_t) min Q_target(h(s_{t+1}), pi(h(s_{t+1})))
            z_{t+1} = d(z_t, a_t) from z_0 = h(s_0)
            L = sum_t rho^t [ c_1 ||z_{t+1} - sg(h(s_{t+1}))||^2 + c_2 CE(R(z_t, a_t), r_t)
                              + c_3 CE(Q(z_t, a_t), td_t) + c_4 BCE(C(z_{t+1}), terminated_t) ]
            pi <- minimize sum_t rho^t [alpha log pi(a|z_t) - Q(z_t, a)/scale], a ~ pi(z_t)
            Q_target <- Polyak average of Q

The TD target cuts bootstrapping with each step's own termination flag (tdmpc2 issue #62).
Discrete actions (one-hot inside the networks) are planned by :class:`CategoricalMPPI` (the
``discrete_planner`` section), their prior is a categorical whose loss and value are exact
expectations over the actions. The networks are :mod:`modelbased.models.tdmpc_net`'s.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from modelbased.core.agent import Agent
from modelbased.core.config import AgentConfig
from modelbased.core.env_utils import env_name, require_box
from modelbased.core.errors import UnsupportedSpaceError
from modelbased.core.registry import register_agent
from modelbased.core.schedule import due
from modelbased.core.seeding import derive_seed
from modelbased.core.timer import timed
from modelbased.data.replay import ReplayBuffer
from modelbased.data.sequences import sample_sequences
from modelbased.models.actor_critic import drain_means
from modelbased.models.tdmpc_net import RunningScale, TDMPCNetConfig, WorldModel, discount_heuristic
from modelbased.planning.mpc import MPC
from modelbased.planning.mppi import MPPI, CategoricalMPPI, CategoricalMPPIConfig, MPPIConfig

# TD-MPC2's planner: 6 iterations of 512 samples (24 of them the prior's), 64 elites, std in
# [0.05, 2], weights exp(0.5 * return) (temperature 2 in our units), executed plan sampled
TDMPC_MPPI = MPPIConfig(
    population=488, iterations=6, temperature=2.0, sigma=2.0, elites=64, adapt_std=True,
    min_std=0.05, select="sample",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class TDMPCConfig(AgentConfig):
    """TD-MPC2's hyperparameters (defaults: the paper's, model between its 1M and 5M sizes)."""

    algo = "tdmpc"
    net: TDMPCNetConfig = TDMPCNetConfig()  # network sizes
    planner: MPPIConfig = TDMPC_MPPI  # the planner for continuous (Box) actions, in [-1, 1]
    # the planner for Discrete actions (per-step categorical distributions)
    discrete_planner: CategoricalMPPIConfig = CategoricalMPPIConfig()
    horizon: int = 3  # H: planning horizon and training unroll, in steps
    num_pi_trajs: int = 24  # policy-prior rollouts scored beside the planner's samples
    plan: bool = True  # act by planning; false: the policy prior alone
    buffer_size: int = 1_000_000  # transitions kept
    seed_steps: int = 1000  # uniform random actions for this many steps, then learning
    pretrain_updates: int | None = None  # updates at step seed_steps (None: seed_steps)
    batch_size: int = 256  # windows per gradient step
    train_freq: int = 1  # env steps between gradient steps
    gradient_steps: int = 1  # gradient steps per round
    lr: float = 3e-4  # Adam step size (the policy's too)
    enc_lr_scale: float = 0.3  # the encoder's step size relative to lr
    grad_clip_norm: float = 20.0  # gradient-norm clip of the model's update
    rho: float = 0.5  # per-step weight decay of the unrolled losses
    consistency_coef: float = 20.0  # weight of the latent consistency loss
    reward_coef: float = 0.1  # weight of the reward loss
    value_coef: float = 0.1  # weight of the Q loss
    termination_coef: float = 1.0  # weight of the termination loss
    entropy_coef: float = 1e-4  # alpha of the policy prior's objective
    tau: float = 0.01  # Polyak rate of the target Q heads
    gamma: float | None = None  # discount; None: TD-MPC2's heuristic from the episode length

    def validate(self) -> None:
        """Positive sizes, rates in range."""
        super().validate()
        for key in ("horizon", "buffer_size", "batch_size", "train_freq", "gradient_steps"):
            self.require(getattr(self, key) >= 1, key, "must be >= 1")
        self.require(self.seed_steps >= 1, "seed_steps", "must be >= 1 (learning needs data)")
        self.require(self.num_pi_trajs >= 0, "num_pi_trajs", "must be >= 0")
        self.require(
            self.pretrain_updates is None or self.pretrain_updates >= 0,
            "pretrain_updates",
            "must be >= 0 (or None)",
        )
        for key in ("lr", "enc_lr_scale", "grad_clip_norm"):
            self.require(getattr(self, key) > 0, key, "must be > 0")
        self.require(0 < self.rho <= 1, "rho", "must be in (0, 1]")
        self.require(0 < self.tau <= 1, "tau", "must be in (0, 1]")
        self.require(self.gamma is None or 0 <= self.gamma < 1, "gamma", "must be in [0, 1)")


@register_agent
class TDMPC(Agent):
    """TD-MPC2 for flat Box observations and Box or Discrete actions."""

    algo = "tdmpc"
    Config = TDMPCConfig
    config: TDMPCConfig
    default_env = "Pendulum-v1"
    default_steps = 3_000
    SCALARS = ("consistency_loss", "reward_loss", "value_loss", "termination_loss", "pi_loss",
               "grad_norm", "pi_scale", "q_mean")  # fmt: skip

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        """Flat Box observations; Box or Discrete actions."""
        require_box(cls.algo, env, observation=True, action=False)
        space = env.action_space
        flat_box = isinstance(space, gym.spaces.Box) and len(space.shape) == 1
        if not (flat_box or isinstance(space, gym.spaces.Discrete)):
            raise UnsupportedSpaceError(
                f"{cls.algo} needs a flat Box or a Discrete action space; "
                f"{env_name(env)} has {space}"
            )

    def setup(self) -> None:
        """The world model, its optimizers, the replay buffer and two MPC controllers (training
        and acting), each with its own noise stream."""
        cfg, space, dev = self.config, self.env.action_space, self.device
        self.discrete = isinstance(space, gym.spaces.Discrete)
        if isinstance(space, gym.spaces.Discrete):
            A = int(space.n)
        else:
            box = cast(gym.spaces.Box, space)
            A = box.shape[0]
            low, high = box.low.astype(np.float32), box.high.astype(np.float32)
            self._center = torch.as_tensor((high + low) / 2, device=dev)
            self._half = torch.as_tensor((high - low) / 2, device=dev)
        spec = self.env.spec
        self.gamma = (
            cfg.gamma
            if cfg.gamma is not None
            else discount_heuristic(spec.max_episode_steps if spec is not None else None)
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(self.seed, "world"))
            obs_dim = cast(gym.spaces.Box, self.env.observation_space).shape[0]
            self.world = WorldModel(obs_dim, A, cfg.net, self.discrete)
        self.world.to(dev).train(False)
        w = self.world
        model_params: list[dict[str, Any]] = [
            {"params": w.encoder.parameters(), "lr": cfg.lr * cfg.enc_lr_scale},
            {"params": [*w.dynamics.parameters(), *w.reward_head.parameters(),
                        *w.termination_head.parameters(), *w.qs.parameters()]},
        ]  # fmt: skip
        self.optimizer = torch.optim.Adam(model_params, lr=cfg.lr)
        self.pi_optimizer = torch.optim.Adam(w.pi_head.parameters(), lr=cfg.lr, eps=1e-5)
        self.scale = RunningScale().to(dev)
        self.buffer = ReplayBuffer.for_env(self.env, cfg.buffer_size)
        self.generator = torch.Generator(dev).manual_seed(derive_seed(self.seed, "plan"))
        self.act_generator = torch.Generator(dev).manual_seed(derive_seed(self.seed, "act"))
        self.mpc, self.act_mpc = (
            self.controller(self.generator),
            self.controller(self.act_generator),
        )
        self.world.qs.generator = self.generator  # dropout masks: saved with the checkpoint
        self.updates = 0
        self._sums = torch.zeros(len(self.SCALARS), device=dev)
        self._count = 0

    def controller(self, generator: torch.Generator) -> MPC:
        """An MPC around MPPI (actions in ``[-1, 1]``) or categorical MPPI."""
        cfg, H = self.config, self.config.horizon
        if self.discrete:
            return MPC(CategoricalMPPI(self.world.action_dim, H, cfg.discrete_planner, generator,
                                       self.device))  # fmt: skip
        ones = torch.ones(self.world.action_dim, device=self.device)
        return MPC(MPPI(-ones, ones, H, cfg.planner, generator))

    # -- the loop's hooks ---------------------------------------------------------------------
    def explore(self, obs: np.ndarray) -> Any:
        """Uniform random actions for ``seed_steps`` steps, then the plan with noise."""
        if self.loop.env_steps < self.config.seed_steps:
            return self._random(self.rng)
        return self.plan_training_action(obs)

    @timed("plan")
    def plan_training_action(self, obs: np.ndarray) -> Any:
        """The training controller's action with exploration noise (timed as ``plan``)."""
        return self.act_in(obs, self.mpc, self.generator, explore=True)

    def observe(
        self, obs: Any, action: Any, reward: float, next_obs: Any, terminated: bool, truncated: bool
    ) -> None:
        """Store the transition (a new episode forgets the warm start); update when due."""
        self.buffer.add(obs, action, reward, next_obs, terminated, truncated)
        if terminated or truncated:
            self.mpc.reset()
        step, cfg = self.loop.env_steps, self.config
        if due(step, cfg.train_freq, cfg.seed_steps):
            burst = cfg.seed_steps if cfg.pretrain_updates is None else cfg.pretrain_updates
            self.train_model(burst if step == cfg.seed_steps else cfg.gradient_steps)

    def policy(self, obs: np.ndarray, deterministic: bool, rng: np.random.Generator) -> Any:
        """The acting controller's plan (uniform random before learning starts); randomness
        only from ``rng``."""
        if not self.policy_ready:
            return self._random(rng)
        self.act_generator.manual_seed(int(rng.integers(2**63)))
        return self.act_in(obs, self.act_mpc, self.act_generator, explore=not deterministic)

    def reset_policy(self) -> None:
        """Forget the acting controller's warm start."""
        self.act_mpc.reset()

    @property
    def policy_ready(self) -> bool:
        """Whether the model has had its first updates."""
        return self.updates > 0

    # -- acting -------------------------------------------------------------------------------
    @torch.inference_mode()
    def act_in(self, obs: Any, mpc: MPC, generator: torch.Generator, explore: bool) -> Any:
        """Plan from ``obs`` (or sample the prior, with ``plan`` off) and return the first
        action in the env's units; ``explore`` adds the planner's std as Gaussian noise
        (continuous) or samples the first step's distribution (discrete)."""
        w, cfg = self.world, self.config
        z = w.encode(torch.as_tensor(np.asarray(obs, np.float32), device=self.device)[None])
        if not cfg.plan:
            sample, _, mode = w.pi(z, generator)
            return self.to_env((sample if explore else mode)[0])
        proposals = self.prior_rollouts(z, generator) if cfg.num_pi_trajs else None
        result = mpc.plan(lambda a: w.imagined_return(z, a, self.gamma, generator), 1, proposals)
        action = result.actions[0, 0]
        if explore and self.discrete:
            pick = torch.multinomial(result.mean[0, 0], 1, generator=generator)
            action = torch.eye(w.action_dim, device=self.device)[pick[0]]
        elif explore and result.std is not None:
            noise = torch.randn(action.shape, generator=generator, device=self.device)
            action = (action + result.std[0, 0] * noise).clamp(-1, 1)
        return self.to_env(action)

    def prior_rollouts(self, z: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``num_pi_trajs`` action sequences ``[1, P, H, A]`` of the policy prior from ``z``."""
        P, H = self.config.num_pi_trajs, self.config.horizon
        z = z.expand(P, -1)
        actions = []
        for t in range(H):
            a = self.world.pi(z, generator)[0]
            actions.append(a)
            if t < H - 1:
                z = self.world.next(z, a)
        return torch.stack(actions, dim=1)[None]

    def to_env(self, action: torch.Tensor) -> Any:
        """A ``[-1, 1]`` action scaled to the env's bounds, or a one-hot action's index."""
        if self.discrete:
            return int(action.argmax())
        return (self._center + self._half * action).cpu().numpy()

    def from_env(self, action: torch.Tensor) -> torch.Tensor:
        """Stored env actions ``[..]`` as the networks' inputs ``[.., A]``."""
        if self.discrete:
            return F.one_hot(action.long(), self.world.action_dim).float()
        return (action - self._center) / self._half

    def _random(self, rng: np.random.Generator) -> Any:
        """A uniform action from ``rng``."""
        space = self.env.action_space
        if isinstance(space, gym.spaces.Discrete):
            return int(rng.integers(space.n))
        box = cast(gym.spaces.Box, space)
        return np.asarray(rng.uniform(box.low, box.high), dtype=np.float32)

    # -- learning -----------------------------------------------------------------------------
    @timed("update")
    def train_model(self, updates: int) -> None:
        """``updates`` gradient steps on windows of ``horizon`` steps from the replay."""
        self.world.train(True)
        for _ in range(updates):
            raw = sample_sequences(self.buffer, self.config.batch_size, self.config.horizon,
                                   self.rng)  # fmt: skip
            batch = {k: torch.as_tensor(v, device=self.device) for k, v in raw.items()}
            batch["action"] = self.from_env(batch["action"])
            self.update(**batch)
        self.world.train(False)

    def update(self, obs, action, reward, next_obs, terminated, mask) -> None:  # noqa: ANN001
        """One TD-MPC2 update (see the module docstring) on ``obs [B, o]``, ``action [B, H, A]``,
        ``reward [B, H]``, ``next_obs [B, H, o]``, ``terminated [B, H]``, ``mask [B, H]``."""
        cfg, w = self.config, self.world
        B, H = reward.shape
        rho = cfg.rho ** torch.arange(H, device=self.device, dtype=torch.float32)
        weight = rho * mask  # [B, H]
        with torch.no_grad():
            next_z = w.encode(next_obs)  # [B, H, L]
            td_target = self.td_target(next_z, reward, terminated)
        # latent rollout and its losses
        z = w.encode(obs)
        zs = [z]
        consistency = torch.zeros((), device=self.device)
        for t in range(H):
            z = w.next(z, action[:, t])
            consistency = consistency + (weight[:, t] * (z - next_z[:, t]).square().mean(-1)).mean()
            zs.append(z)
        z_now = torch.stack(zs[:-1], 1).flatten(0, 1)  # [B H, L]
        a_now = action.flatten(0, 1)
        support = w.support
        reward_ce = support.cross_entropy(w.reward(z_now, a_now), reward.flatten()).reshape(B, H)
        q_ce = support.cross_entropy(
            w.Q(z_now, a_now), td_target.flatten().expand(cfg.net.num_q, -1)
        )
        term_bce = F.binary_cross_entropy_with_logits(
            w.termination(torch.stack(zs[1:], 1)), terminated.float(), reduction="none"
        )
        losses = (
            consistency / H,
            (weight * reward_ce).mean(0).sum() / H,
            (weight * q_ce.reshape(-1, B, H)).mean(1).sum() / (H * cfg.net.num_q),
            (mask * term_bce).mean(),
        )
        coefs = (cfg.consistency_coef, cfg.reward_coef, cfg.value_coef, cfg.termination_coef)
        total = sum(c * loss for c, loss in zip(coefs, losses, strict=True))
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip_norm)
        self.optimizer.step()
        pi_loss, q_mean = self.update_pi(torch.stack(zs, 1).detach(), torch.cat(
            [torch.ones_like(mask[:, :1]), mask], 1))  # fmt: skip
        w.update_targets(cfg.tau)
        self.updates += 1
        with torch.no_grad():
            stats = [*losses, pi_loss, grad_norm, self.scale.value, q_mean]
            self._sums += torch.stack([s.detach().float() for s in stats])
        self._count += 1

    @torch.no_grad()
    def td_target(
        self, next_z: torch.Tensor, reward: torch.Tensor, terminated: torch.Tensor
    ) -> torch.Tensor:
        """``r_t + gamma (1 - terminated_t) V_target(z_{t+1})`` ``[B, H]`` from ``next_z [B, H,
        L]``: each step cut by its own termination flag (not the window's last, tdmpc2 #62),
        ``V`` the minimum of two target heads at an action of the prior."""
        B, H = reward.shape
        v = self.world.policy_value(next_z.flatten(0, 1), "min", self.generator, target=True)
        return reward + self.gamma * (1 - terminated.float()) * v.reshape(B, H)

    def update_pi(self, zs: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The policy prior's step on the rollout's latents ``zs [B, H+1, L]``: maximize the
        scaled Q (average of two heads, frozen) plus ``entropy_coef`` times the entropy."""
        cfg, w = self.config, self.world
        B, T, _ = zs.shape
        z = zs.flatten(0, 1)
        w.qs.requires_grad_(False)
        action, log_prob, _ = w.pi(z, self.generator)
        if self.discrete:  # exact expectations over the A actions
            A = w.action_dim
            eye = torch.eye(A, device=self.device)
            q = w.q_value(z.repeat_interleave(A, 0), eye.repeat(len(z), 1), "avg", self.generator)
            q = q.reshape(-1, A)
            self.scale.update(q.reshape(B, T, A)[:, 0])
            probs = log_prob.exp()
            objective = (probs * (cfg.entropy_coef * log_prob - self.scale(q))).sum(-1)
        else:
            q = w.q_value(z, action, "avg", self.generator)
            self.scale.update(q.reshape(B, T)[:, 0])
            objective = cfg.entropy_coef * log_prob - self.scale(q)
        w.qs.requires_grad_(True)
        rho = cfg.rho ** torch.arange(T, device=self.device, dtype=torch.float32)
        pi_loss = (objective.reshape(B, T) * rho * mask).mean(0).sum() / T
        self.pi_optimizer.zero_grad(set_to_none=True)
        pi_loss.backward()
        torch.nn.utils.clip_grad_norm_(w.pi_head.parameters(), cfg.grad_clip_norm)
        self.pi_optimizer.step()
        return pi_loss.detach(), q.detach().mean()

    def train_scalars(self) -> dict[str, float]:
        """Mean losses since the last call and the update count; raises
        :class:`TrainingDivergedError` if a loss is not finite."""
        if not self._count:
            return {}
        count, self._count = self._count, 0
        out = drain_means(self._sums, count, self.SCALARS, "tdmpc", self.updates)
        return out | {"updates": float(self.updates)}

    # -- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Networks (targets included), optimizers, the Q scale, replay and noise streams."""
        return {
            "world": self.world.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "pi_optimizer": self.pi_optimizer.state_dict(),
            "scale": self.scale.state_dict(),
            "buffer": self.buffer.state_dict(),
            "generator": self.generator.get_state(),
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` wrote."""
        self.world.load_state_dict(state["world"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.pi_optimizer.load_state_dict(state["pi_optimizer"])
        self.scale.load_state_dict(state["scale"])
        self.buffer.load_state_dict(state["buffer"])
        self.generator.set_state(state["generator"])
        self.updates = int(state["updates"])
