"""The base video model (paper Sec. 3.1): what it is trained on, its loss, its held-out
evaluation and its sampling of dynamic and freeze-time videos."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from fourreal.config import require
from fourreal.data import VideoBatch, VideoSet
from fourreal.dit import CONTEXTS, NULL_CONTEXT, PRESETS, DiT, DiTConfig
from fourreal.flow_matching import flow_loss, interpolate, training_noise, velocity_target
from fourreal.flow_solver import guided, sample
from fourreal.train import OptimConfig, Phase

log = logging.getLogger(__name__)


# Every video source of the pipeline: real-video clips, pseudo-4D grids, rendered clips.
VIDEO_SOURCES = ("data/videos/clips", "data/pseudo4d/grids", "data/render/clips")


@dataclass
class TrainBaseConfig:
    """Parameters of the ``train_base`` stage.

    Attributes:
        preset: model size, one of ``tiny``, ``small``, ``paper`` (see :data:`fourreal.dit.PRESETS`).
        sources: clip directories (``*.clip.npz``) and grid directories (``*.grid.npz``; rows
            are used as dynamic videos, columns as freeze-time videos).
        freeze_time_share: share of freeze-time videos in a batch.
        holdout_fraction: share of videos kept out of training for the held-out loss.
        eval_batches, eval_batch_size: size of the held-out evaluation.
        sample_steps, sampler, guidance: previews: ODE steps, ``euler``/``heun``, CFG scale.
        optim: optimizer and schedule.
    """

    preset: str = "tiny"
    sources: list[str] = field(default_factory=lambda: list(VIDEO_SOURCES))
    freeze_time_share: float = 0.5
    holdout_fraction: float = 0.1
    eval_batches: int = 4
    eval_batch_size: int = 4
    sample_steps: int = 20
    sampler: Literal["euler", "heun"] = "euler"
    guidance: float = 1.0
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        phases=[Phase(150, 20, 32, 8, 8), Phase(100, 36, 64, 8, 4)], lr=1e-3, ema_decay=0.98))

    def __post_init__(self) -> None:
        require(self.preset in PRESETS, "preset", f"must be one of {sorted(PRESETS)}")
        require(0 <= self.freeze_time_share <= 1, "freeze_time_share", "must be in [0, 1]")
        require(0 <= self.holdout_fraction < 1, "holdout_fraction", "must be in [0, 1)")

    def model_config(self) -> DiTConfig:
        return PRESETS[self.preset]


def load_videos(sources: list[str]) -> VideoSet:
    """All videos of the given clip or grid directories."""
    videos = VideoSet()
    for src in sources:
        d = Path(src)
        if not d.is_dir():
            raise FileNotFoundError(f"train_base.sources: {d} is not a directory; run its stage first or remove it")
        if not videos.add_clips(d) + videos.add_grids(d):
            raise FileNotFoundError(f"train_base.sources: {d} holds no .clip.npz or .grid.npz files")
    return videos


@dataclass
class VideoData:
    """Training videos, the held-out ones, and fixed evaluation batches drawn from the latter."""

    train: VideoSet
    held: VideoSet
    eval_batches: list[VideoBatch]


def prepare_video_data(sources: list[str], holdout_fraction: float, optim: OptimConfig, eval_batches: int,
                       eval_batch_size: int, freeze_time_share: float = 0.5, native_only: bool = False) -> VideoData:
    """Load the sources, hold out a seeded share, and draw fixed evaluation batches at the
    last phase's size (from the training videos if nothing is held out). With
    ``native_only``, videos stored below the largest phase size are left out."""
    videos = load_videos(sources)
    if native_only:
        height, width = max(p.height for p in optim.phases), max(p.width for p in optim.phases)
        dropped = videos.drop_smaller(height, width)
        if not sum(videos.counts().values()):
            raise ValueError(f"no source video is at least {height}x{width}: {sources} hold only smaller ones; "
                             "raise videos.height/width (and rerun the videos stage) or lower the phase sizes")
        if dropped:
            log.warning("left out %d videos smaller than %dx%d", dropped, height, width)
    held = videos.split_holdout(holdout_fraction, optim.seed)
    last = optim.phases[-1]
    rng = np.random.default_rng(optim.seed + 99)
    evalset = held if sum(held.counts().values()) else videos
    batches = [evalset.batch(eval_batch_size, last.frames, last.height, last.width, rng, freeze_time_share)
               for _ in range(eval_batches)]
    return VideoData(videos, held, batches)


def video_loss(model: nn.Module, batch: VideoBatch, gen: torch.Generator, optim: OptimConfig,
               device: torch.device | None = None) -> torch.Tensor:
    """Rectified-flow velocity loss of one batch, conditioning frames excluded; the mode is
    replaced by the null context with probability ``optim.context_dropout``. Noise comes
    from ``gen`` on its own device (a GPU generator draws it where the model trains)."""
    device = device or next(model.parameters()).device
    x0 = batch.x0.to(device)
    b = x0.shape[0]
    sigma, noise = training_noise(x0, optim, gen)
    drop = (torch.rand(b, generator=gen, device=gen.device) < optim.context_dropout).to(device)
    context = batch.context.to(device)
    context = torch.where(drop, torch.full_like(context, NULL_CONTEXT), context)
    mask = batch.cond_mask.to(device)
    pred = model(interpolate(x0, noise, sigma), sigma, context, cond=x0, mask=mask)
    return flow_loss(pred, velocity_target(x0, noise), mask)


@torch.no_grad()
def heldout_loss(model: nn.Module, batches: list[VideoBatch], seed: int = 1234) -> float:
    """Mean velocity loss on fixed batches with fixed noise (no context dropout): comparable
    across models and checkpoints."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    losses = [video_loss(model, b, gen, OptimConfig(context_dropout=0.0, sigma_schedule="uniform")).item() for b in batches]
    model.train()
    return float(np.mean(losses))


@torch.no_grad()
def sample_from_first_frame(model: DiT, first: torch.Tensor, frames: int, mode: str, steps: int = 20,
                            method: str = "euler", guidance: float = 1.0, seed: int = 0) -> torch.Tensor:
    """Generate ``[B, frames, 3, H, W]`` videos in ``mode`` whose first frame is ``first [B, 3, H, W]``."""
    return sample_with_context(model, first[:, None], frames, mode, steps, method, guidance, seed)


@torch.no_grad()
def sample_with_context(model: DiT, context: torch.Tensor, frames: int, mode: str, steps: int = 20,
                        method: str = "euler", guidance: float = 1.0, seed: int = 0) -> torch.Tensor:
    """Generate ``[B, frames, 3, H, W]`` videos in ``mode`` (``dynamic`` or ``freeze_time``)
    whose first ``K`` frames are the given ``context [B, K, 3, H, W]`` (K < frames)."""
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
    return sample(velocity, (b, frames, 3, h, w), steps, method, cond, mask, seed=seed, device=device, progress=False)


@torch.no_grad()
def extend_autoregressively(model: DiT, first: torch.Tensor, frames: int, chunk: int, overlap: int, mode: str,
                            steps: int = 20, method: str = "euler", guidance: float = 1.0, seed: int = 0) -> torch.Tensor:
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
        new = sample_with_context(model, context, length, mode, steps, method, guidance, seed + index)
        video = torch.cat([video, new[:, context.shape[1]:]], dim=1)
        index += 1
    return video


def load_model(directory: str | Path) -> DiT:
    """A trained model from ``directory`` (``config.json`` + ``model-NN.safetensors``, as the
    training stages export it); clear errors for a missing or mismatched model."""
    import json

    from fourreal.checkpoint import CheckpointError, load_tensors, load_weights

    directory = Path(directory)
    config = directory / "config.json"
    if not config.is_file():
        raise CheckpointError(f"{config}: missing; train the model first (dvc repro train_base) or pass its directory")
    dit = DiTConfig(**json.loads(config.read_text())["dit"])
    model = DiT(dit)
    load_weights(model, load_tensors(directory, "model"), str(directory))
    return model.eval()


def training_frames(directory: str | Path) -> int | None:
    """The video length (frames) the base model exported in ``directory`` was trained on (its
    last phase), or None for a model exported before it was recorded."""
    import json

    from fourreal.checkpoint import CheckpointError

    config = Path(directory) / "config.json"
    if not config.is_file():
        raise CheckpointError(f"{config}: missing; train the model first (dvc repro train_base) or pass its directory")
    frames = json.loads(config.read_text()).get("training_frames")
    return None if frames is None else int(frames)
