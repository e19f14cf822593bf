import json
import sys

import numpy as np
import pytest
import yaml

from fourreal.data_making.pseudo4d import (
    Pseudo4DConfig, affines_valid, fit_motion, grid_seed, make_pseudo4d_grid, motion_to_affines, sample_motion,
    warp_frame, write_pseudo4d_grids,
)
from fourreal.formats.clip import Clip, save_clip
from fourreal.formats.grid import list_grids, load_grid
from fourreal.running.config import ConfigError


def random_clip(t=5, h=36, w=64, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def test_rows_and_columns_follow_one_transform_per_view():
    cfg = Pseudo4DConfig(num_views=6)
    clip = random_clip()
    grid = make_pseudo4d_grid(clip, cfg, np.random.default_rng(3))
    affines = np.array(grid.meta["affines"])
    assert grid.rgb.shape == (6, 5, 36, 64, 3) and affines.shape == (6, 2, 3)
    for v in range(6):  # each row is the clip seen through A_v; each column a frame under all A_v
        expected_row = np.stack([warp_frame(frame, affines[v], (36, 64)) for frame in clip])
        np.testing.assert_array_equal(grid.row(v), expected_row)
    for t in range(5):
        expected_col = np.stack([warp_frame(clip[t], a, (36, 64)) for a in affines])
        np.testing.assert_array_equal(grid.column(t), expected_col)
    assert grid.cond_mask[0].all() and grid.cond_mask[:, 0].all() and not grid.cond_mask[1:, 1:].any()


def test_warp_applies_the_documented_map_exactly_on_a_linear_image():
    h, w = 40, 60
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    image = np.stack([2 * xs + 5, 3 * ys + 7, xs + ys], axis=-1)  # linear in (x, y)
    affine = np.array([[0.8, 0.1, 4.0], [-0.05, 0.9, 3.0]])
    out = warp_frame(np.clip(image, 0, 255).astype(np.uint8), affine, (20, 30))
    oy, ox = np.mgrid[0:20, 0:30].astype(np.float64)
    sx = affine[0, 0] * ox + affine[0, 1] * oy + affine[0, 2]
    sy = affine[1, 0] * ox + affine[1, 1] * oy + affine[1, 2]
    expected = np.stack([2 * sx + 5, 3 * sy + 7, sx + sy], axis=-1)
    assert np.abs(out.astype(np.float64) - expected).max() <= 1.0  # rounding only


def test_first_view_is_the_base_crop_and_path_starts_at_identity():
    cfg = Pseudo4DConfig(num_views=5, base_crop=0.5)
    params = sample_motion(cfg, np.random.default_rng(0))
    assert params.shape == (5, 5) and np.allclose(params[0], 0)
    a0 = motion_to_affines(params, (40, 80), (40, 80), 0.5)[0]
    np.testing.assert_allclose(a0[:, :2], 0.5 * np.eye(2))
    # output center maps to the source center
    np.testing.assert_allclose(a0 @ np.array([39.5, 19.5, 1.0]), [39.5, 19.5])


def test_crop_to_valid_keeps_every_view_inside_the_source():
    cfg = Pseudo4DConfig(num_views=8, base_crop=0.95, zoom_max=2.0, pan_max=0.4, rotation_max_deg=30)
    for seed in range(10):
        params = sample_motion(cfg, np.random.default_rng(seed))
        affines, scale = fit_motion(params, (36, 64), (36, 64), cfg.base_crop)
        assert affines_valid(affines, (36, 64), (36, 64)) and 0 <= scale <= 1
    # a strong motion must have been scaled down at least once
    assert not affines_valid(motion_to_affines(params, (36, 64), (36, 64), 0.95), (36, 64), (36, 64)) or scale < 1


def test_no_border_pixels_are_invented():
    clip = np.full((3, 36, 64, 3), 200, np.uint8)  # constant frames: any border fill would show
    cfg = Pseudo4DConfig(num_views=6, zoom_max=1.5, pan_max=0.3, rotation_max_deg=20)
    grid = make_pseudo4d_grid(clip, cfg, np.random.default_rng(1))
    assert (grid.rgb == 200).all()


def test_path_is_smooth():
    cfg = Pseudo4DConfig(num_views=16, bow=0.5)
    params = sample_motion(cfg, np.random.default_rng(2))
    second = np.diff(params, n=2, axis=0)
    first = np.diff(params, axis=0)
    assert np.abs(second).max() <= np.abs(first).max() * 0.5 + 1e-12


def test_deterministic_given_the_seed():
    cfg = Pseudo4DConfig(num_views=4)
    clip = random_clip()
    a = make_pseudo4d_grid(clip, cfg, np.random.default_rng([0, 1, 2]))
    b = make_pseudo4d_grid(clip, cfg, np.random.default_rng([0, 1, 2]))
    c = make_pseudo4d_grid(clip, cfg, np.random.default_rng([0, 1, 3]))
    np.testing.assert_array_equal(a.rgb, b.rgb)
    assert not np.array_equal(a.rgb, c.rgb)


def test_impossible_base_crop_is_reported():
    with pytest.raises(ValueError, match="leaves no valid window"):
        fit_motion(np.zeros((2, 5)), (10, 10), (40, 40), 1.0)


def run_stage_in(tmp_path, monkeypatch, clips: dict[str, int], test_clips: dict[str, int] | None, **section):
    """Run the pseudo4d stage in ``tmp_path`` on random clips (name -> seed) under
    data/videos/clips and (unless None: no directory at all) data/videos/test_clips;
    returns its details."""
    monkeypatch.chdir(tmp_path)
    for directory, named in (("clips", clips), ("test_clips", test_clips)):
        if named is None:
            continue
        (tmp_path / "data/videos" / directory).mkdir(parents=True)
        for name, seed in named.items():
            save_clip(tmp_path / f"data/videos/{directory}/{name}.clip.npz",
                      Clip(rgb=random_clip(t=4, seed=seed), meta={"source": name.split("_")[0], "fps": 8.0}))
    params = {"num_views": 3, "preview": {"max_items": 1, "cell_height": 16, "mp4": False, "html": False}, **section}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"pseudo4d": params}))
    monkeypatch.setattr(sys, "argv", ["stages.pseudo4d"])
    from stages import pseudo4d

    pseudo4d.main()
    return json.loads((tmp_path / "data/pseudo4d/details.json").read_text())


def test_the_stage_makes_test_grids_from_the_held_out_clips(tmp_path, monkeypatch):
    metrics = run_stage_in(tmp_path, monkeypatch, {"a_00000": 0, "b_00000": 1}, {"held_00000": 2, "held_00008": 3},
                           grids_per_clip=2, test_grids_per_clip=1)
    assert metrics["grids"] == 4 and metrics["test_grids"] == 2 and metrics["times"] == 4
    train = [p.name for p in list_grids(tmp_path / "data/pseudo4d/grids")]
    assert train == ["a_00000_g0.grid.npz", "a_00000_g1.grid.npz", "b_00000_g0.grid.npz", "b_00000_g1.grid.npz"]
    tests = list_grids(tmp_path / "data/pseudo4d/test_grids")
    assert [p.name for p in tests] == ["held_00000_g0.grid.npz", "held_00008_g0.grid.npz"]
    grid = load_grid(tests[1])
    assert grid.shape == (3, 4, 36, 64) and grid.meta["kind"] == "pseudo4d"
    assert grid.meta["source"] == "held" and grid.meta["clip"] == "held_00008"  # the video, and the clip of it
    # the same generator and seed rule as the training grids
    seed = grid_seed(0, "held_00008", 0)
    assert grid.meta["seed"] == seed
    expected = make_pseudo4d_grid(random_clip(t=4, seed=3), Pseudo4DConfig(num_views=3), np.random.default_rng(seed))
    np.testing.assert_array_equal(grid.rgb, expected.rgb)
    assert not list((tmp_path / "data/pseudo4d").glob(".*"))  # no temporaries left


@pytest.mark.parametrize("held_out", [{}, None])  # an empty test_clips directory, and none at all
def test_the_stage_writes_an_empty_test_grid_directory_without_held_out_clips(tmp_path, monkeypatch, held_out):
    metrics = run_stage_in(tmp_path, monkeypatch, {"a_00000": 0}, held_out)
    assert metrics["grids"] == 1 and metrics["test_grids"] == 0
    assert (tmp_path / "data/pseudo4d/test_grids").is_dir()
    assert list((tmp_path / "data/pseudo4d/test_grids").iterdir()) == []


def test_test_grids_per_clip_is_validated():
    with pytest.raises(ConfigError) as exc:
        Pseudo4DConfig(test_grids_per_clip=0)
    assert exc.value.key == "test_grids_per_clip" and Pseudo4DConfig().test_grids_per_clip == 1


def test_the_grids_are_the_same_on_one_cpu_and_on_several(tmp_path, monkeypatch):
    clips = []
    for i in range(5):
        clips.append(tmp_path / f"c{i}_00000.clip.npz")
        save_clip(clips[-1], Clip(rgb=random_clip(t=3, seed=i), meta={"source": f"c{i}", "fps": 8.0}))
    cfg = Pseudo4DConfig(num_views=3)
    made = {}
    for cpus in (1, 4):
        monkeypatch.setattr("os.sched_getaffinity", lambda pid, n=cpus: set(range(n)))
        out = tmp_path / f"out{cpus}"
        made[cpus] = [(name, grid.rgb) for name, grid in write_pseudo4d_grids(clips, 2, str(out), cfg, "grids")]
    assert [n for n, _ in made[4]] == [n for n, _ in made[1]] == [f"c{i}_00000_g{k}" for i in range(5) for k in range(2)]
    for (_, one), (_, several) in zip(made[1], made[4]):
        np.testing.assert_array_equal(one, several)
    for name, _ in made[1]:  # the same files, byte for byte (what dvc.lock records)
        assert (tmp_path / f"out1/{name}.grid.npz").read_bytes() == (tmp_path / f"out4/{name}.grid.npz").read_bytes()
