"""The loss of the deformable fit (supplementary Sec. 6): photometric L1 + SSIM on the
rendered cells and a smoothness penalty on the temporal offsets over neighbouring times."""

from __future__ import annotations

import numpy as np
import torch

from fourreal.evaluation.metrics import ssim_tensor
from fourreal.reconstruction.config import ReconstructConfig
from fourreal.reconstruction.deformation import Deformable


def reconstruction_loss(pred: torch.Tensor, truth: torch.Tensor, model: Deformable, times: int,
                        rng: np.random.Generator, cfg: ReconstructConfig) -> torch.Tensor:
    """The scalar loss of one fit step: ``(1 - ssim_weight) L1 + ssim_weight (1 - SSIM)`` of
    renders ``pred [B, H, W, 3]`` against the grid's cells ``truth [B, H, W, 3]`` (both in
    [0, 1]), plus, when ``smooth_weight > 0`` and the grid has ``times > 1``, ``smooth_weight``
    times the mean squared step of ``Δp^t`` between time ``j`` and ``j + 1`` (``j`` drawn from
    ``rng``), over the cloud's squared extent."""
    loss = (1 - cfg.ssim_weight) * (pred - truth).abs().mean()
    loss = loss + cfg.ssim_weight * (1 - ssim_tensor(pred.permute(0, 3, 1, 2) * 2 - 1, truth.permute(0, 3, 1, 2) * 2 - 1))
    if cfg.smooth_weight > 0 and times > 1:
        j = int(rng.integers(0, times - 1))
        p = model.gaussians.means
        step = model.deform(p, (j + 1) / (times - 1)) - model.deform(p, j / (times - 1))
        loss = loss + cfg.smooth_weight * step.pow(2).sum(-1).mean() / model.deform.extent**2
    return loss
