"""Point clouds and meshes with open3d: statistical outlier removal, voxel de-duplication,
normals, TSDF fusion of RGB-D frames into a mesh, and point-cloud and mesh files.

Points are ``[N, 3]`` arrays in camera coordinates of this project (OpenCV: x right, y down,
z forward); pixel centres sit at integer + 0.5 as in :mod:`~fourreal.reconstruction.geometry`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import open3d as o3d

from fourreal.formats.files import atomic_path


def point_cloud(points: np.ndarray, colors: np.ndarray | None = None,
                normals: np.ndarray | None = None) -> o3d.geometry.PointCloud:
    """An open3d cloud of ``points [N, 3]`` with optional ``colors [N, 3]`` in [0, 1] and
    ``normals [N, 3]`` (stored as float64, as open3d keeps them)."""
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, np.float64).reshape(-1, 3)))
    if colors is not None:
        cloud.colors = o3d.utility.Vector3dVector(np.clip(np.asarray(colors, np.float64), 0, 1).reshape(-1, 3))
    if normals is not None:
        cloud.normals = o3d.utility.Vector3dVector(np.asarray(normals, np.float64).reshape(-1, 3))
    return cloud


def statistical_inliers(points: np.ndarray, neighbours: int = 8, std_ratio: float = 2.0) -> np.ndarray:
    """Statistical outlier removal: the boolean keep mask ``[N]`` of ``points [N, 3]`` whose
    mean distance to their ``neighbours`` nearest other points is within ``std_ratio``
    standard deviations of the cloud's mean. A cloud of at most ``neighbours`` points is
    kept whole (too few for the statistics)."""
    keep = np.zeros(len(points), bool)
    if len(points) <= neighbours:
        keep[:] = True
        return keep
    # open3d's k nearest include the point itself, at distance 0
    _, index = point_cloud(points).remove_statistical_outlier(nb_neighbors=neighbours + 1, std_ratio=std_ratio)
    keep[np.asarray(index, dtype=np.int64)] = True
    return keep


def voxel_representatives(points: np.ndarray, voxel: float) -> np.ndarray:
    """Sorted indices ``[M]`` of the first point (lowest index) in each occupied cube of side
    ``voxel`` (cubes aligned to the cloud's minimum corner): a duplicate-free subset when
    several keyframes see the same surface, whose per-point data can be taken along."""
    if len(points) == 0:
        return np.zeros(0, np.int64)
    cloud = point_cloud(points)
    _, _, traced = cloud.voxel_down_sample_and_trace(voxel, cloud.get_min_bound(), cloud.get_max_bound(), False)
    return np.sort(np.array([min(members) for members in traced], dtype=np.int64))


def estimate_normals(points: np.ndarray, neighbours: int = 16, camera: tuple[float, float, float] = (0.0, 0.0, 0.0)
                     ) -> np.ndarray:
    """Unit normals ``[N, 3]`` (float32) of ``points [N, 3]`` from a plane fit to each point's
    ``neighbours`` nearest points, turned to face the ``camera`` position (by default the
    origin: the camera of the coordinates the points are in). Fewer than 3 points: zeros."""
    if len(points) < 3:
        return np.zeros((len(points), 3), np.float32)
    cloud = point_cloud(points)
    cloud.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(min(neighbours, len(points))))
    cloud.orient_normals_towards_camera_location(np.asarray(camera, np.float64))
    return np.asarray(cloud.normals, np.float32)


def fuse_tsdf(colors: np.ndarray, depths: np.ndarray, Ks: np.ndarray, cam_to_world: np.ndarray, low: np.ndarray,
              high: np.ndarray, voxel: float, truncation: float, max_resolution: int = 128) -> o3d.geometry.TriangleMesh:
    """A colored triangle mesh fused from ``B`` RGB-D frames by TSDF integration (marching cubes)
    in a cube that holds the box ``low..high`` and a ``truncation`` margin around it.

    Args:
        colors: ``[B, H, W, 3]`` uint8; depths: ``[B, H, W]`` camera-space z (0 = none).
        Ks: ``[B, 3, 3]`` intrinsics (pixel centres at +0.5); cam_to_world: ``[B, 4, 4]`` poses of
            the frames' cameras in the mesh's coordinates.
        low, high: ``[3]`` corners of the scene's box in the mesh's coordinates.
        voxel: TSDF voxel size, made coarser where the cube would need more than
            ``max_resolution`` voxels a side; truncation: signed-distance truncation (a few voxels).
    Returns:
        The mesh, with vertex colors and normals (empty when no frame has depth).
    """
    origin = np.asarray(low, np.float64) - truncation
    length = float(np.max(np.asarray(high, np.float64) - np.asarray(low, np.float64))) + 2 * truncation
    resolution = int(min(max_resolution, max(8, np.ceil(length / voxel))))
    volume = o3d.pipelines.integration.UniformTSDFVolume(
        length=length, resolution=resolution, sdf_trunc=float(truncation),
        color_type=o3d.pipelines.integration.TSDFVolumeColorType.RGB8, origin=origin)
    height, width = depths.shape[1:3]
    far = float(depths.max()) * 2 + 1.0
    for rgb, depth, K, pose in zip(colors, depths, Ks, cam_to_world):
        # open3d puts pixel centres at integers: the principal point moves by half a pixel
        intrinsic = o3d.camera.PinholeCameraIntrinsic(width, height, float(K[0, 0]), float(K[1, 1]),
                                                      float(K[0, 2]) - 0.5, float(K[1, 2]) - 0.5)
        rgbd = o3d.geometry.RGBDImage.create_from_color_and_depth(
            o3d.geometry.Image(np.ascontiguousarray(rgb, np.uint8)),
            o3d.geometry.Image(np.ascontiguousarray(depth, np.float32)),
            depth_scale=1.0, depth_trunc=far, convert_rgb_to_intensity=False)
        volume.integrate(rgbd, intrinsic, np.linalg.inv(np.asarray(pose, np.float64)))
    mesh = volume.extract_triangle_mesh()
    mesh.compute_vertex_normals()
    return mesh


def write_point_cloud(path: str | Path, points: np.ndarray, colors: np.ndarray | None = None,
                      normals: np.ndarray | None = None) -> Path:
    """Write ``points [N, 3]`` with optional ``colors [N, 3]`` in [0, 1] and ``normals [N, 3]``
    as a binary point-cloud file (format by suffix, e.g. ``.ply``), atomically."""
    with atomic_path(path) as tmp:
        if not o3d.io.write_point_cloud(str(tmp), point_cloud(points, colors, normals)):
            raise OSError(f"open3d could not write {path}")
    return Path(path)


def write_mesh(path: str | Path, mesh: o3d.geometry.TriangleMesh) -> Path:
    """Write an open3d triangle mesh (format by suffix, e.g. ``.ply``), atomically."""
    with atomic_path(path) as tmp:
        if not o3d.io.write_triangle_mesh(str(tmp), mesh):
            raise OSError(f"open3d could not write {path}")
    return Path(path)
