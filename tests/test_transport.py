"""Grids and clips packed small for travel and unpacked back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fourreal.evaluation.metrics import psnr
from fourreal.formats.clip import Clip, ClipFormatError, load_clip, save_clip
from fourreal.formats.grid import Grid, GridFormatError, load_grid, save_grid
from fourreal.formats.transport import INDEX, pack, unpack
from fourreal.running.cli import main
from fourreal.training.data import to_unit


def smooth_grid(seed: int, v: int = 3, t: int = 4, h: int = 24, w: int = 32) -> Grid:
    """A grid of smooth moving gradients with depth and cameras, like a render."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    cells = [[np.stack([np.sin(3 * xx + 0.3 * i + c + rng.random()) for c in range(3)], -1) for i in range(t)]
             for _ in range(v)]
    rgb = ((np.array(cells) * 0.5 + 0.5) * 255).astype(np.uint8)
    depth = np.where(xx > 0.5, 2.0 + yy, 0.0).astype(np.float32)[None, None].repeat(v, 0).repeat(t, 1)
    K = np.array([[30.0, 0, w / 2], [0, 30.0, h / 2], [0, 0, 1]], np.float32)[None].repeat(v, 0)
    return Grid(rgb=rgb, depth=depth, intrinsics=K, meta={"source": f"unit{seed}", "seed": seed, "fps": 8.0})


def test_pack_and_unpack_round_trip(tmp_path):
    for i in range(2):
        save_grid(tmp_path / "grids" / f"g{i}.grid.npz", smooth_grid(i))
    sizes = pack(tmp_path / "grids", tmp_path / "packed", crf=12, depth=True)
    assert sizes["kind"] == "grids" and sizes["packed_bytes"] > 0 and json.loads((tmp_path / "packed" / INDEX).read_text())["grids"].keys() == {"g0", "g1"}
    paths = unpack(tmp_path / "packed", tmp_path / "back")
    assert [p.name for p in paths] == ["g0.grid.npz", "g1.grid.npz"]
    for i, path in enumerate(paths):
        before, after = smooth_grid(i), load_grid(path)
        assert after.rgb.shape == before.rgb.shape
        assert psnr(to_unit(after.rgb), to_unit(before.rgb)) > 38  # H.264 at crf 12, 4:4:4
        np.testing.assert_array_equal(after.intrinsics, before.intrinsics)
        np.testing.assert_allclose(after.depth, before.depth, rtol=1e-3)  # float16
        assert after.meta["source"] == f"unit{i}" and after.meta["transport"].startswith("h264")


def test_without_depth_and_errors(tmp_path, capsys):
    save_grid(tmp_path / "grids" / "g.grid.npz", smooth_grid(0))
    assert main(["pack", str(tmp_path / "grids"), str(tmp_path / "packed")]) == 0
    assert "packed" in capsys.readouterr().out
    assert main(["unpack", str(tmp_path / "packed"), str(tmp_path / "back")]) == 0
    assert load_grid(tmp_path / "back" / "g.grid.npz").depth is None  # depth travels only when asked for
    with pytest.raises(FileNotFoundError, match="no .grid.npz or .clip.npz files to pack"):
        pack(tmp_path / "nothing", tmp_path / "p2")
    with pytest.raises(FileNotFoundError, match="written by `fourreal pack`"):
        unpack(tmp_path / "grids", tmp_path / "b2")
    (tmp_path / "packed" / "g.mp4").write_bytes(b"not a video")
    with pytest.raises(GridFormatError, match="0 frames decoded, 12 expected"):
        unpack(tmp_path / "packed", tmp_path / "b3")
    assert not (tmp_path / "b3").exists()  # nothing half-written


def test_clips_round_trip_with_their_mode_and_meta(tmp_path, capsys):
    for i, mode in enumerate(("dynamic", "freeze_time")):
        rgb = smooth_grid(i, v=1, t=6, h=18, w=32).rgb[0]
        save_clip(tmp_path / "clips" / f"c{i}.clip.npz", Clip(rgb, mode, {"source": f"v{i}.mp4", "fps": 8.0}))
    assert main(["pack", str(tmp_path / "clips"), str(tmp_path / "packed")]) == 0
    assert "packed the clips" in capsys.readouterr().out
    paths = unpack(tmp_path / "packed", tmp_path / "back")
    assert [p.name for p in paths] == ["c0.clip.npz", "c1.clip.npz"]
    for i, (path, mode) in enumerate(zip(paths, ("dynamic", "freeze_time"))):
        clip = load_clip(path)
        assert clip.mode == mode and clip.rgb.shape == (6, 18, 32, 3) and clip.meta["source"] == f"v{i}.mp4"
        assert psnr(to_unit(clip.rgb), to_unit(smooth_grid(i, v=1, t=6, h=18, w=32).rgb[0])) > 38
        assert clip.meta["transport"].startswith("h264")
    (tmp_path / "packed" / "c1.mp4").write_bytes(b"")
    with pytest.raises(ClipFormatError, match="c1.mp4: 0 frames decoded, 6 expected"):
        unpack(tmp_path / "packed", tmp_path / "b2")
    assert not (tmp_path / "b2").exists()
