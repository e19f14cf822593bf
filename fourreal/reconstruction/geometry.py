"""Pinhole camera geometry in OpenCV camera coordinates (x right, y down, z forward),
pixel centres at integer + 0.5 as in gsplat."""

from __future__ import annotations

import numpy as np


def pinhole(fov_deg: float, height: int, width: int) -> np.ndarray:
    """Intrinsics ``[3, 3]`` (float64) of a pinhole camera of a ``height x width`` image with
    horizontal field of view ``fov_deg``, principal point at the image centre (pixel ``(i, j)``
    is centred at ``(j + .5, i + .5)``)."""
    f = (width / 2) / np.tan(np.deg2rad(fov_deg) / 2)
    return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]])


def unproject(uv: np.ndarray, depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Camera-space points ``[N, 3]`` of pixels ``uv [N, 2]`` (x, y in pixels, centres at
    +0.5) with camera-space ``depth [N]`` (z) under intrinsics ``K [3, 3]``."""
    x = (uv[:, 0] - K[0, 2]) / K[0, 0]
    y = (uv[:, 1] - K[1, 2]) / K[1, 1]
    return np.stack([x * depth, y * depth, depth], axis=1)


def project(points: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels ``uv [N, 2]`` and depths ``z [N]`` of camera-space ``points [N, 3]``."""
    z = points[:, 2]
    safe = np.where(np.abs(z) < 1e-9, 1e-9, z)
    u = points[:, 0] / safe * K[0, 0] + K[0, 2]
    v = points[:, 1] / safe * K[1, 1] + K[1, 2]
    return np.stack([u, v], axis=1), z


def pixel_grid(height: int, width: int, stride: int = 1) -> np.ndarray:
    """Centres ``[N, 2]`` of every ``stride``-th pixel, row-major."""
    ys, xs = np.mgrid[stride // 2:height:stride, stride // 2:width:stride]
    return np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], axis=1).astype(np.float64)


def lookup(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Nearest-pixel values of ``image [H, W, ...]`` at ``uv [N, 2]`` (clamped to the image)."""
    h, w = image.shape[:2]
    x = np.clip(np.floor(uv[:, 0]).astype(int), 0, w - 1)
    y = np.clip(np.floor(uv[:, 1]).astype(int), 0, h - 1)
    return image[y, x]


def inside(uv: np.ndarray, height: int, width: int) -> np.ndarray:
    """Which of ``uv [N, 2]`` fall inside a ``height x width`` image."""
    return (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height)


def fit_rigid(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares rotation ``R [3, 3]`` and translation ``t [3]`` with ``dst ≈ src @ R.T + t``
    (Kabsch; ``src``, ``dst`` are ``[N, 3]`` corresponding points, N >= 3)."""
    cs, cd = src.mean(0), dst.mean(0)
    u, _, vt = np.linalg.svd((src - cs).T @ (dst - cd))
    d = np.sign(np.linalg.det(vt.T @ u.T))
    R = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return R, cd - R @ cs
