"""Per-frame 4D exports of a reconstruction: at chosen time steps, the deformed Gaussians as a
3DGS PLY, their centres as a colored open3d point cloud, and a mesh fused from rendered depth;
plus a novel view-and-time sweep as mp4.

**Frame.** Every exported file is in one fixed frame, the *reference frame*: the camera
coordinates of the grid's centre view ``c = V // 2`` (OpenCV: x right, y down, z forward, that
camera at the origin), which is the reconstruction's canonical space
(:mod:`~fourreal.reconstruction.init`). At time index ``j`` of ``T`` a Gaussian sits at
``p + Δp_c^v + Δp^t(p, j / (T - 1))`` (Eq. 11 at the centre view:
:meth:`~fourreal.reconstruction.deformation.Deformable.positions`); ``Δp_c^v`` is zero for
offsets from tracking, so this is the canonical point moved by the temporal field.

**Mesh.** Each fused view ``v`` is rendered (color and depth) at time ``j`` in its own camera
coordinates, where the model places the Gaussians at ``p + Δp_v^v + Δp^t``; that camera's pose
in the reference frame is the rigid motion that best maps those positions onto the reference
ones (least squares over the Gaussians, as the canonical init fits views), and open3d's TSDF
integration fuses the views' RGB-D frames with those poses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fourreal.formats.files import write_json
from fourreal.reconstruction.config import ReconstructConfig, ReconstructionInputError, compute_device
from fourreal.reconstruction.deformation import Deformable
from fourreal.reconstruction.gaussians import GaussianCloud, render, render_depth, write_splat_ply
from fourreal.reconstruction.geometry import fit_rigid
from fourreal.reconstruction.output import as_uint8, read_reconstruction, sweep, write_sweep_mp4
from fourreal.reconstruction.points import estimate_normals, fuse_tsdf, write_mesh, write_point_cloud


def reference_view(model: Deformable) -> int:
    """The view whose camera coordinates are the export frame: the centre view ``V // 2``."""
    return model.offsets.shape[0] // 2


def check_indices(kind: str, chosen: list[int] | None, count: int, where: str) -> list[int]:
    """``chosen`` (all of ``0..count-1`` when None or empty) sorted and without repeats; a
    one-line :class:`ReconstructionInputError` naming ``kind``, ``where`` and the valid range
    for any out of it."""
    picked = sorted(set(range(count) if not chosen else chosen))
    bad = [i for i in picked if not 0 <= i < count]
    if bad:
        raise ReconstructionInputError(f"{kind} index {bad[0]} out of range for {where}, whose {kind}s are "
                                       f"0..{count - 1}; choose {kind}s in that range")
    return picked


@torch.no_grad()
def deformed_cloud(model: Deformable, time_index: int) -> GaussianCloud:
    """The Gaussians at time index ``time_index`` in the reference frame (means ``[N, 3]``;
    scales, colors and opacities as fitted)."""
    t = model.normalised_time(time_index)
    g = model.gaussians.cloud()
    means = model.positions(reference_view(model), t).cpu().numpy().astype(np.float32)
    return GaussianCloud(means, g.scales, g.colors, g.opacities)


@torch.no_grad()
def view_poses(model: Deformable, time_index: int, views: list[int]) -> np.ndarray:
    """``[len(views), 4, 4]`` camera-to-reference transforms of ``views`` at ``time_index``: the
    rigid motion from each view's Gaussian positions onto the reference view's (identity for
    the reference view itself)."""
    t = model.normalised_time(time_index)
    target = model.positions(reference_view(model), t).cpu().double().numpy()
    poses = np.tile(np.eye(4), (len(views), 1, 1))
    for k, v in enumerate(views):
        R, shift = fit_rigid(model.positions(v, t).cpu().double().numpy(), target)
        poses[k, :3, :3], poses[k, :3, 3] = R, shift
    return poses


@torch.no_grad()
def estimate_background(model: Deformable, renders: np.ndarray, Ks: np.ndarray, backend: str = "auto") -> np.ndarray:
    """The color ``[3]`` in [0, 1] a reconstruction was rendered over, from its re-rendered grid
    ``renders [V, T, H, W, 3]`` uint8: the median of cell ``(V // 2, 0)``'s pixels that no
    Gaussian covers (mid-gray when the scene covers every pixel)."""
    c = reference_view(model)
    g = model.gaussians
    dev = g.means.device
    h, w = renders.shape[2:4]
    _, alpha = render(model.positions(c, 0.0)[None], g.scales, g.colors, g.opacities,
                      torch.as_tensor(Ks[c][None], dtype=torch.float32, device=dev), h, w,
                      torch.zeros(3, device=dev), backend)
    empty = alpha[0].cpu().numpy() < 1 / 255
    if not empty.any():
        return np.full(3, 0.5)
    return np.median(renders[c, 0][empty].reshape(-1, 3), axis=0) / 255.0


@torch.no_grad()
def fused_mesh(model: Deformable, time_index: int, views: list[int], Ks: np.ndarray, height: int, width: int,
               background: np.ndarray, backend: str = "auto"):
    """An open3d triangle mesh of the scene at ``time_index`` in the reference frame, fused by
    TSDF integration from the renders (color, depth) of ``views`` with intrinsics ``Ks [V, 3, 3]``
    in a cube around the Gaussians. The voxel is one pixel's footprint at the median rendered
    depth; the truncation four voxels."""
    g = model.gaussians
    dev = g.means.device
    t = model.normalised_time(time_index)
    means = torch.stack([model.positions(v, t) for v in views])
    K = torch.as_tensor(Ks[views], dtype=torch.float32, device=dev)
    bg = torch.as_tensor(background, dtype=torch.float32, device=dev)
    rgb, _ = render(means, g.scales, g.colors, g.opacities, K, height, width, bg, backend)
    depth, _ = render_depth(means, g.scales, g.opacities, K, height, width, backend)
    depth = depth.cpu().numpy()
    footprint = depth / Ks[views][:, 0, 0, None, None]  # a pixel's width in scene units
    voxel = float(np.median(footprint[depth > 0])) if (depth > 0).any() else 1.0
    reference = model.positions(reference_view(model), t).cpu().numpy()
    return fuse_tsdf(as_uint8(rgb), depth, Ks[views], view_poses(model, time_index, views), reference.min(0),
                     reference.max(0), voxel, 4 * voxel)


def export_frames(model: Deformable, Ks: np.ndarray, height: int, width: int, background: np.ndarray, out: str | Path,
                  times: list[int] | None = None, views: list[int] | None = None, backend: str = "auto",
                  fps: float = 8.0, where: str = "the reconstruction") -> dict:
    """Write the per-frame exports of ``model`` (intrinsics ``Ks [V, 3, 3]``, frames ``height x
    width``, rendered over ``background [3]``) into ``out``, each file atomically:

    - ``t<j>_gaussians.ply``: the 3DGS PLY of the Gaussians at time index ``j`` (reference frame;
      normals estimated from the centres, facing the reference camera);
    - ``t<j>_points.ply``: their centres as an open3d point cloud with colors and those normals;
    - ``t<j>_mesh.ply``: the TSDF mesh fused from the renders of ``views`` at ``j`` (vertex colors;
      none when no rendered pixel is covered enough to have depth);
    - ``sweep.mp4``: the novel view-and-time sweep of :func:`~fourreal.reconstruction.output.sweep`;
    - ``export.json``: the frame, the times and views, and per time the counts written.

    ``times`` and ``views`` default to all; an index out of range raises a one-line
    :class:`ReconstructionInputError` naming ``where``. Returns the ``export.json`` content."""
    times = check_indices("time", times, model.times, where)
    views = check_indices("view", views, model.offsets.shape[0], where)
    out = Path(out)
    c = reference_view(model)
    summary = {"frame": f"camera coordinates of view {c} (the grid's centre view; OpenCV: x right, y down, "
                        "z forward), the reconstruction's canonical space",
               "reference_view": c, "times": times, "views": views, "files": {}}
    for j in times:
        cloud = deformed_cloud(model, j)
        normals = estimate_normals(cloud.means)
        write_splat_ply(out / f"t{j:03d}_gaussians.ply", cloud, normals)
        write_point_cloud(out / f"t{j:03d}_points.ply", cloud.means, cloud.colors, normals)
        mesh = fused_mesh(model, j, views, Ks, height, width, background, backend)
        if len(mesh.vertices):  # open3d writes no empty mesh; export.json then counts 0 vertices
            write_mesh(out / f"t{j:03d}_mesh.ply", mesh)
        summary["files"][f"t{j:03d}"] = {"gaussians": len(cloud), "mesh_vertices": len(mesh.vertices),
                                         "mesh_triangles": len(mesh.triangles)}
    write_sweep_mp4(out / "sweep.mp4", sweep(model, Ks, background, backend, height, width), fps)
    write_json(out / "export.json", summary)
    return summary


def export_reconstruction(directory: str | Path, out: str | Path, times: list[int] | None = None,
                          views: list[int] | None = None, backend: str = "auto") -> dict:
    """:func:`export_frames` of a reconstruction directory written by the ``reconstruct``
    stage (its model, intrinsics, frame size and fps; the background estimated from its
    renders), on CUDA when there is one and ``backend`` allows it. Returns the summary."""
    model, renders = read_reconstruction(directory)
    if renders.intrinsics is None:
        raise ReconstructionInputError(f"{directory}/renders.grid.npz has no intrinsics; export a directory written "
                                       "by the reconstruct stage (data/reconstruct/grids/<source>/<name>)")
    model = model.to(compute_device(ReconstructConfig(backend=backend)))
    background = estimate_background(model, renders.rgb, renders.intrinsics, backend)
    height, width = renders.shape[2:4]
    return export_frames(model, renders.intrinsics, height, width, background, out, times, views, backend,
                         float(renders.meta.get("fps", 8.0)), where=str(directory))
