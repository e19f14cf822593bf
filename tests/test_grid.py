import os

import numpy as np
import pytest

from fourreal.formats.clip import Clip, ClipFormatError, load_clip, save_clip
from fourreal.formats.grid import Grid, GridFormatError, default_cond_mask, list_grids, load_grid, save_grid


def full_grid(v=3, t=4, h=6, w=10) -> Grid:
    rng = np.random.default_rng(0)
    c2w = np.tile(np.eye(4, dtype=np.float32), (v, t, 1, 1))
    c2w[..., 0, 3] = np.arange(v)[:, None]
    return Grid(
        rgb=rng.integers(0, 256, (v, t, h, w, 3), dtype=np.uint8),
        depth=rng.uniform(0.5, 3, (v, t, h, w)).astype(np.float32),
        intrinsics=np.tile(np.array([[8, 0, 5], [0, 8, 3], [0, 0, 1]], np.float32), (v, 1, 1)),
        cam_to_world=c2w,
        meta={"source": "unit", "seed": 7, "fps": 8},
    )


def test_round_trip_keeps_every_field(tmp_path):
    grid = full_grid()
    path = save_grid(tmp_path / "a.grid.npz", grid)
    back = load_grid(path)
    for name in ("rgb", "depth", "intrinsics", "cam_to_world", "cond_mask"):
        np.testing.assert_array_equal(getattr(back, name), getattr(grid, name))
    assert back.meta["seed"] == 7 and back.meta["format"] == "fourreal.grid/1"
    assert back.shape == (3, 4, 6, 10)
    np.testing.assert_array_equal(back.row(1), grid.rgb[1])
    np.testing.assert_array_equal(back.column(2), grid.rgb[:, 2])
    assert list_grids(tmp_path) == [path]


def test_rgb_only_grid_and_default_conditioning(tmp_path):
    grid = Grid(rgb=np.zeros((2, 3, 4, 4, 3), np.uint8))
    assert grid.cond_mask.tolist() == [[True, True, True], [True, False, False]]
    back = load_grid(save_grid(tmp_path / "b.grid.npz", grid))
    assert back.depth is None and back.cam_to_world is None
    assert default_cond_mask(3, 2).sum() == 4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rgb": np.zeros((2, 3, 4, 4), np.uint8)}, r"rgb must be \[V, T, H, W, 3\]"),
        ({"rgb": np.zeros((2, 3, 4, 4, 3), np.float32)}, "rgb must be uint8"),
        ({"depth": np.ones((2, 3, 4, 5), np.float32)}, "depth must have shape"),
        ({"depth": np.full((2, 3, 4, 4), np.nan, np.float32)}, "depth contains NaN"),
        ({"depth": -np.ones((2, 3, 4, 4), np.float32)}, "depth must be >= 0"),
        ({"cam_to_world": np.zeros((2, 4, 4), np.float32)}, "cam_to_world must have shape"),
        ({"cond_mask": np.zeros((2, 3), np.int64)}, "cond_mask must be bool"),
    ],
)
def test_validation_errors(kwargs, message):
    args = {"rgb": np.zeros((2, 3, 4, 4, 3), np.uint8), **kwargs}
    with pytest.raises(GridFormatError, match=message):
        Grid(**args)


def test_unreadable_and_foreign_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.grid.npz"
    bad.write_bytes(b"garbage")
    with pytest.raises(GridFormatError, match=r"bad.grid.npz: not a grid file \(not an .npz archive\)"):
        load_grid(bad)
    cut = tmp_path / "cut.grid.npz"
    cut.write_bytes(save_grid(tmp_path / "whole.grid.npz", full_grid()).read_bytes()[:100])
    with pytest.raises(GridFormatError, match="cut.grid.npz: unreadable"):
        load_grid(cut)
    other = tmp_path / "other.grid.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(GridFormatError, match="not a grid file"):
        load_grid(other)
    with pytest.raises(GridFormatError, match="no such grid file"):
        load_grid(tmp_path / "missing.grid.npz")
    with pytest.raises(GridFormatError, match="must end in .grid.npz"):
        save_grid(tmp_path / "x.npz", full_grid())


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(OSError, match="disk full"):
        save_grid(tmp_path / "c.grid.npz", full_grid())
    assert list(tmp_path.iterdir()) == []


def test_clip_round_trip_and_mode(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    back = load_clip(save_clip(tmp_path / "a.clip.npz", Clip(rgb, "freeze_time", {"fps": 8})))
    np.testing.assert_array_equal(back.rgb, rgb)
    assert back.mode == "freeze_time" and back.meta["fps"] == 8
    with pytest.raises(ClipFormatError, match="mode must be one of"):
        Clip(rgb, "slow_motion")
    with pytest.raises(ClipFormatError, match=r"rgb must be \[T, H, W, 3\]"):
        Clip(rgb[0])


def test_outputs_are_readable_by_others(tmp_path):
    old = os.umask(0o022)
    try:
        path = save_grid(tmp_path / "p.grid.npz", full_grid())
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
