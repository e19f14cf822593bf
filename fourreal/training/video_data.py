"""The videos a video-model training stage (``train_base``, ``train_upsampler``) trains and
is evaluated on: every source loaded (:func:`load_videos`), a seeded share held out, and
fixed evaluation batches drawn from it (:func:`prepare_video_data`, :class:`VideoData`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fourreal.running.config import ConfigError
from fourreal.training.data import VideoBatch, VideoSet
from fourreal.training.optim import OptimConfig

log = logging.getLogger(__name__)


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
            raise ConfigError(f"no source video is at least {height}x{width}: {sources} hold only smaller ones; "
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
