"""The video -> 4D path: input validation, autoregressive freeze-time extension, cameras."""

import numpy as np
import pytest
import torch

from fourreal.data_making.videos import VideoReadError
from fourreal.reconstruction.geometry import pinhole
from fourreal.running.config import ConfigError
from fourreal.sampling.video_to_4d import VideoTo4DConfig, fill_background_depth, read_input


def test_input_validation_names_the_file_and_the_fix(tmp_path):
    from fourreal.formats.preview import write_mp4

    cfg = VideoTo4DConfig(times=6, height=20, width=32)
    with pytest.raises(FileNotFoundError, match="missing.mp4.*video_to_4d.input"):
        read_input(tmp_path / "missing.mp4", cfg)
    short = tmp_path / "short.mp4"
    write_mp4(short, np.zeros((3, 32, 48, 3), np.uint8), fps=8)
    with pytest.raises(VideoReadError, match="short.mp4: 3 frames.*6 needed.*video_to_4d.times"):
        read_input(short, cfg)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(VideoReadError, match="corrupt.mp4"):
        read_input(corrupt, cfg)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"no image")
    with pytest.raises(VideoReadError, match="broken.png.*PNG or JPEG"):
        read_input(broken, cfg)
    fade = tmp_path / "fade.mp4"
    write_mp4(fade, np.zeros((12, 48, 64, 3), np.uint8), fps=8)
    with pytest.raises(VideoReadError, match="fade.mp4: the first frame is blank.*trim the start"):
        read_input(fade, cfg)
    good = tmp_path / "clip.mp4"
    write_mp4(good, np.random.default_rng(0).integers(0, 255, (12, 48, 64, 3), dtype=np.uint8), fps=8)
    frames, is_image = read_input(good, cfg)
    assert frames.shape == (6, 20, 32, 3) and not is_image


def test_image_and_frame_directory_inputs(tmp_path):
    import cv2

    path = tmp_path / "still.png"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(path), rng.integers(0, 255, (60, 90, 3), dtype=np.uint8))
    frames, is_image = read_input(path, VideoTo4DConfig(height=20, width=32))
    assert is_image and frames.shape == (1, 20, 32, 3) and frames.dtype == np.uint8
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in range(7):
        cv2.imwrite(str(folder / f"{k:03d}.png"), (rng.integers(0, 40, (60, 90, 3)) + 30 * k).astype(np.uint8))
    frames, is_image = read_input(folder, VideoTo4DConfig(times=6, height=20, width=32))
    assert not is_image and frames.shape == (6, 20, 32, 3) and frames[0].mean() < frames[5].mean()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VideoReadError, match="empty: a directory without image files"):
        read_input(empty, VideoTo4DConfig())


@pytest.mark.parametrize("bad, key", [({"window": 1}, "window"), ({"overlap": 6, "chunk": 6}, "overlap"),
                                      ({"height": 18}, "height"), ({"fov_deg": 190.0}, "fov_deg")])
def test_config_rejects_out_of_range_values(bad, key):
    with pytest.raises(ConfigError, match=key):
        VideoTo4DConfig(**bad)


def test_autoregressive_extension_keeps_the_first_frame_and_the_length():
    from fourreal.models.dit import DiT, DiTConfig
    from fourreal.sampling.video_sampling import extend_autoregressively

    torch.manual_seed(0)
    model = DiT(DiTConfig(patch=4, dim=24, depth=1, heads=2)).eval()
    first = torch.rand(1, 3, 8, 8) * 2 - 1
    for frames, chunk, overlap in ((10, 6, 2), (6, 6, 3), (4, 3, 1)):
        video = extend_autoregressively(model, first, frames, chunk, overlap, "freeze_time", steps=2)
        assert video.shape == (1, frames, 3, 8, 8)
        assert torch.equal(video[0, 0], first[0])
    with pytest.raises(ValueError, match="overlap"):
        extend_autoregressively(model, first, 8, 4, 4, "freeze_time")


def test_pinhole_and_background_depth():
    K = pinhole(90.0, 20, 32)
    assert K[0, 0] == pytest.approx(16.0) and K[0, 2] == 16 and K[1, 2] == 10
    depth = np.array([[0.0, 2.0], [4.0, 0.0]])
    filled = fill_background_depth(depth, 1.5)
    assert filled[0, 0] == pytest.approx(4.5) and filled[1, 0] == 4.0
    assert np.all(fill_background_depth(np.zeros((2, 2)), 2.0) == 2.0)
