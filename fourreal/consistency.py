"""Reference-free consistency metrics of 4D grids that need no downloaded weights.

- Multi-view matching (the role of GIM-confidence in the paper's Table 2): SIFT matches
  between neighbouring views of a freeze-time column, verified by a RANSAC fundamental
  matrix; the share of a view's keypoints whose match lies within ``τ`` pixels of its
  epipolar line, for several thresholds ``τ``.
- Two-view geometry (the role of Dust3R-confidence): with the grid's intrinsics, the
  essential matrix and relative pose of neighbouring views, triangulated matches and their
  reprojection error; a pair counts as registered with enough inliers in front of both
  cameras.
- Temporal consistency: the photometric error after warping each frame of a fixed-view
  row onto the previous one with optical flow (forward-backward consistent pixels only).
"""

from __future__ import annotations

import cv2
import numpy as np

from fourreal.tracking import dense_flow

THRESHOLDS = (0.5, 1.0, 2.0)


def _gray(frame: np.ndarray, scale: int) -> np.ndarray:
    g = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return cv2.resize(g, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) if scale > 1 else g


def _upscale(frame: np.ndarray, min_width: int = 256) -> int:
    return max(1, int(np.ceil(min_width / frame.shape[1])))


def match_pair(a: np.ndarray, b: np.ndarray, ratio: float = 0.8) -> tuple[np.ndarray, np.ndarray, int]:
    """SIFT matches between RGB uint8 frames ``a`` and ``b`` (Lowe's ratio test), in the
    frames' pixel coordinates: ``(points_a [M, 2], points_b [M, 2], keypoints in a)``.
    Small frames are upscaled for detection."""
    s = _upscale(a)
    sift = cv2.SIFT_create()
    ka, da = sift.detectAndCompute(_gray(a, s), None)
    kb, db = sift.detectAndCompute(_gray(b, s), None)
    if da is None or db is None or len(ka) < 2 or len(kb) < 2:
        return np.zeros((0, 2)), np.zeros((0, 2)), len(ka or [])
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(da, db, k=2)
    good = [m for m, n in (p for p in pairs if len(p) == 2) if m.distance < ratio * n.distance]
    pa = np.array([ka[m.queryIdx].pt for m in good], dtype=np.float64).reshape(-1, 2) / s
    pb = np.array([kb[m.trainIdx].pt for m in good], dtype=np.float64).reshape(-1, 2) / s
    return pa, pb, len(ka)


def epipolar_distance(F: np.ndarray, pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
    """Symmetric point-to-epipolar-line distance ``[M]`` (pixels) under ``F`` (``pb^T F pa = 0``)."""
    ha, hb = np.c_[pa, np.ones(len(pa))], np.c_[pb, np.ones(len(pb))]
    lb, la = ha @ F.T, hb @ F
    num = np.abs(np.sum(hb * lb, axis=1))
    return 0.5 * (num / np.hypot(lb[:, 0], lb[:, 1]).clip(1e-12) + num / np.hypot(la[:, 0], la[:, 1]).clip(1e-12))


def matching_consistency(column: np.ndarray, thresholds: tuple[float, ...] = THRESHOLDS) -> dict[str, float]:
    """Mean over neighbouring view pairs of a freeze-time video ``[V, H, W, 3]`` of the share
    of keypoints matched within each epipolar threshold (keys ``match@<τ>px``)."""
    shares = {t: [] for t in thresholds}
    for i in range(len(column) - 1):
        pa, pb, keypoints = match_pair(column[i], column[i + 1])
        F = None
        if len(pa) >= 8:
            F, _ = cv2.findFundamentalMat(pa, pb, cv2.FM_RANSAC, 1.0, 0.999)
        for t in thresholds:
            if F is None or F.shape != (3, 3) or keypoints == 0:
                shares[t].append(0.0)
            else:
                shares[t].append(float(np.sum(epipolar_distance(F, pa, pb) < t)) / keypoints)
    return {f"match@{t:g}px": float(np.mean(v)) for t, v in shares.items()}


def geometry_consistency(column: np.ndarray, intrinsics: np.ndarray, min_inliers: int = 15) -> dict[str, float]:
    """Two-view geometry along a freeze-time video ``[V, H, W, 3]`` with intrinsics
    ``[V, 3, 3]``: share of neighbouring pairs registered (essential matrix with at least
    ``min_inliers`` inliers, triangulated in front of both cameras) and the mean
    reprojection error of their triangulated inliers (pixels)."""
    registered, errors = 0, []
    for i in range(len(column) - 1):
        pa, pb, _ = match_pair(column[i], column[i + 1])
        if len(pa) < 8:
            continue
        Ka, Kb = intrinsics[i].astype(np.float64), intrinsics[i + 1].astype(np.float64)
        na = cv2.undistortPoints(pa.reshape(-1, 1, 2), Ka, None).reshape(-1, 2)
        nb = cv2.undistortPoints(pb.reshape(-1, 1, 2), Kb, None).reshape(-1, 2)
        E, mask = cv2.findEssentialMat(na, nb, np.eye(3), cv2.RANSAC, 0.999, 1.0 / Ka[0, 0])
        if E is None or E.shape != (3, 3):
            continue
        count, R, t, pose_mask = cv2.recoverPose(E, na, nb, np.eye(3), mask=mask)
        inl = pose_mask.ravel() > 0
        if count < min_inliers:
            continue
        registered += 1
        Pa, Pb = np.hstack([np.eye(3), np.zeros((3, 1))]), np.hstack([R, t])
        X = cv2.triangulatePoints(Pa, Pb, na[inl].T, nb[inl].T)
        X = (X[:3] / X[3]).T
        for P, K, pts in ((Pa, Ka, pa[inl]), (Pb, Kb, pb[inl])):
            proj = (K @ (P[:, :3] @ X.T + P[:, 3:])).T
            errors.append(np.linalg.norm(proj[:, :2] / proj[:, 2:3] - pts, axis=1))
    pairs = max(1, len(column) - 1)
    return {"registered_share": registered / pairs,
            "reprojection_error_px": float(np.mean(np.concatenate(errors))) if errors else float("nan")}


def warp_error(row: np.ndarray, fb_threshold: float = 1.0) -> float:
    """Mean absolute error (0-255 scale) between each frame of a video ``[T, H, W, 3]`` and
    the next frame warped back onto it by optical flow, over forward-backward consistent
    pixels: low for temporally coherent videos, high for flicker and jitter."""
    errs = []
    h, w = row.shape[1:3]
    ys, xs = np.mgrid[:h, :w].astype(np.float32)
    for t in range(len(row) - 1):
        fwd, bwd = dense_flow(row[t], row[t + 1]), dense_flow(row[t + 1], row[t])
        mx, my = xs + fwd[..., 0], ys + fwd[..., 1]
        warped = cv2.remap(row[t + 1].astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        back = cv2.remap(bwd, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        ok = (np.hypot(fwd[..., 0] + back[..., 0], fwd[..., 1] + back[..., 1]) < fb_threshold)
        ok &= (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
        if ok.any():
            errs.append(float(np.abs(warped - row[t].astype(np.float32))[ok].mean()))
    return float(np.mean(errs)) if errs else float("nan")
