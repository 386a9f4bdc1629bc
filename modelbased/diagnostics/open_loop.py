"""Open-loop prediction of a latent world model (PlaNet, Hafner et al. 2019, figure 5; Dreamer's
"open-loop video"): filter ``context`` real frames, then imagine ``horizon`` more from the
prior under the real actions, and lay real frames, posterior reconstructions and the
open-loop prediction side by side in one PNG.

    row 1: real frames o_1 .. o_{c+h}
    row 2: reconstructions of the posterior (every step sees its frame)
    row 3: reconstructions for the context, then the prior's imagined frames (no frames seen)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from modelbased.models.rssm import Latent
from modelbased.models.rssm_world_model import WorldModel


@torch.no_grad()
def open_loop_frames(
    model: WorldModel, obs: np.ndarray, action: np.ndarray, context: int = 5
) -> np.ndarray:
    """``obs uint8 [T, 64, 64, 3]`` and ``action [T, A]`` (into each step) of one episode ->
    ``uint8 [3, T, 64, 64, 3]``: real, posterior reconstruction, open-loop prediction after
    ``context`` steps (modes of the latents throughout)."""
    x = model.preprocess(obs[None])  # [1, T, 3, 64, 64]
    a = torch.as_tensor(action[None], dtype=torch.float32, device=x.device)
    first = torch.zeros(1, len(obs), dtype=torch.bool, device=x.device)
    first[:, 0] = True
    post, _, _ = model.rssm.observe(model.embed(x), a, first, None)
    recon = model.decode(post.feat())[0]  # [T, 3, 64, 64]
    state = Latent(post.deter[:, context - 1], post.stoch[:, context - 1])
    feats = []
    for t in range(context, len(obs)):
        state, _ = model.rssm.img_step(state, a[:, t], None)
        feats.append(state.feat())
    imagined = model.decode(torch.cat(feats)) if feats else recon[:0]
    open_loop = torch.cat([recon[:context], imagined])

    def image(frames: torch.Tensor) -> np.ndarray:
        return (frames.clamp(0, 1).movedim(-3, -1) * 255).round().to(torch.uint8).cpu().numpy()

    return np.stack([obs, image(recon), image(open_loop)])


def save_grid(frames: np.ndarray, path: str | Path, every: int = 1) -> Path:
    """Write ``uint8 [rows, T, H, W, 3]`` as one PNG (rows stacked, every ``every``-th frame)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picked = frames[:, ::every]
    rows, cols, h, w, _ = picked.shape
    grid = np.full((rows * (h + 2), cols * (w + 2), 3), 255, dtype=np.uint8)
    for r in range(rows):
        for c in range(cols):
            grid[r * (h + 2) : r * (h + 2) + h, c * (w + 2) : c * (w + 2) + w] = picked[r, c]
    path = Path(path)
    plt.imsave(path, grid)
    return path
