"""Per-frame exports of a reconstruction (`fourreal export`, `reconstruct.export`): every file
read back with an independent reader (plyfile, open3d, PyAV) and checked against the model."""

import json
import sys

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import save_file

from conftest import textured_square_grid
from fourreal.formats.grid import Grid, save_grid
from fourreal.reconstruction.deformation import Deformable
from fourreal.reconstruction.export import export_reconstruction, view_poses
from fourreal.reconstruction.gaussians import SH_C0, GaussianCloud
from fourreal.reconstruction.init import Canonical
from fourreal.reconstruction.output import render_grid

V, T, H, W = 3, 3, 16, 24
K = np.array([[30.0, 0, 12], [0, 30.0, 8], [0, 0, 1]], np.float32)
BACKGROUND = np.array([0.2, 0.4, 0.6])
CENTRE = np.array([0.0, 0.0, 2.0])


def turn(degrees: float) -> np.ndarray:
    """A rotation ``[3, 3]`` about the camera's vertical axis."""
    a = np.deg2rad(degrees)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def saved_reconstruction(directory) -> Deformable:
    """A textured square of Gaussians 2 units in front of the centre view's camera, seen from
    views turned by -10, 0, 10 degrees about its centre, moved by a random temporal field;
    written as the reconstruct stage writes it (weights + re-rendered grid with intrinsics)."""
    rng = np.random.default_rng(0)
    xs, ys = np.meshgrid(np.linspace(-0.3, 0.3, 12), np.linspace(-0.2, 0.2, 8))
    means = np.c_[xs.ravel(), ys.ravel(), np.full(96, 2.0)].astype(np.float32)
    cloud = GaussianCloud(means, rng.uniform(0.02, 0.04, 96).astype(np.float32),
                          rng.uniform(0, 1, (96, 3)).astype(np.float32), rng.uniform(0.85, 0.95, 96).astype(np.float32))
    offsets = np.stack([(means - CENTRE) @ turn(a).T + CENTRE - means for a in (-10, 0, 10)]).astype(np.float32)
    torch.manual_seed(0)
    model = Deformable(Canonical(cloud, offsets, 1), times=T)
    torch.nn.init.normal_(model.deform.out.weight, std=0.3)
    Ks = np.repeat(K[None], V, 0)
    renders = render_grid(model, Ks, V, T, H, W, BACKGROUND, "torch")
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(directory / "deformation.safetensors"))
    save_grid(directory / "renders.grid.npz", Grid(rgb=renders, intrinsics=Ks, meta={"source": "t", "seed": 0, "fps": 8.0}))
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    model = saved_reconstruction(root / "recon")
    summary = export_reconstruction(root / "recon", root / "out", times=[2, 0], backend="torch")
    return model, root / "out", summary


def test_the_3dgs_ply_holds_the_deformed_gaussians_in_the_reference_frame(exported):
    from plyfile import PlyData

    model, out, summary = exported
    assert summary["times"] == [0, 2] and summary["views"] == [0, 1, 2] and summary["reference_view"] == 1
    g = model.gaussians
    for j in (0, 2):
        v = PlyData.read(str(out / f"t{j:03d}_gaussians.ply"))["vertex"]
        xyz = np.c_[v["x"], v["y"], v["z"]]
        np.testing.assert_allclose(xyz, model.positions(1, j / (T - 1)).detach().numpy(), atol=1e-5)
        np.testing.assert_allclose(1 / (1 + np.exp(-v["opacity"].astype(np.float64))), g.opacities.detach().numpy(),
                                   rtol=1e-5)
        np.testing.assert_allclose(np.exp(v["scale_0"]), g.scales.detach().numpy(), rtol=1e-5)
        np.testing.assert_allclose(np.c_[v["f_dc_0"], v["f_dc_1"], v["f_dc_2"]] * SH_C0 + 0.5, g.colors.detach().numpy(),
                                   atol=1e-5)
        normals = np.c_[v["nx"], v["ny"], v["nz"]]
        np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-4)
        assert (normals[:, 2] < 0).mean() > 0.9  # the square's normals face the reference camera
    first = PlyData.read(str(out / "t000_gaussians.ply"))["vertex"]
    np.testing.assert_allclose(np.c_[first["x"], first["y"], first["z"]], g.means.detach().numpy(), atol=1e-6)  # time 0
    last = PlyData.read(str(out / "t002_gaussians.ply"))["vertex"]
    assert np.abs(last["x"] - first["x"]).max() > 5e-3  # the temporal field moved them
    assert not (out / "t001_gaussians.ply").exists()


def test_the_point_cloud_and_the_mesh_read_back_with_open3d(exported):
    import open3d as o3d

    model, out, summary = exported
    xyz = model.positions(1, 1.0).detach().numpy()
    cloud = o3d.io.read_point_cloud(str(out / "t002_points.ply"))
    np.testing.assert_allclose(np.asarray(cloud.points), xyz, atol=1e-5)
    np.testing.assert_allclose(np.asarray(cloud.colors), model.gaussians.colors.detach().numpy(), atol=1 / 255)
    assert cloud.has_normals()
    for j in (0, 2):
        at_j = model.positions(1, j / (T - 1)).detach().numpy()
        lo, hi = at_j.min(0) - 0.15, at_j.max(0) + 0.15  # the Gaussians' box, a margin of two voxels (2 / 30 each)
        mesh = o3d.io.read_triangle_mesh(str(out / f"t{j:03d}_mesh.ply"))
        vertices = np.asarray(mesh.vertices)
        assert len(vertices) > 20 and len(mesh.triangles) > 20 and mesh.has_vertex_colors()
        assert ((vertices >= lo) & (vertices <= hi)).all(), (vertices.min(0), vertices.max(0), lo, hi)
        assert summary["files"][f"t{j:03d}"]["mesh_vertices"] == len(vertices)


def test_the_sweep_mp4_reads_back_with_pyav(exported):
    import av

    _, out, _ = exported
    with av.open(str(out / "sweep.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == (max(V, T) - 1) * 4 + 1 and frames[0].shape == (H, W, 3)
    assert json.loads((out / "export.json").read_text())["reference_view"] == 1


def test_view_poses_are_the_cameras_in_the_reference_frame(exported):
    model = exported[0]
    poses = view_poses(model, 0, [0, 1, 2])  # time 0: the views differ by the rigid turns alone
    for k, a in enumerate((-10, 0, 10)):
        np.testing.assert_allclose(poses[k, :3, :3], turn(a).T, atol=1e-5)
        np.testing.assert_allclose(poses[k, :3, 3], CENTRE - turn(a).T @ CENTRE, atol=1e-5)


def test_bad_input_gives_one_line_errors(tmp_path, capsys):
    from fourreal.running.cli import main

    with pytest.raises(FileNotFoundError, match="no such reconstruction directory; pass a directory written by"):
        export_reconstruction(tmp_path / "missing", tmp_path / "out")
    saved_reconstruction(tmp_path / "recon")
    with pytest.raises(ValueError, match=r"time index 5 out of range for .*recon, whose times are 0..2; choose times in"):
        export_reconstruction(tmp_path / "recon", tmp_path / "out", times=[0, 5])
    assert main(["export", str(tmp_path / "recon"), "--views", "3", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "view index 3 out of range" in err and "whose views are 0..2" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing written before the check


def test_export_is_a_validated_reconstruct_option():
    from fourreal.reconstruction.config import ReconstructConfig
    from fourreal.running.config import ConfigError, from_dict

    assert ReconstructConfig().export is False
    assert from_dict(ReconstructConfig, {"export": True}, "reconstruct").export is True
    with pytest.raises(ConfigError, match="reconstruct.export"):
        from_dict(ReconstructConfig, {"export": "yes"}, "reconstruct")


def test_the_stage_writes_exports_when_asked_and_the_cli_writes_the_same_gaussians(tmp_path, monkeypatch):
    from fourreal.running.cli import main

    rgb, depth, Ks = textured_square_grid(V, T, H, W)
    save_grid(tmp_path / "grids/a.grid.npz", Grid(rgb=rgb, depth=depth, intrinsics=Ks, meta={"source": "a", "fps": 8.0}))
    section = {"sources": [str(tmp_path / "grids")], "fit_steps": 3, "prune_steps": 2, "stride": 1, "holdout_every": 2,
               "backend": "torch", "export": True}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"reconstruct": section}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["stages.reconstruct", "--out", str(tmp_path / "rec")])
    from stages import reconstruct

    reconstruct.main()
    details = json.loads((tmp_path / "rec/details.json").read_text())  # a source named like a count keeps its means
    assert details["grids"] == 1 and details["failed"] == 0 and details["sources"]["grids"]["heldout_psnr"] > 10
    recon = tmp_path / "rec/grids/grids/a"
    written = sorted(p.name for p in (recon / "export").iterdir())
    assert written == ["export.json", "sweep.mp4"] + [f"t{j:03d}_{kind}.ply" for j in range(T)
                                                      for kind in ("gaussians", "mesh", "points")]
    assert main(["export", str(recon), "--times", "1", "--backend", "torch", "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli/t001_gaussians.ply").read_bytes() == (recon / "export/t001_gaussians.ply").read_bytes()
