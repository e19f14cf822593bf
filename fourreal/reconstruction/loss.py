"""The loss of the deformable fit (supplementary Sec. 6): photometric L1 + SSIM on the
rendered cells and a smoothness penalty on the temporal offsets over neighbouring times.

:func:`reconstruction_loss` is a pure tensor function (no host reads, no randomness of its
own), so the fit can run it eagerly or under ``torch.compile`` (``reconstruct.compile``). Its
parts run in named profiler ranges (``fit.ssim``, ``fit.smoothness``;
:mod:`fourreal.reconstruction.profiling`)."""

from __future__ import annotations

import torch

from fourreal.evaluation.metrics import ssim_tensor
from fourreal.reconstruction.deformation import TimeDeformation
from fourreal.reconstruction.profiling import fit_range


def reconstruction_loss(pred: torch.Tensor, truth: torch.Tensor, deform: TimeDeformation, means: torch.Tensor,
                        smooth_times: torch.Tensor | None, extent: float, ssim_weight: float,
                        smooth_weight: float) -> torch.Tensor:
    """The scalar loss of one fit step: ``(1 - ssim_weight) L1 + ssim_weight (1 - SSIM)`` of
    renders ``pred [B, H, W, 3]`` against the grid's cells ``truth [B, H, W, 3]`` (both in
    [0, 1]), plus, when ``smooth_times`` (two neighbouring normalised times ``[2]``) is given,
    ``smooth_weight`` times the mean squared step of ``deform`` (``Δp^t``) of the canonical
    ``means [N, 3]`` between them, over the cloud's squared ``extent``."""
    loss = (1 - ssim_weight) * (pred - truth).abs().mean()
    with fit_range("fit.ssim"):
        ssim = ssim_tensor(pred.permute(0, 3, 1, 2) * 2 - 1, truth.permute(0, 3, 1, 2) * 2 - 1)
    loss = loss + ssim_weight * (1 - ssim)
    if smooth_times is not None:
        with fit_range("fit.smoothness"):
            step = deform.steps(means, smooth_times)
            loss = loss + smooth_weight * step.pow(2).sum(-1).mean() / extent**2
    return loss
