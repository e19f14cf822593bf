"""Ingest ordinary videos into fixed-size clips: resample fps, center-crop to the target
aspect ratio, resize, and cut into clips of ``clip_frames`` frames.

Unreadable files are skipped with a warning that names them, never fatal on their own;
:func:`ingest_directory` reports what was skipped so the stage can count it. Whole videos
named in ``test_videos`` are held out: their clips are reported apart from the training
clips, so no clip of a held-out video reaches training.
"""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fourreal.formats.preview import PreviewConfig
from fourreal.running.config import ConfigError, require
from fourreal.running.errors import UserError

log = logging.getLogger(__name__)


class VideoReadError(UserError, RuntimeError):
    """A video file cannot be decoded into enough frames."""


def _undecodable(path: Path, exc: Exception) -> VideoReadError:
    """The error for a file the decoder (PyAV) rejects with ``exc``: named, with the fix."""
    return VideoReadError(f"{path}: not a video that can be decoded ({exc}); pass a video file, or re-encode it, "
                          "e.g. ffmpeg -i in -c:v libx264 out.mp4")


@dataclass
class VideosConfig:
    """Parameters of the ``videos`` stage.

    Attributes:
        input_dir: directory searched (not recursively) for video files.
        extensions: file suffixes treated as videos (case-insensitive).
        exclude: glob patterns of file names to leave out.
        fps: frames per second of the output clips (source frames are picked by timestamp).
        height, width: output frame size; sources are center-cropped to this aspect first.
        clip_frames: frames per clip.
        clip_stride: frames between the starts of consecutive clips of one video.
        cut_threshold: a shot cut is declared where the mean absolute difference of two
            consecutive output frames exceeds this (0-255 scale); clips never span a cut.
        max_clips_per_video: cap per source video (evenly spread over the video), 0 = no cap.
        min_clips: the stage fails when fewer usable training clips than this come out.
        test_videos: file names (``bikes.mp4``) of videos of ``input_dir`` held out whole:
            their clips go to the test clips, never to the training clips. Each must be one of
            the videos found (after ``exclude``).
        preview: a contact sheet of the first ``preview.max_items`` clips.
    """

    input_dir: str
    extensions: list[str] = field(
        default_factory=lambda: [".avi", ".mp4", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ogv"])
    exclude: list[str] = field(default_factory=lambda: ["Megamind_bugy.avi"])
    fps: float = 8.0
    height: int = 36
    width: int = 64
    clip_frames: int = 8
    clip_stride: int = 8
    cut_threshold: float = 25.0
    max_clips_per_video: int = 6
    min_clips: int = 1
    test_videos: list[str] = field(default_factory=list)
    preview: PreviewConfig = field(default_factory=lambda: PreviewConfig(max_items=12, cell_height=72, mp4=False, html=False))

    def __post_init__(self) -> None:
        require(0 < self.fps <= 120, "fps", "must be in (0, 120]")
        for name in ("height", "width"):
            require(getattr(self, name) >= 8 and getattr(self, name) % 2 == 0, name, "must be even and >= 8")
        require(self.clip_frames >= 2, "clip_frames", "must be >= 2")
        require(self.clip_stride >= 1, "clip_stride", "must be >= 1")
        require(self.cut_threshold > 0, "cut_threshold", "must be > 0")
        require(self.max_clips_per_video >= 0, "max_clips_per_video", "must be >= 0")
        require(self.min_clips >= 1, "min_clips", "must be >= 1")
        require(all(e.startswith(".") for e in self.extensions), "extensions", "each must start with '.'")
        require(all(n and Path(n).name == n for n in self.test_videos), "test_videos",
                "each must be a file name in videos.input_dir (no directory), e.g. bikes.mp4")
        require(len(set(self.test_videos)) == len(self.test_videos), "test_videos", "must not name a video twice")


def center_crop_resize(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """Center-crop ``[H, W, 3]`` to the aspect ratio ``width / height`` and resize to
    ``[height, width, 3]`` (area interpolation when shrinking)."""
    h, w = frame.shape[:2]
    target = width / height
    if w / h > target:
        cw, ch = max(1, round(h * target)), h
    else:
        cw, ch = w, max(1, round(w / target))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    crop = frame[y0 : y0 + ch, x0 : x0 + cw]
    interp = cv2.INTER_AREA if ch >= height else cv2.INTER_LINEAR
    return cv2.resize(crop, (width, height), interpolation=interp)


def read_video(path: str | Path, fps: float, height: int, width: int) -> np.ndarray:
    """Decode ``path`` and resample it to ``fps``: returns ``[N, height, width, 3]`` uint8.

    Frames are picked by presentation time (the latest frame at or before each output
    time), so any source frame rate works. Raises :class:`VideoReadError` naming the file.
    """
    import av  # decoding only: the rest of this module works without PyAV

    path = Path(path)
    out: list[np.ndarray] = []
    step, eps = 1.0 / fps, 1e-6
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path}: has no video stream")
            prev: np.ndarray | None = None
            prev_time = next_time = 0.0
            for index, frame in enumerate(container.decode(container.streams.video[0])):
                time = frame.time if frame.time is not None else index / fps
                if prev is None:
                    next_time = time
                while prev is not None and next_time < time - eps:
                    out.append(prev)
                    next_time += step
                prev, prev_time = center_crop_resize(frame.to_ndarray(format="rgb24"), height, width), time
            if prev is not None and next_time <= prev_time + eps:
                out.append(prev)
    except av.error.FFmpegError as exc:
        raise _undecodable(path, exc) from None
    if not out:
        raise VideoReadError(f"{path}: no decodable frames")
    return np.stack(out)


def shot_boundaries(frames: np.ndarray, threshold: float) -> list[int]:
    """Indices ``i`` where a new shot starts at frame ``i`` of ``[N, H, W, 3]``: the mean
    absolute difference between frames ``i - 1`` and ``i`` exceeds ``threshold``."""
    diff = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
    return [int(i) + 1 for i in np.flatnonzero(diff > threshold)]


def split_clips(frames: np.ndarray, clip_frames: int, stride: int, max_clips: int,
                cut_threshold: float = float("inf")) -> list[tuple[int, np.ndarray]]:
    """Cut ``[N, H, W, 3]`` into clips ``(start, [clip_frames, H, W, 3])`` that never span
    a shot cut (see :func:`shot_boundaries`).

    Within each shot, starts are ``0, stride, 2*stride, ...``; with ``max_clips > 0`` that
    many clips are kept, spread evenly over the video so that a cap does not keep only its
    beginning.
    """
    bounds = [0, *shot_boundaries(frames, cut_threshold), len(frames)] if len(frames) > 1 else [0, len(frames)]
    starts = [s for a, b in zip(bounds[:-1], bounds[1:]) for s in range(a, b - clip_frames + 1, stride)]
    if max_clips and len(starts) > max_clips:
        keep = np.linspace(0, len(starts) - 1, max_clips).round().astype(int)
        starts = [starts[i] for i in keep]
    return [(s, frames[s : s + clip_frames]) for s in starts]


@dataclass
class IngestReport:
    """What :func:`ingest_directory` found: the training clips, the clips of the held-out
    ``test_videos``, and the files it skipped (with why). ``videos_used`` names every video
    that gave clips, ``test_videos_used`` those of them that are held out."""

    clips: list[tuple[str, int, np.ndarray]] = field(default_factory=list)
    test_clips: list[tuple[str, int, np.ndarray]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    videos_used: list[str] = field(default_factory=list)
    test_videos_used: list[str] = field(default_factory=list)


@dataclass
class VideoInfo:
    """What :func:`probe_video` measured by decoding every frame of a file."""

    frames: int
    fps: float
    width: int
    height: int
    duration_s: float
    codec: str


def find_videos(cfg: VideosConfig) -> list[Path]:
    """Video files in ``cfg.input_dir`` with one of ``cfg.extensions``, sorted by name."""
    root = Path(cfg.input_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"videos.input_dir: {root} is not a directory; set videos.input_dir in params.yaml")
    exts = {e.lower() for e in cfg.extensions}
    return sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in exts
                  and not any(fnmatch.fnmatch(p.name, pattern) for pattern in cfg.exclude))


def check_test_videos(cfg: VideosConfig, paths: list[Path]) -> None:
    """Raise :class:`ConfigError` (one line: the key, the name, the fix) unless every name of
    ``cfg.test_videos`` is among the videos found, ``paths``."""
    names = [p.name for p in paths]
    missing = [n for n in cfg.test_videos if n not in names]
    if missing:
        shown = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
        raise ConfigError(
            f"videos.test_videos: {missing[0]!r} is not among the videos found in {cfg.input_dir} "
            f"(after videos.exclude): {shown or 'none'}; name one of those files or remove it from videos.test_videos")


def ingest_directory(cfg: VideosConfig) -> IngestReport:
    """Read every video of ``cfg.input_dir`` and cut it into clips.

    Returns an :class:`IngestReport` whose ``clips`` (training) and ``test_clips`` (the
    videos of ``cfg.test_videos``) are ``(video_stem, start, frames)``; unreadable or
    too-short videos land in ``skipped`` with the reason (also logged). A name of
    ``cfg.test_videos`` that is not a video found raises :class:`ConfigError` before any
    video is decoded.
    """
    report = IngestReport()
    paths = find_videos(cfg)
    check_test_videos(cfg, paths)
    held_out = set(cfg.test_videos)
    for path in paths:
        try:
            frames = read_video(path, cfg.fps, cfg.height, cfg.width)
        except VideoReadError as exc:
            log.warning("skipping video: %s", exc)
            report.skipped[path.name] = str(exc)
            continue
        clips = split_clips(frames, cfg.clip_frames, cfg.clip_stride, cfg.max_clips_per_video, cfg.cut_threshold)
        if not clips:
            reason = f"{path}: only {len(frames)} frames at {cfg.fps} fps, a clip needs {cfg.clip_frames}"
            log.warning("skipping video: %s", reason)
            report.skipped[path.name] = reason
            continue
        report.videos_used.append(path.name)
        if path.name in held_out:
            report.test_videos_used.append(path.name)
            report.test_clips.extend((path.stem, start, clip) for start, clip in clips)
        else:
            report.clips.extend((path.stem, start, clip) for start, clip in clips)
    return report


def probe_video(path: str | Path) -> VideoInfo:
    """Decode every frame of ``path`` with the decoder :func:`read_video` uses (PyAV) and
    measure it: frame count, frame rate, size, duration (to the end of the last frame),
    codec. Raises :class:`VideoReadError` naming the file when it cannot be decoded or has
    no frames. No pixel conversion of every frame, so it is ~2x faster than reading."""
    import av

    path = Path(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = float(stream.average_rate or stream.guessed_rate or 0)
            frames, first_time, last_time = 0, None, None
            for frame in container.decode(stream):
                if frames == 0:
                    frame.to_ndarray(format="rgb24")  # the conversion read_video relies on
                    first_time = frame.time
                frames += 1
                last_time = frame.time
            codec = stream.codec_context.name
            width, height = stream.codec_context.width, stream.codec_context.height
    except av.error.FFmpegError as exc:
        raise _undecodable(path, exc) from None
    if frames == 0:
        raise VideoReadError(f"{path}: no decodable frames")
    span = (last_time - first_time) if frames > 1 and last_time is not None and first_time is not None else 0.0
    if not rate and span > 0:
        rate = (frames - 1) / span  # no rate in the header (e.g. Ogg): from the timestamps
    duration = span + (1.0 / rate if rate else 0.0) if span > 0 else (frames / rate if rate else 0.0)
    return VideoInfo(frames=frames, fps=round(rate, 3), width=width, height=height,
                     duration_s=round(duration, 3), codec=codec)
