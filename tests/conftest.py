"""Shared fixtures: small synthetic videos written with PyAV, and the repository root."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def moving_square_frames(n: int, height: int = 48, width: int = 80, seed: int = 0) -> np.ndarray:
    """``[n, height, width, 3]`` uint8: a textured background with a square moving right."""
    rng = np.random.default_rng(seed)
    background = rng.integers(40, 200, size=(height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    background = background.repeat(8, 0).repeat(8, 1)[:height, :width]
    frames = np.repeat(background[None], n, axis=0).copy()
    for i in range(n):
        x = (2 * i) % (width - 12)
        frames[i, 10:22, x : x + 12] = (255, 40, 40)
    return frames


def write_video(path: Path, frames: np.ndarray, fps: int = 24, codec: str = "mpeg4") -> Path:
    """Encode ``[N, H, W, 3]`` uint8 frames to ``path`` (container chosen by suffix)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture
def video_dir(tmp_path: Path) -> Path:
    """A directory with two readable videos (48 frames at 24 fps, 2 s) and one corrupt file."""
    d = tmp_path / "videos"
    d.mkdir()
    write_video(d / "a.mp4", moving_square_frames(48, seed=1))
    write_video(d / "b.avi", moving_square_frames(48, seed=2))
    good = (d / "a.mp4").read_bytes()
    (d / "broken.mp4").write_bytes(good[:200] + bytes(range(256)) * 4)
    (d / "notes.txt").write_text("not a video")
    return d
