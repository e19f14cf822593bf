"""Bad inputs the other test files do not already cover (docs/RELIABILITY.md lists them
all): each gets a clear error naming the file or value, or is handled."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

from conftest import write_video


def test_zero_length_and_streamless_videos_name_the_file(tmp_path):
    from fourreal.data_making.videos import VideoReadError, read_video

    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoReadError, match="empty.mp4"):
        read_video(empty, 8.0, 16, 16)
    import av

    audio = tmp_path / "audio_only.wav"  # a valid media file without a video stream
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(VideoReadError, match="audio_only.wav: has no video stream"):
        read_video(audio, 8.0, 16, 16)


def test_grayscale_and_extreme_aspect_videos_become_rgb_at_the_asked_size(tmp_path):
    from fourreal.data_making.videos import read_video

    rng = np.random.default_rng(0)
    gray = np.repeat(rng.integers(0, 255, (8, 32, 48, 1), dtype=np.uint8), 3, axis=3)
    path = write_video(tmp_path / "gray.mp4", gray, fps=8)
    frames = read_video(path, 8.0, 16, 24)
    assert frames.shape == (8, 16, 24, 3)
    assert np.abs(frames[..., 0].astype(int) - frames[..., 2]).max() < 12  # still gray, as RGB
    wide = write_video(tmp_path / "wide.mp4", rng.integers(0, 255, (4, 16, 320, 3), dtype=np.uint8), fps=8)
    assert read_video(wide, 8.0, 16, 24).shape == (4, 16, 24, 3)  # centre crop to the asked aspect


def test_image_with_alpha_is_read_as_rgb(tmp_path):
    import cv2

    from fourreal.sampling.video_to_4d import VideoTo4DConfig, read_input

    rgba = np.random.default_rng(0).integers(0, 255, (40, 60, 4), dtype=np.uint8)
    rgba[..., 3] = 0  # fully transparent
    cv2.imwrite(str(tmp_path / "alpha.png"), rgba)
    frames, is_image = read_input(tmp_path / "alpha.png", VideoTo4DConfig(height=20, width=32))
    assert is_image and frames.shape == (1, 20, 32, 3)


def glb(path, document: dict) -> None:
    """A binary glTF file holding only a JSON chunk."""
    chunk = json.dumps(document).encode()
    chunk += b" " * (-len(chunk) % 4)
    path.write_bytes(struct.pack("<4sII", b"glTF", 2, 12 + 8 + len(chunk)) + struct.pack("<I4s", len(chunk), b"JSON") + chunk)


def test_assets_without_mesh_and_with_non_ascii_names(tmp_path):
    import shutil

    from fourreal.data_making.assets import AssetsConfig, admit, prepare_assets
    from fourreal.data_making.gltf import AssetError

    cfg = AssetsConfig(sources=["local"], local_dirs=[str(tmp_path / "src")], test_fraction=0.0)
    (tmp_path / "src").mkdir()
    glb(tmp_path / "src" / "empty scene.glb", {"asset": {"version": "2.0"}, "scenes": [{"nodes": []}]})
    with pytest.raises(AssetError, match="empty scene.glb: has no mesh to render"):
        admit(tmp_path / "src" / "empty scene.glb", tmp_path, "x", "local", cfg)
    from conftest import REPO

    shutil.copy(REPO / "assets/glb/Fox.glb", tmp_path / "src" / "Füchsin – 狐.glb")
    entries, skipped = prepare_assets(cfg, tmp_path / "out")
    assert len(entries) == 1 and (tmp_path / "out" / entries[0].file).is_file()
    assert any("has no mesh" in why for why in skipped.values())


def test_nan_inputs_and_grids_smaller_than_the_window():
    from fourreal.sampling.grid_windows import GridInputError, sample_grid

    row, col = torch.zeros(3, 3, 8, 8), torch.zeros(2, 3, 8, 8)
    bad = row.clone()
    bad[1, 0, 0, 0] = float("nan")
    with pytest.raises(GridInputError, match="NaN or inf"):
        sample_grid(lambda *a: a[0], bad, col, (4, 4), progress=False)
    grid = sample_grid(lambda x, s, cond, mask: torch.zeros_like(x), row, col, (4, 4), steps=2, progress=False)
    assert grid.shape == (2, 3, 3, 8, 8)  # a 2x3 grid from a 4x4 model: one smaller window
