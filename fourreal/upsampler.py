"""The diffusion upsampler (paper Sec. 4.1: from 72x128 to 288x512): a video DiT at the
output resolution whose extra input channels hold the low-resolution video, resized up
(bilinear). It generates the residual between the truth and that bilinear video, divided
by ``residual_scale`` to bring it near unit variance, with the same rectified-flow loss on
the same videos (each downscaled by ``scale`` to make its input); applied row by row to grids."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from fourreal.config import require
from fourreal.data import VideoBatch, resize_video
from fourreal.dit import CONTEXTS, PRESETS, DiT, DiTConfig
from fourreal.flow_matching import flow_loss, interpolate, training_noise, velocity_target
from fourreal.flow_solver import sample
from fourreal.train import OptimConfig, Phase
from fourreal.video_model import VIDEO_SOURCES


@dataclass
class TrainUpsamplerConfig:
    """Parameters of the ``train_upsampler`` stage.

    Attributes:
        preset: model size (see :data:`fourreal.dit.PRESETS`).
        scale: upsampling factor (paper: 4; each phase's size is the output size).
        sources: the video sources, as for the base model.
        holdout_fraction, eval_batches, eval_batch_size: held-out evaluation.
        sample_steps: ODE steps when upsampling.
        residual_scale: the generated residual is ``(truth - bilinear) / residual_scale``.
        optim: optimizer and schedule (phase sizes are output sizes).
    """

    preset: str = "tiny"
    scale: int = 2
    sources: list[str] = field(default_factory=lambda: list(VIDEO_SOURCES))
    holdout_fraction: float = 0.1
    eval_batches: int = 2
    eval_batch_size: int = 4
    sample_steps: int = 10
    residual_scale: float = 0.1
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        phases=[Phase(300, 36, 64, 2, 8)], lr=1e-3, ema_decay=0.98, context_dropout=0.0))

    def __post_init__(self) -> None:
        require(self.preset in PRESETS, "preset", f"must be one of {sorted(PRESETS)}")
        require(self.scale in (2, 4), "scale", "must be 2 or 4")
        require(self.residual_scale > 0, "residual_scale", "must be > 0")
        for i, p in enumerate(self.optim.phases):
            require(p.height % self.scale == 0 and p.width % self.scale == 0, "optim.phases",
                    f"phase {i}: {p.height}x{p.width} must be divisible by scale = {self.scale}")

    def model_config(self) -> DiTConfig:
        return replace(PRESETS[self.preset], extra_channels=3)


def low_res_input(video: torch.Tensor, scale: int) -> torch.Tensor:
    """The upsampler's conditioning for ``video [B, F, 3, H, W]``: downscaled by ``scale``
    (area), then resized back to ``H x W`` (bilinear): what it sees at inference."""
    b, f, c, h, w = video.shape
    return resize_video(resize_video(video, h // scale, w // scale), h, w)


def upsampler_loss(model: nn.Module, batch: VideoBatch, gen: torch.Generator, cfg: TrainUpsamplerConfig) -> torch.Tensor:
    """Rectified-flow loss of generating the high-resolution residual given the low-resolution video."""
    device = next(model.parameters()).device
    truth = batch.x0.to(device)
    b, f = truth.shape[:2]
    optim = cfg.optim
    bilinear = low_res_input(truth, cfg.scale)
    x0 = (truth - bilinear) / cfg.residual_scale
    sigma, noise = training_noise(x0, optim, gen)
    zeros = torch.zeros(b, f, device=device)
    pred = model(interpolate(x0, noise, sigma), sigma, batch.context.to(device), mask=zeros, extra=bilinear)
    return flow_loss(pred, velocity_target(x0, noise), zeros)


@torch.no_grad()
def upsample(model: DiT, low: torch.Tensor, cfg: TrainUpsamplerConfig, context: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Upsample ``low [B, F, 3, h, w]`` (in [-1, 1]) to ``[B, F, 3, h * scale, w * scale]``."""
    b, f, c, h, w = low.shape
    device = next(model.parameters()).device
    bilinear = resize_video(low.to(device), h * cfg.scale, w * cfg.scale)
    context = context.to(device)
    zeros = torch.zeros(b, f, device=device)

    def velocity(x, s):
        return model(x, s, context, mask=zeros, extra=bilinear)

    residual = sample(velocity, bilinear.shape, cfg.sample_steps, "euler", seed=seed, device=device, progress=False)
    return bilinear + cfg.residual_scale * residual



@torch.no_grad()
def upsample_grid(model: DiT, grid: torch.Tensor, cfg: TrainUpsamplerConfig, chunk: int = 2, seed: int = 0) -> torch.Tensor:
    """Upsample every cell of a grid ``[V, T, 3, h, w]`` to ``[V, T, 3, h * scale, w * scale]``,
    row by row as dynamic videos, ``chunk`` frames at a time (the upsampler's training length)."""
    v, t = grid.shape[:2]
    rows = []
    for i in range(v):
        parts = [upsample(model, grid[i, j:j + chunk][None], cfg, torch.tensor([CONTEXTS["dynamic"]]), seed=seed + i * t + j)[0]
                 for j in range(0, t, chunk)]
        rows.append(torch.cat(parts).cpu())
    return torch.stack(rows)


def load_upsampler(directory: str) -> tuple[DiT, TrainUpsamplerConfig]:
    """A trained upsampler from ``directory`` (as ``train_upsampler`` exports it) with the
    settings it was trained with (scale, residual scale, sampling steps)."""
    from fourreal.video_model import load_model

    config = Path(directory) / "config.json"
    saved = json.loads(config.read_text()) if config.is_file() else {}
    if config.is_file() and ("scale" not in saved or saved.get("dit", {}).get("extra_channels") != 3):
        raise ValueError(f"{directory}: not an upsampler (no scale or low-resolution input channels in config.json); "
                         "pass train_upsampler's model directory")
    model = load_model(directory)  # clear errors for a missing directory or weights
    cfg = TrainUpsamplerConfig(preset=saved["preset"], scale=saved["scale"], residual_scale=saved.get("residual_scale", 0.1),
                               sample_steps=saved.get("sample_steps", 10))
    return model, cfg
