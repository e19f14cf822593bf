import numpy as np
import pytest

from fourreal.pseudo4d import (
    Pseudo4DConfig, affines_valid, fit_motion, make_pseudo4d_grid, motion_to_affines, sample_motion, warp_frame,
)


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
