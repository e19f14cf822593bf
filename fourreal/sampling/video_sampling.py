"""Video generation with the trained video DiTs: the base model's videos in a mode from a first
frame or a few context frames (:func:`sample_from_first_frame`, :func:`sample_with_context`),
longer ones chunk by chunk (:func:`extend_autoregressively`), how well it continues held-out
first frames against copying them (:func:`heldout_continuation`), and the upsampler's
high-resolution videos and grids (:func:`upsample`, :func:`upsample_grid`) and how much it
beats bilinear resizing on held-out videos (:func:`heldout_upsampling`)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from fourreal.evaluation.metrics import psnr
from fourreal.models.dit import CONTEXTS, NULL_CONTEXT, DiT
from fourreal.sampling.flow_solver import guided, initial_noise, sample
from fourreal.training.data import VideoBatch, resize_video, to_uint8
from fourreal.training.train_configs import TrainUpsamplerConfig


@torch.no_grad()
def sample_from_first_frame(model: DiT, first: torch.Tensor, frames: int, mode: str, steps: int = 20,
                            method: str = "euler", guidance: float = 1.0, seed: int = 0,
                            sigma_max: float = 1.0) -> torch.Tensor:
    """Generate ``[B, frames, 3, H, W]`` videos in ``mode`` whose first frame is ``first [B, 3, H, W]``."""
    return sample_with_context(model, first[:, None], frames, mode, steps, method, guidance, seed, sigma_max)


@torch.no_grad()
def sample_with_context(model: DiT, context: torch.Tensor, frames: int, mode: str, steps: int = 20,
                        method: str = "euler", guidance: float = 1.0, seed: int = 0,
                        sigma_max: float = 1.0) -> torch.Tensor:
    """Generate ``[B, frames, 3, H, W]`` videos in ``mode`` (``dynamic`` or ``freeze_time``)
    whose first ``K`` frames are the given ``context [B, K, 3, H, W]`` (K < frames); ``sigma_max``
    as in :func:`fourreal.sampling.flow_solver.sample`."""
    b, k, _, h, w = context.shape
    if not 0 < k < frames:
        raise ValueError(f"context of {k} frames for a {frames}-frame video: need 0 < K < frames")
    device = next(model.parameters()).device
    cond = torch.zeros(b, frames, 3, h, w, device=device)
    cond[:, :k] = context.to(device)
    mask = torch.zeros(b, frames, device=device)
    mask[:, :k] = 1
    ctx = torch.full((b,), CONTEXTS[mode], device=device)
    null = torch.full((b,), NULL_CONTEXT, device=device)

    def v_cond(x, s):
        return model(x, s, ctx, cond=cond, mask=mask)

    def v_null(x, s):
        return model(x, s, null, cond=cond, mask=mask)

    velocity = guided(v_cond, v_null if guidance != 1.0 else None, guidance)
    return sample(velocity, (b, frames, 3, h, w), steps, method, cond, mask, seed=seed, device=device, progress=False,
                  sigma_max=sigma_max)


@torch.no_grad()
def extend_autoregressively(model: DiT, first: torch.Tensor, frames: int, chunk: int, overlap: int, mode: str,
                            steps: int = 20, method: str = "euler", guidance: float = 1.0, seed: int = 0,
                            sigma_max: float = 1.0) -> torch.Tensor:
    """A video longer than the model's window, as 4Real widens its freeze-time arc: chunks of
    ``chunk`` frames, each conditioned on the last ``overlap`` frames generated so far (the
    first on ``first [B, 3, H, W]`` alone). Returns ``[B, frames, 3, H, W]``."""
    if not 0 < overlap < chunk:
        raise ValueError(f"overlap {overlap} must be in [1, chunk={chunk})")
    video = first[:, None].to(next(model.parameters()).device)
    index = 0
    while video.shape[1] < frames:
        context = video[:, -overlap:] if video.shape[1] > 1 else video
        length = min(chunk, frames - video.shape[1] + context.shape[1])
        new = sample_with_context(model, context, length, mode, steps, method, guidance, seed + index, sigma_max)
        video = torch.cat([video, new[:, context.shape[1]:]], dim=1)
        index += 1
    return video


@torch.no_grad()
def upsample(model: DiT, low: torch.Tensor, cfg: TrainUpsamplerConfig, context: torch.Tensor, seed: int = 0,
             noise: torch.Tensor | None = None) -> torch.Tensor:
    """Upsample ``low [B, F, 3, h, w]`` (in [-1, 1]) to ``[B, F, 3, h * scale, w * scale]``,
    from the initial noise of ``seed`` or from ``noise`` (shaped like the output)."""
    b, f, c, h, w = low.shape
    device = next(model.parameters()).device
    bilinear = resize_video(low.to(device), h * cfg.scale, w * cfg.scale)
    context = context.to(device)
    zeros = torch.zeros(b, f, device=device)

    def velocity(x, s):
        return model(x, s, context, mask=zeros, extra=bilinear)

    residual = sample(velocity, bilinear.shape, cfg.sample_steps, "euler", seed=seed, device=device, progress=False,
                      noise=noise)
    return bilinear + cfg.residual_scale * residual


UPSAMPLE_PIECES_CUDA = 16
"""Pieces of a grid :func:`upsample_grid` puts through the upsampler in one call on a GPU
(one at a time on the CPU, where a batch of full-size pieces would not fit in memory)."""


@torch.no_grad()
def upsample_grid(model: DiT, grid: torch.Tensor, cfg: TrainUpsamplerConfig, chunk: int = 2, seed: int = 0,
                  batch: int | None = None) -> torch.Tensor:
    """Upsample every cell of a grid ``[V, T, 3, h, w]`` to ``[V, T, 3, h * scale, w * scale]``,
    row by row as dynamic videos cut into pieces of ``chunk`` frames (the upsampler's training
    length). Up to ``batch`` pieces of one length go through the model together (default:
    :data:`UPSAMPLE_PIECES_CUDA` on a GPU, 1 on the CPU); each piece starts from the noise of
    its own seed (``seed + row * T + first frame``), so the batch changes nothing but rounding."""
    v, t, c, h, w = grid.shape
    device = next(model.parameters()).device
    batch = batch or (UPSAMPLE_PIECES_CUDA if device.type == "cuda" else 1)
    out = torch.empty(v, t, c, h * cfg.scale, w * cfg.scale)
    pieces = [(i, j, min(chunk, t - j)) for i in range(v) for j in range(0, t, chunk)]
    for length in sorted({n for _, _, n in pieces}):
        same = [(i, j) for i, j, n in pieces if n == length]
        for k in range(0, len(same), batch):
            part = same[k:k + batch]
            low = torch.stack([grid[i, j:j + length] for i, j in part])
            noise = torch.cat([initial_noise((1, length, c, h * cfg.scale, w * cfg.scale), seed + i * t + j)
                               for i, j in part])
            context = torch.full((len(part),), CONTEXTS["dynamic"])
            for (i, j), up in zip(part, upsample(model, low, cfg, context, noise=noise).cpu()):
                out[i, j:j + length] = up
    return out


class ContinuationScores(NamedTuple):
    """Held-out PSNR (dB) of the base model's continuations of first frames (frames after the
    first, generated in each video's own mode) and of copying the first frame into them."""

    model: float
    copy: float


def heldout_continuation(model: DiT, batches: list[VideoBatch], steps: int = 20, method: str = "euler",
                         guidance: float = 1.0) -> ContinuationScores:
    """The base ``model`` continuing the first frame of every held-out video of ``batches``
    (``x0 [B, F, 3, H, W]`` in its ``context`` mode), scored over frames ``1..F-1`` against the
    video and against the trivial answer, every frame a copy of the first; averaged over batches."""
    ours, copies = [], []
    for k, batch in enumerate(batches):
        truth = batch.x0
        made = torch.empty_like(truth)
        for mode, index in CONTEXTS.items():
            items = (batch.context.cpu() == index).nonzero().flatten()
            if len(items):
                made[items] = sample_from_first_frame(model, truth[items, 0], truth.shape[1], mode, steps, method,
                                                      guidance, seed=k).cpu()
        ours.append(psnr(made[:, 1:], truth[:, 1:]))
        copies.append(psnr(truth[:, :1].expand_as(truth[:, 1:]), truth[:, 1:]))
    return ContinuationScores(float(np.mean(ours)), float(np.mean(copies)))


class UpsamplingScores(NamedTuple):
    """Held-out PSNR (dB) of the upsampler and of bilinear resizing, and a preview ``sheet``
    (per batch, its first video: the low-resolution input resized up, bilinear, upsampled,
    truth; uint8 ``[4 * batches, F, H, W, 3]``)."""

    upsampler: float
    bilinear: float
    sheet: np.ndarray


def heldout_upsampling(model: DiT, batches: list[VideoBatch], cfg: TrainUpsamplerConfig) -> UpsamplingScores:
    """The upsampler ``model`` on held-out video ``batches``:
    every video downscaled by ``cfg.scale`` and brought back to its size by the upsampler and by
    bilinear resizing, both scored against it (:class:`UpsamplingScores`)."""
    ours, bilinear, sheet = [], [], []
    for batch in batches:
        truth = batch.x0
        low = resize_video(truth, truth.shape[-2] // cfg.scale, truth.shape[-1] // cfg.scale)
        up = upsample(model, low, cfg, batch.context).cpu()
        lin = resize_video(low, truth.shape[-2], truth.shape[-1])
        ours.append(psnr(up, truth))
        bilinear.append(psnr(lin, truth))
        sheet.append(np.stack([to_uint8(resize_video(low, *truth.shape[-2:]).clamp(-1, 1))[0], to_uint8(lin)[0],
                               to_uint8(up)[0], to_uint8(truth)[0]]))
    return UpsamplingScores(float(np.mean(ours)), float(np.mean(bilinear)), np.concatenate(sheet))
