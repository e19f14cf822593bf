import numpy as np
import pytest

from fourreal.data_making.render import RenderConfig, animation_frames, asset_seed, orbit_cameras, render_key
from fourreal.reconstruction.geometry import pinhole
from fourreal.running.config import ConfigError


def test_orbit_cameras_look_at_the_center():
    cfg = RenderConfig(num_views=5, radius=3.0, elevation_deg=20, arc_deg=120)
    c2w = orbit_cameras(cfg, azimuth0_deg=10)
    assert c2w.shape == (5, 4, 4)
    for m in c2w:
        r, p = m[:3, :3], m[:3, 3]
        np.testing.assert_allclose(r.T @ r, np.eye(3), atol=1e-12)
        assert np.isclose(np.linalg.det(r), 1.0)
        np.testing.assert_allclose(np.linalg.norm(p), 3.0)
        np.testing.assert_allclose(r[:, 2], -p / 3.0)  # z (forward) points at the origin
        assert r[2, 1] < 0  # image y points down in the world
        np.testing.assert_allclose(np.degrees(np.arcsin(p[2] / 3.0)), 20)
    az = np.degrees(np.arctan2(c2w[:, 1, 3], c2w[:, 0, 3]))
    np.testing.assert_allclose(az, [10, 40, 70, 100, 130])


def test_full_circle_does_not_repeat_the_first_view():
    c2w = orbit_cameras(RenderConfig(num_views=4, arc_deg=360), 0)
    az = np.degrees(np.arctan2(c2w[:, 1, 3], c2w[:, 0, 3])) % 360
    np.testing.assert_allclose(az, [0, 90, 180, 270], atol=1e-9)


def test_intrinsics_center_and_fov():
    k = pinhole(90, 36, 64)
    np.testing.assert_allclose(k, [[32, 0, 32], [0, 32, 18], [0, 0, 1]])


def test_animation_frames_stay_in_range():
    rng = np.random.default_rng(0)
    for _ in range(20):
        frames = animation_frames((0.96, 383.04), 8, 3, rng)
        assert frames[0] >= 1 and frames[-1] <= 383 and np.all(np.diff(frames) == 3)
    assert animation_frames((0, 5), 8, 3, rng) == [0, 3, 6, 9, 12, 15, 18, 21]  # too short: hold from the start


def test_render_key_tracks_params_and_file(tmp_path):
    f = tmp_path / "a.glb"
    f.write_bytes(b"one")
    base = render_key(RenderConfig(), f)
    assert render_key(RenderConfig(workers=1), f) == base  # how fast, not what
    assert render_key(RenderConfig(samples=32), f) != base
    f.write_bytes(b"two")
    assert render_key(RenderConfig(), f) != base
    assert asset_seed(0, "x") == asset_seed(0, "x") != asset_seed(0, "y")


def test_config_validation():
    with pytest.raises(ConfigError, match="radius"):
        RenderConfig(radius=0.5)
    with pytest.raises(ConfigError, match="light_energy"):
        RenderConfig(light_energy=(5.0, 1.0))
