"""Replay of the trajectories MuZero plays, with prioritized sampling and K-step unroll targets
(Schrittwieser et al. 2020, appendix G; prioritized replay of Schaul et al. 2016).

The agent plays ``L`` environments at once; each writes its steps, in order, into its own lane
(a ring of ``capacity`` slots), so the steps after position ``t`` of an episode are at
``t + 1, t + 2, ...`` of the same lane. A step holds the observation, the action taken, the
reward of that action (to the player who chose it), the search's policy ``pi`` and root value.
Positions are addressed by lane and absolute time ``t`` (slot ``t % capacity``).

Targets of a position ``t`` unrolled ``K`` steps, for ``k = 0 .. K``, ``p = t + k``:

    z_p = sum_{i<n} (s gamma)^i r_{p+i} + (s gamma)^n v_{p+n}     (terms past the end: 0)
    u_{p+1} = r_p,   pi_p,   a_p

with ``s = -1`` in two-player games (rewards and values alternate sides), else 1. Past the
episode's end the state is absorbing: reward and value targets 0, the policy masked, random
actions. Positions of an episode still being played are sampled once all their targets are
known (``t + K + n`` written). Priorities are kept in a flat array and sampled in one
``rng.choice`` (at these buffer sizes cheaper than a sum tree in Python).
"""

from __future__ import annotations

from typing import Any

import numpy as np

OPEN = np.iinfo(np.int64).max  # the end of an episode still being played


class TrajectoryReplay:
    """``lanes`` rings of ``capacity`` steps each (see the module docstring)."""

    def __init__(
        self,
        lanes: int,
        capacity: int,
        obs_shape: tuple[int, ...],
        num_actions: int,
        obs_dtype: Any = np.float32,
    ) -> None:
        self.lanes, self.capacity, self.num_actions = int(lanes), int(capacity), int(num_actions)
        shape = (self.lanes, self.capacity)
        self.obs = np.zeros((*shape, *obs_shape), dtype=obs_dtype)
        self.action = np.zeros(shape, dtype=np.int64)
        self.reward = np.zeros(shape, dtype=np.float32)
        self.policy = np.zeros((*shape, num_actions), dtype=np.float32)
        self.value = np.zeros(shape, dtype=np.float32)  # the search's root value, mover's view
        self.time_of = np.full(shape, -1, dtype=np.int64)  # absolute time held by each slot
        self.end = np.full(shape, OPEN, dtype=np.int64)  # one past the episode's last step
        self.priority = np.zeros(shape, dtype=np.float64)
        self.time = np.zeros(self.lanes, dtype=np.int64)  # next absolute time of each lane
        self.max_priority = 1.0

    def __len__(self) -> int:
        return int((self.time_of >= 0).sum())

    def add(
        self,
        lanes: np.ndarray,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        policy: np.ndarray,
        value: np.ndarray,
    ) -> None:
        """Append one step to each of ``lanes [k]`` (distinct): ``obs [k, *O]``, ``action``,
        ``reward``, ``value [k]``, ``policy [k, A]``; new steps get the largest priority."""
        lanes = np.asarray(lanes, dtype=np.int64)
        slot = self.time[lanes] % self.capacity
        self.obs[lanes, slot], self.action[lanes, slot] = obs, action
        self.reward[lanes, slot], self.policy[lanes, slot] = reward, policy
        self.value[lanes, slot] = value
        self.time_of[lanes, slot], self.end[lanes, slot] = self.time[lanes], OPEN
        self.priority[lanes, slot] = self.max_priority
        self.time[lanes] += 1

    def end_episodes(self, lanes: np.ndarray) -> None:
        """The last step written to each of ``lanes`` ends its episode."""
        lanes = np.asarray(lanes, dtype=np.int64)
        open_ = self.end[lanes] == OPEN
        self.end[lanes] = np.where(open_, self.time[lanes, None], self.end[lanes])

    def known(self, unroll: int, n_step: int) -> np.ndarray:
        """Flat indices (``lane * capacity + slot``) of the positions whose targets are known:
        in a finished episode, or ``t + unroll + n_step`` already written."""
        known = (self.time_of >= 0) & (
            (self.end != OPEN) | (self.time_of + unroll + n_step < self.time[:, None])
        )
        return np.flatnonzero(known)

    def sample(
        self,
        batch_size: int,
        unroll: int,
        n_step: int,
        alpha: float,
        beta: float,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``batch_size`` positions drawn with probability ``P ~ priority^alpha`` among those
        whose targets are known: ``(lanes [B], times [B], weights [B])``, the importance
        weights ``(N P)^-beta`` divided by their maximum."""
        flat = self.known(unroll, n_step)
        if len(flat) == 0:
            raise ValueError("no position with known targets in the replay yet")
        p = self.priority.ravel()[flat] ** alpha
        p /= p.sum()
        pick = rng.choice(len(flat), size=batch_size, p=p)
        lanes, slots = np.divmod(flat[pick], self.capacity)
        weights = (len(flat) * p[pick]) ** -beta
        return lanes, self.time_of[lanes, slots], (weights / weights.max()).astype(np.float32)

    def update_priorities(self, lanes: np.ndarray, times: np.ndarray, priority: np.ndarray) -> None:
        """Set the priorities of the sampled positions (e.g. ``|v - z|`` of the root)."""
        self.priority[lanes, times % self.capacity] = priority
        self.max_priority = max(self.max_priority, float(np.max(priority)))

    def positions(self, times: np.ndarray, unroll: int) -> np.ndarray:
        """``[B, unroll + 1]`` absolute times ``t .. t + unroll`` of the sampled ``times``."""
        return np.asarray(times)[:, None] + np.arange(unroll + 1)

    def observations(self, lanes: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Observations at ``lanes [*B]``, ``times [*B]`` (written slots only)."""
        return self.obs[lanes, times % self.capacity]

    def episode_end(self, lanes: np.ndarray, times: np.ndarray) -> np.ndarray:
        """One past the last step of the episodes of positions ``(lanes [B], times [B])``
        (``OPEN`` while still played)."""
        return self.end[lanes, np.asarray(times) % self.capacity]

    def targets(
        self,
        lanes: np.ndarray,
        times: np.ndarray,
        unroll: int,
        n_step: int,
        gamma: float,
        sign: float,
        rng: np.random.Generator,
        policy: np.ndarray | None = None,
        bootstrap: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Unroll targets of positions ``(lanes [B], times [B])`` (see the module docstring):
        ``actions [B, K]``, ``target_value [B, K+1]``, ``target_reward [B, K]``,
        ``target_policy [B, K+1, A]``, ``policy_mask [B, K+1]``. ``policy [B, K+1, A]`` and
        ``bootstrap [B, K+1]`` (values ``v_{p+n}``) replace the stored ones (reanalyse)."""
        lanes = np.asarray(lanes, dtype=np.int64)
        end = self.episode_end(lanes, times)[:, None]  # [B, 1]
        pos = self.positions(times, unroll)  # [B, K+1]
        inside = pos < end
        slot = pos % self.capacity
        row = lanes[:, None]
        # n-step returns: rewards r_{p+i}, i < n, inside the episode
        ahead = pos[:, :, None] + np.arange(n_step)  # [B, K+1, n]
        ahead_reward = self.reward[row[:, :, None], ahead % self.capacity]
        rewards = np.where(ahead < end[:, :, None], ahead_reward, 0.0)
        discounts = (sign * gamma) ** np.arange(n_step)
        value = (rewards * discounts).sum(-1)
        boot_pos = pos + n_step
        if bootstrap is None:
            bootstrap = self.value[row, boot_pos % self.capacity]
        value += np.where(boot_pos < end, (sign * gamma) ** n_step * bootstrap, 0.0)
        stored = self.policy[row, slot] if policy is None else policy
        random_actions = rng.integers(self.num_actions, size=(len(lanes), unroll))
        steps = inside[:, :unroll]
        return {
            "actions": np.where(steps, self.action[row, slot][:, :unroll], random_actions),
            "target_value": np.where(inside, value, 0.0).astype(np.float32),
            "target_reward": np.where(steps, self.reward[row, slot][:, :unroll], 0.0).astype(
                np.float32
            ),
            "target_policy": np.where(inside[:, :, None], stored, 0.0).astype(np.float32),
            "policy_mask": inside.astype(np.float32),
        }

    def state_dict(self) -> dict[str, Any]:
        """Every array, the lanes' clocks and the largest priority."""
        names = ("obs", "action", "reward", "policy", "value", "time_of", "end", "priority", "time")
        return {k: getattr(self, k) for k in names} | {"max_priority": self.max_priority}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` wrote (same lanes and capacity)."""
        for key, value in state.items():
            if key == "max_priority":
                self.max_priority = float(value)
            else:
                getattr(self, key)[...] = np.asarray(value)
