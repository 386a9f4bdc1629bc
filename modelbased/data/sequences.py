"""Short contiguous sequences from a replay buffer of single transitions, for models trained by
multi-step latent rollouts (TD-MPC: Hansen et al. 2022, 2024, which sample ``H + 1``
consecutive observations of one episode).

The shared :class:`~modelbased.data.replay.ReplayBuffer` stores one env's transitions in the
order they were taken, so rows ``i .. i + H - 1`` are ``H`` consecutive steps unless an episode
ended (terminated or truncated) or was cut (a stop signal: the next row's ``obs`` is not this
row's ``next_obs``) inside the window. Windows are drawn uniformly; the steps after such a
break get ``mask`` 0 (the step that ends the episode keeps 1: its ``terminated`` flag is a
target), so no rejection loop runs and every draw is one ``get`` of ``B * H`` rows.
"""

from __future__ import annotations

import numpy as np

from modelbased.core.errors import DataError
from modelbased.data.replay import ReplayBuffer


def sample_sequences(
    buffer: ReplayBuffer, batch_size: int, horizon: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """``batch_size`` windows of ``horizon`` steps: ``obs [B, *O]`` (the first state),
    ``action [B, H, *A]``, ``reward [B, H]``, ``next_obs [B, H, *O]``, ``terminated [B, H]``
    (bool) and ``mask [B, H]`` (float32: 1 for the steps of the first episode of the window)."""
    size = len(buffer)
    if size < horizon:
        raise DataError(f"sequences of {horizon} steps need that many transitions; have {size}")
    starts = rng.integers(0, size - horizon + 1, size=batch_size)
    rows = (starts[:, None] + np.arange(horizon)).ravel()
    batch = buffer.get(rows)
    B, H = batch_size, horizon

    def seq(x: np.ndarray) -> np.ndarray:
        return x.reshape(B, H, *x.shape[1:])

    obs, next_obs = seq(batch.obs), seq(batch.next_obs)
    ended = seq(batch.terminated) | seq(batch.truncated)
    cut = (next_obs[:, :-1] != obs[:, 1:]).reshape(B, H - 1, -1).any(-1)
    broken = ended[:, :-1] | cut  # [B, H - 1]: step t + 1 is not the successor of step t
    mask = np.ones((B, H), dtype=np.float32)
    mask[:, 1:] = np.cumprod(~broken, axis=1)
    return {
        "obs": obs[:, 0],
        "action": seq(batch.action),
        "reward": seq(batch.reward),
        "next_obs": next_obs,
        "terminated": seq(batch.terminated),
        "mask": mask,
    }
