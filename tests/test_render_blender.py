"""Rendering with Blender (bpy wheel + BlenderProc) for real, at tiny sizes."""

from __future__ import annotations

import numpy as np
import pytest

from fourreal.data_making.assets import AssetsConfig, generate_procedural
from fourreal.data_making.gltf import inspect_glb
from fourreal.data_making.render import RenderConfig, RenderJob, render_assets
from fourreal.formats.grid import load_grid

from conftest import REPO
from glb_tools import variant

pytestmark = pytest.mark.slow
TINY = dict(num_views=3, num_times=3, height=24, width=32, frame_step=5, samples=4, workers=2, timeout_s=300)


@pytest.fixture(scope="module")
def procedural(tmp_path_factory):
    out = tmp_path_factory.mktemp("procedural")
    cfg = AssetsConfig(procedural_count=4, procedural_seed=3, procedural_frames=24)
    return generate_procedural(out, cfg)


def job(asset, out_dir, name=None, allow_static=False):
    name = name or asset.stem
    return RenderJob(name=name, asset=asset, out=out_dir / f"{name}.grid.npz", split="train", allow_static=allow_static)


def test_procedural_assets_export_one_animation_each(procedural):
    families = sorted(p.stem.split("_")[-1] for p in procedural)
    assert families == ["blob", "spinner", "walker", "worm"]
    for path in procedural:
        info = inspect_glb(path)
        assert info.meshes >= 1 and len(info.animations) == 1, path.name  # all parts move together on import


def test_real_glb_assets_render_with_depth_and_motion(tmp_path):
    cfg = RenderConfig(**TINY)
    jobs = [job(REPO / "assets/glb/Fox.glb", tmp_path), job(REPO / "assets/glb/RobotExpressive.glb", tmp_path)]
    rendered, reused, failed = render_assets(jobs, cfg)
    assert failed == {} and rendered == ["Fox", "RobotExpressive"] and reused == []
    for j in jobs:
        grid = load_grid(j.out)
        assert grid.shape == (3, 3, 24, 32) and grid.meta["animated"]
        fg = grid.depth > 0
        assert 0.02 < fg.mean() < 0.9
        assert 1.5 < grid.depth[fg].min() and grid.depth.max() < 2.8 + 1.01  # within the bounding sphere
        rgb = grid.rgb.astype(float)
        assert np.abs(rgb[0, 0] - rgb[0, 2]).mean() > 0.5  # the asset moves along a row
        assert np.abs(rgb[0, 0] - rgb[2, 0]).mean() > 0.5  # the camera turns along a column
        np.testing.assert_array_equal(grid.cam_to_world[:, 0], grid.cam_to_world[:, 2])


def unproject(depth, k, c2w):
    """World points ``[N, 3]`` of the foreground pixels of a depth map."""
    i, j = np.nonzero(depth > 0)
    z = depth[i, j]
    cam = np.stack([(j + 0.5 - k[0, 2]) / k[0, 0] * z, (i + 0.5 - k[1, 2]) / k[1, 1] * z, z, np.ones_like(z)])
    return (c2w @ cam)[:3].T


def consistency(grid, convention=np.eye(4)):
    """Share of view-0 foreground points whose reprojection into view 1 meets view 1's depth."""
    k = grid.intrinsics[0].astype(float)
    c2w0, c2w1 = (grid.cam_to_world[v, 0].astype(float) @ convention for v in (0, 1))
    pts = unproject(grid.depth[0, 0], k, c2w0)
    cam = np.linalg.inv(c2w1) @ np.c_[pts, np.ones(len(pts))].T
    z = cam[2]
    u, v = k[0, 0] * cam[0] / z + k[0, 2], k[1, 1] * cam[1] / z + k[1, 2]
    h, w = grid.depth.shape[2:]
    inside = (z > 0) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
    if not inside.any():
        return 0.0
    d1 = grid.depth[1, 0][v[inside].astype(int), u[inside].astype(int)]
    return float(np.mean(np.abs(d1 - z[inside]) < 0.03 * z[inside])) * inside.mean()


def test_depth_and_cameras_agree_across_views_on_a_static_asset(procedural, tmp_path):
    spinner = next(p for p in procedural if p.stem.endswith("spinner"))
    still = variant(spinner, tmp_path / "still.glb", drop_animations=True)
    cfg = RenderConfig(**{**TINY, "num_views": 2, "num_times": 1, "height": 48, "width": 64, "arc_deg": 30})
    rendered, _, failed = render_assets([job(still, tmp_path, allow_static=True)], cfg)
    assert failed == {} and rendered == ["still"]
    grid = load_grid(tmp_path / "still.grid.npz")
    assert not grid.meta["animated"]
    assert consistency(grid) > 0.6
    assert consistency(grid, np.diag([1.0, -1.0, -1.0, 1.0])) < 0.2  # a wrong camera convention fails


def test_resume_renders_only_what_is_missing_and_broken_assets_are_counted(procedural, tmp_path):
    cfg = RenderConfig(**{**TINY, "num_views": 2, "num_times": 2})
    broken = tmp_path / "broken.glb"
    broken.write_bytes(b"glTF" + bytes(100))
    jobs = [job(procedural[0], tmp_path), job(procedural[1], tmp_path), job(broken, tmp_path)]
    rendered, reused, failed = render_assets(jobs, cfg)
    assert len(rendered) == 2 and list(failed) == ["broken"] and "broken.glb" in failed["broken"]
    first = load_grid(jobs[0].out).rgb
    # an interruption leaves one grid missing and another half-written
    jobs[1].out.unlink()
    jobs[0].out.write_bytes(jobs[0].out.read_bytes()[:100])
    rendered, reused, failed = render_assets(jobs[:2], cfg)
    assert sorted(rendered) == sorted(j.name for j in jobs[:2]) and reused == []
    np.testing.assert_array_equal(load_grid(jobs[0].out).rgb, first)  # same seed, same image
    rendered, reused, _ = render_assets(jobs[:2], cfg)
    assert rendered == [] and len(reused) == 2
    rendered, _, _ = render_assets(jobs[:1], RenderConfig(**{**TINY, "num_views": 2, "num_times": 2, "samples": 8}))
    assert rendered == [jobs[0].name]  # changed params invalidate the grid


def test_dask_fan_out_renders_the_same_grids(procedural, tmp_path):
    from prefect.testing.utilities import prefect_test_harness

    cfg = RenderConfig(**{**TINY, "num_views": 2, "num_times": 2, "executor": "dask", "batch_size": 1})
    local = RenderConfig(**{**TINY, "num_views": 2, "num_times": 2})
    jobs = [job(p, tmp_path / "dask") for p in procedural[:2]]
    with prefect_test_harness(server_startup_timeout=180):  # slow, busy CI machines
        rendered, reused, failed = render_assets(jobs, cfg)
    assert failed == {} and rendered == sorted(j.name for j in jobs)
    ref = [job(p, tmp_path / "local") for p in procedural[:2]]
    render_assets(ref, local)
    for a, b in zip(jobs, ref):
        np.testing.assert_array_equal(load_grid(a.out).rgb, load_grid(b.out).rgb)


def test_only_the_clip_that_plays_sets_the_frame_range(tmp_path):
    """A glTF file with two clips: Blender plays the first and keeps the second stored with a
    user; the render's frame range comes from the playing clip alone (else frames drawn past
    its end render a still asset)."""
    import json
    import subprocess
    import sys

    from tiny_gltf import write_tiny_gltf

    path = write_tiny_gltf(tmp_path)
    code = ("import json, sys, bpy; from fourreal.data_making import blender; blender.start(); blender.import_glb(sys.argv[1]); "
            "print(json.dumps({'stored': sorted(a.name for a in bpy.data.actions if a.users > 0), "
            "'playing': [a.name for a in blender.playing_actions()]})); blender.exit_worker()")
    out = subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    names = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(names["stored"]) == 2 and len(names["playing"]) == 1
    assert names["playing"][0].startswith("slide")
