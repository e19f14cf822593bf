"""Floater removal: each canonical point's opacity is optimised with a rendering loss against
the freeze-time column's frames, and points that end transparent are pruned."""

from __future__ import annotations

import numpy as np
import torch

from fourreal.reconstruction.config import ReconstructConfig, compute_device
from fourreal.reconstruction.gaussians import Gaussians, render
from fourreal.reconstruction.init import Canonical


def prune_floaters(canonical: Canonical, frames: np.ndarray, Ks: np.ndarray, background: np.ndarray,
                   cfg: ReconstructConfig) -> tuple[Canonical, int]:
    """Optimise each point's opacity (and color) to re-render the column's frames
    ``[V, H, W, 3]`` (uint8, intrinsics ``Ks [V, 3, 3]``, ``background [3]``) through the
    per-view offsets with an L1 loss; drop points whose opacity ends below ``prune_threshold``.
    Returns the pruned canonical (survivors made opaque) and how many points were dropped."""
    dev = compute_device(cfg)
    g = Gaussians(canonical.cloud).to(dev)
    offsets = torch.as_tensor(canonical.offsets, device=dev)
    target = torch.as_tensor(frames, dtype=torch.float32, device=dev) / 255
    K = torch.as_tensor(Ks, dtype=torch.float32, device=dev)
    bg = torch.as_tensor(background, dtype=torch.float32, device=dev)
    opt = torch.optim.Adam([g.opacity_logits, g.color_logits], lr=cfg.prune_lr)
    h, w = frames.shape[1:3]
    gen = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.prune_steps):
        views = torch.randperm(len(frames), generator=gen)[: cfg.batch_cells].to(dev)
        rgb, _ = render(g.means[None] + offsets[views], g.scales, g.colors, g.opacities, K[views], h, w, bg, cfg.backend)
        loss = (rgb - target[views]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    keep = (g.opacities > cfg.prune_threshold).detach().cpu().numpy()
    cloud = g.cloud().subset(keep)
    cloud.opacities = np.clip(cloud.opacities, 0.5, 0.99)  # the fit starts from opaque survivors
    return Canonical(cloud, canonical.offsets[:, keep], canonical.center, canonical.stats), int((~keep).sum())
