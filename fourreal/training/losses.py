"""The training losses of each model kind: one rectified-flow objective (:func:`flow_objective`,
assembled from :mod:`fourreal.training.flow_matching`'s helpers) applied to base-model videos
(:func:`video_loss`, :func:`heldout_loss`), upsampler residuals (:func:`upsampler_loss`) and
4D grids (:func:`grid_loss`)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from fourreal.models.dit import NULL_CONTEXT
from fourreal.training.data import GridBatch, VideoBatch, resize_video
from fourreal.training.flow_matching import flow_loss, interpolate, training_noise, velocity_target
from fourreal.training.optim import OptimConfig
from fourreal.training.train_configs import TrainUpsamplerConfig


def flow_objective(x0: torch.Tensor, frame_mask: torch.Tensor, optim: OptimConfig, gen: torch.Generator,
                   velocity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Rectified-flow velocity loss of ``velocity(x_sigma, sigma)`` on data ``x0 [B, *frames, C, H, W]``
    (``*frames``: ``F`` for videos, ``V, T`` for grids), over the frames where ``frame_mask [B, *frames]``
    is 0. Flow times and noise are drawn from ``gen`` (:func:`~fourreal.training.flow_matching.training_noise`)
    before ``velocity`` is called, once."""
    sigma, noise = training_noise(x0, optim, gen)
    pred = velocity(interpolate(x0, noise, sigma), sigma)
    last = frame_mask.dim() - 1  # the last frame dimension: frames are flattened into one
    return flow_loss(pred.flatten(1, last), velocity_target(x0, noise).flatten(1, last), frame_mask.flatten(1))


def video_loss(model: nn.Module, batch: VideoBatch, gen: torch.Generator, optim: OptimConfig) -> torch.Tensor:
    """Base-model loss of a batch of videos ``x0 [B, F, 3, H, W]``, conditioning frames excluded; the
    mode is replaced by the null context with probability ``optim.context_dropout``. Noise comes
    from ``gen`` on its own device (a GPU generator draws it where the model trains)."""
    device = next(model.parameters()).device
    x0 = batch.x0.to(device)
    mask = batch.cond_mask.to(device)

    def velocity(x_sigma, sigma):
        drop = (torch.rand(x0.shape[0], generator=gen, device=gen.device) < optim.context_dropout).to(device)
        context = batch.context.to(device)
        context = torch.where(drop, torch.full_like(context, NULL_CONTEXT), context)
        return model(x_sigma, sigma, context, cond=x0, mask=mask)

    return flow_objective(x0, mask, optim, gen, velocity)


@torch.no_grad()
def heldout_loss(model: nn.Module, batches: list[VideoBatch], seed: int = 1234) -> float:
    """Mean :func:`video_loss` on fixed batches with fixed noise (no context dropout): comparable
    across models and checkpoints."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    losses = [video_loss(model, b, gen, OptimConfig(context_dropout=0.0, sigma_schedule="uniform")).item() for b in batches]
    model.train()
    return float(np.mean(losses))


def low_res_input(video: torch.Tensor, scale: int) -> torch.Tensor:
    """The upsampler's conditioning for ``video [B, F, 3, H, W]``: downscaled by ``scale``
    (area), then resized back to ``H x W`` (bilinear): what it sees at inference."""
    b, f, c, h, w = video.shape
    return resize_video(resize_video(video, h // scale, w // scale), h, w)


def upsampler_loss(model: nn.Module, batch: VideoBatch, gen: torch.Generator, cfg: TrainUpsamplerConfig) -> torch.Tensor:
    """Upsampler loss of generating the residual ``(truth - bilinear) / cfg.residual_scale``
    ``[B, F, 3, H, W]`` of a batch of videos given their low-resolution version (:func:`low_res_input`)."""
    device = next(model.parameters()).device
    truth = batch.x0.to(device)
    b, f = truth.shape[:2]
    bilinear = low_res_input(truth, cfg.scale)
    x0 = (truth - bilinear) / cfg.residual_scale
    zeros = torch.zeros(b, f, device=device)

    def velocity(x_sigma, sigma):
        return model(x_sigma, sigma, batch.context.to(device), mask=zeros, extra=bilinear)

    return flow_objective(x0, zeros, cfg.optim, gen, velocity)


def grid_loss(model: nn.Module, batch: GridBatch, gen: torch.Generator, optim: OptimConfig) -> torch.Tensor:
    """4D-model loss of a batch of grids ``x0 [B, V, T, 3, H, W]`` over the cells to generate
    (given cells, ``cond_mask [B, V, T]`` = 1, excluded); noise comes from ``gen`` on its own device."""
    device = next(model.parameters()).device
    x0 = batch.x0.to(device)
    mask = batch.cond_mask.to(device)

    def velocity(x_sigma, sigma):
        return model(x_sigma, sigma, cond=x0, mask=mask)

    return flow_objective(x0, mask, optim, gen, velocity)
