"""Canonical initialisation by dense tracking over the freeze-time video (column 0 of a grid).

Pixels of a few keyframes are tracked to every view; with each view's depth a track gives the
point's 3D position in that view's own camera coordinates. The centre view's coordinates are
the canonical space; a point's position in view ``i`` minus its canonical position is its
view-dependent offset ``Δp_i^v``. Views where a track is lost (or strays from the view's rigid
motion) use that rigid motion, fitted on the good tracks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fourreal.reconstruction.config import ReconstructConfig, ReconstructionInputError
from fourreal.reconstruction.gaussians import GaussianCloud
from fourreal.reconstruction.geometry import fit_rigid, lookup, pixel_grid, unproject
from fourreal.reconstruction.points import statistical_inliers, voxel_representatives
from fourreal.reconstruction.tracking import track


@dataclass
class Canonical:
    """The canonical cloud (centre view's camera coordinates) and its per-view offsets."""

    cloud: GaussianCloud
    offsets: np.ndarray  # [V, N, 3]
    center: int
    stats: dict[str, float] = field(default_factory=dict)


def background_color(frames: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Median color ``[3]`` in [0, 1] of pixels with no depth (``frames [..., H, W, 3]``)."""
    bg = frames[depth <= 0]
    if len(bg) == 0:
        bg = np.concatenate([frames[..., 0, :, :].reshape(-1, 3), frames[..., -1, :, :].reshape(-1, 3)])
    return np.median(bg.reshape(-1, 3), axis=0) / 255.0


def canonical_init(frames: np.ndarray, depth: np.ndarray, Ks: np.ndarray, cfg: ReconstructConfig) -> Canonical:
    """Canonical points and view offsets from a freeze-time video.

    Args:
        frames: ``[V, H, W, 3]`` uint8 (one column of the grid); depth: ``[V, H, W]`` (0 = none);
        Ks: ``[V, 3, 3]``.
    """
    v, h, w = frames.shape[:3]
    c = v // 2
    keys = sorted({c, *np.linspace(0, v - 1, cfg.keyframes).round().astype(int).tolist()})
    flows: dict = {}
    canon, per_view, ok_views, colors, scales = [], [], [], [], []
    for k in keys:
        uv = pixel_grid(h, w, cfg.stride)
        uv = uv[lookup(depth[k], uv) > 0]
        pos, valid = track(frames, k, uv, cfg.fb_threshold, flows)
        z = np.stack([lookup(depth[i], pos[i]) for i in range(v)])  # [V, N]
        valid &= z > 0
        keep = valid[c]
        xyz = np.stack([unproject(pos[i], z[i], Ks[i]) for i in range(v)])  # [V, N, 3]
        canon.append(xyz[c, keep])
        per_view.append(xyz[:, keep])
        ok_views.append(valid[:, keep])
        colors.append(lookup(frames[k], uv[keep]) / 255.0)
        scales.append(z[k, keep] / Ks[k, 0, 0] * cfg.stride * 0.5)
    p, xyz, ok = np.concatenate(canon), np.concatenate(per_view, 1), np.concatenate(ok_views, 1)
    col, sc = np.concatenate(colors), np.concatenate(scales)
    seeds = len(p)
    if seeds < 8:
        raise ReconstructionInputError(f"only {seeds} points could be tracked to the centre view; the column's views "
                                       "may not overlap (lower reconstruct.fb_threshold strictness or check the grid)")
    first = voxel_representatives(p, float(np.median(sc)) * 1.5)
    p, xyz, ok, col, sc = p[first], xyz[:, first], ok[:, first], col[first], sc[first]
    inlier = statistical_inliers(p)
    p, xyz, ok, col, sc = p[inlier], xyz[:, inlier], ok[:, inlier], col[inlier], sc[inlier]
    offsets = np.zeros_like(xyz)
    rigid_used = 0
    for i in range(v):
        good = ok[i]
        if good.sum() >= 3:
            R, t = fit_rigid(p[good], xyz[i, good])
        else:
            R, t = np.eye(3), np.zeros(3)
        rigid = p @ R.T + t
        residual = np.linalg.norm(xyz[i] - rigid, axis=1)
        limit = cfg.rigid_outlier * max(float(np.median(residual[good])) if good.any() else 0.0, 1e-6)
        use = good & (residual <= limit)
        rigid_used += int((~use).sum())
        offsets[i] = np.where(use[:, None], xyz[i], rigid) - p
    cloud = GaussianCloud(p.astype(np.float32), sc.astype(np.float32), col.astype(np.float32),
                          np.full(len(p), 0.9, np.float32))
    stats = {"seed_points": seeds, "points": len(p), "outliers_removed": int((~inlier).sum()),
             "rigid_fallback_share": round(rigid_used / max(1, v * len(p)), 4)}
    return Canonical(cloud, offsets.astype(np.float32), c, stats)
