"""Reference-free consistency metrics of 4D grids that need no downloaded weights.

- Multi-view matching (the role of GIM-confidence in the paper's Table 2): SIFT matches
  between neighbouring views of a freeze-time column, verified by a RANSAC fundamental
  matrix; the share of a view's keypoints whose match lies within ``τ`` pixels of its
  epipolar line, for several thresholds ``τ``.
- Structure from motion (the role of Dust3R-confidence): COLMAP's incremental mapper
  (pycolmap) over the views of a freeze-time column with the grid's intrinsics: how many
  views one 3D model explains, its reprojection error and track length.
- Temporal consistency: the photometric error after warping each frame of a fixed-view
  row onto the previous one with optical flow (forward-backward consistent pixels only).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fourreal.reconstruction.optical_flow import dense_flow

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


def sfm_consistency(column: np.ndarray, intrinsics: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Incremental structure from motion (COLMAP through pycolmap) of a freeze-time video
    ``[V, H, W, 3]`` with known, fixed pinhole intrinsics ``[V, 3, 3]`` (view 0's are used
    for all views): the share of views registered in the largest model, the mean
    reprojection error of its 3D points (in the frames' pixels) and their mean track length
    (views per point). A column that no model explains scores 0 registered, NaN error.

    Frames are upscaled to at least 256 pixels wide for SIFT, as in :func:`match_pair`.
    Single-threaded with a fixed seed, so the result is reproducible."""
    import tempfile

    import pycolmap

    s = _upscale(column[0])
    K = intrinsics[0].astype(np.float64) * np.array([[s], [s], [1.0]])
    level = pycolmap.logging.minloglevel
    pycolmap.logging.minloglevel = 3  # COLMAP logs every step to stderr; keep only fatal errors
    try:
        pycolmap.set_random_seed(seed)
        with tempfile.TemporaryDirectory(prefix="fourreal_sfm_") as tmp:
            root = Path(tmp)
            images, database, models = root / "images", root / "database.db", root / "sparse"
            images.mkdir()
            models.mkdir()
            for i, frame in enumerate(column):
                big = cv2.resize(frame, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC) if s > 1 else frame
                cv2.imwrite(str(images / f"{i:04d}.png"), np.ascontiguousarray(big[..., ::-1]))
            reader = pycolmap.ImageReaderOptions()
            reader.camera_model = "PINHOLE"
            reader.camera_params = f"{K[0, 0]},{K[1, 1]},{K[0, 2]},{K[1, 2]}"
            extraction = pycolmap.FeatureExtractionOptions()
            extraction.num_threads = 1
            matching = pycolmap.FeatureMatchingOptions()
            matching.num_threads = 1
            pycolmap.extract_features(database, images, camera_mode=pycolmap.CameraMode.SINGLE,
                                      reader_options=reader, extraction_options=extraction, device=pycolmap.Device.cpu)
            pycolmap.match_exhaustive(database, matching_options=matching, device=pycolmap.Device.cpu)
            options = pycolmap.IncrementalPipelineOptions()
            options.num_threads = 1
            options.random_seed = seed
            options.min_model_size = 2
            options.ba_refine_focal_length = options.ba_refine_principal_point = options.ba_refine_extra_params = False
            options.mapper.init_min_num_inliers = 15
            options.mapper.abs_pose_min_num_inliers = 10
            options.mapper.init_min_tri_angle = 2.0
            reconstructions = pycolmap.incremental_mapping(database, images, models, options=options)
    finally:
        pycolmap.logging.minloglevel = level
    if not reconstructions:
        return {"registered_share": 0.0, "reprojection_error_px": float("nan"), "track_length": 0.0}
    best = max(reconstructions.values(), key=lambda r: (r.num_reg_images(), r.num_points3D()))
    return {"registered_share": best.num_reg_images() / len(column),
            "reprojection_error_px": float(best.compute_mean_reprojection_error()) / s,
            "track_length": float(best.compute_mean_track_length())}


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
