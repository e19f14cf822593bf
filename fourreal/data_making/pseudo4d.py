"""Pseudo-4D grids from ordinary videos with smooth 2D affine camera-like motions
(4Real-Video Sec. 3.3, "2D transformed videos").

For a clip of ``T`` frames we sample a smooth path of ``V`` affine transforms ``A_v`` and
build ``I[v, t] = A_v(frame_t)``: row ``v`` is the whole clip seen through one fixed
transform (a fixed-view video) and column ``t`` is one frame under the moving transform
(a freeze-time video). ``A_0`` is the base crop, so row 0 is the clip itself.

Borders: crop-to-valid. Every view samples a window strictly inside the source frame:
the base view is a center crop of ``base_crop`` of the frame, and when a sampled motion
would leave the frame, the whole path is scaled down (one factor for all views, found by
bisection) until every corner of every view stays inside. No pixel is ever extrapolated,
so there are no black wedges or reflected borders.

:func:`write_pseudo4d_grids` makes the grids of clip files and saves them (the ``pseudo4d``
stage's grids and held-out grids).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from fourreal.formats.clip import load_clip
from fourreal.formats.files import atomic_dir
from fourreal.formats.grid import Grid, default_cond_mask, save_grid
from fourreal.formats.preview import PreviewConfig
from fourreal.running.config import ConfigError, require

# Motion parameters per view, in this order: log zoom, pan x, pan y (fractions of the
# source size), rotation (radians), shear.
_PARAMS = ("log_zoom", "pan_x", "pan_y", "rotation", "shear")


@dataclass
class Pseudo4DConfig:
    """Parameters of the ``pseudo4d`` stage.

    Attributes:
        num_views: ``V``, the number of rows (transforms) of each grid.
        grids_per_clip: how many grids (different motions) to make from each training clip.
        test_grids_per_clip: how many grids to make from each held-out clip (the clips of the
            videos held out by ``videos.test_videos``), made the same way: ``sample_4d``
            scores the 4D variants on them.
        seed: base seed; each grid's motion depends only on (seed, clip name, grid index),
            for training and held-out clips alike.
        base_crop: side of the base view's center crop as a fraction of the frame, in (0, 1];
            smaller leaves more room for motion.
        zoom_max: the last view zooms by a factor in ``[1/zoom_max, zoom_max]``.
        pan_max: the last view pans by up to this fraction of the frame along x and y.
        rotation_max_deg: the last view rolls by up to this many degrees.
        shear_max: the last view shears by up to this amount.
        bow: curvature of the path: each parameter bends by up to ``bow`` times its range
            in the middle of the path (0 = straight, constant-velocity path).
        preview: previews of the first grids.
    """

    num_views: int = 8
    grids_per_clip: int = 1
    test_grids_per_clip: int = 1
    seed: int = 0
    base_crop: float = 0.75
    zoom_max: float = 1.3
    pan_max: float = 0.15
    rotation_max_deg: float = 8.0
    shear_max: float = 0.03
    bow: float = 0.3
    preview: PreviewConfig = field(default_factory=lambda: PreviewConfig(max_items=3, cell_height=72))

    def __post_init__(self) -> None:
        require(self.num_views >= 2, "num_views", "must be >= 2")
        require(self.grids_per_clip >= 1, "grids_per_clip", "must be >= 1")
        require(self.test_grids_per_clip >= 1, "test_grids_per_clip", "must be >= 1")
        require(0 < self.base_crop <= 1, "base_crop", "must be in (0, 1]")
        require(1 <= self.zoom_max <= 4, "zoom_max", "must be in [1, 4]")
        require(0 <= self.pan_max <= 0.5, "pan_max", "must be in [0, 0.5]")
        require(0 <= self.rotation_max_deg <= 45, "rotation_max_deg", "must be in [0, 45]")
        require(0 <= self.shear_max <= 0.5, "shear_max", "must be in [0, 0.5]")
        require(0 <= self.bow <= 1, "bow", "must be in [0, 1]")


def sample_motion(cfg: Pseudo4DConfig, rng: np.random.Generator) -> np.ndarray:
    """Sample a smooth path of motion parameters ``[V, 5]`` starting at zero (identity).

    Each parameter follows ``p(s) = end * s + bend * sin(pi * s)`` for ``s = v / (V - 1)``:
    a smooth (infinitely differentiable) camera-like path, straight when ``bend = 0``.
    """
    limits = np.array([np.log(cfg.zoom_max), cfg.pan_max, cfg.pan_max, np.deg2rad(cfg.rotation_max_deg), cfg.shear_max])
    end = rng.uniform(-1.0, 1.0, size=5) * limits
    bend = rng.uniform(-1.0, 1.0, size=5) * limits * cfg.bow
    s = np.linspace(0.0, 1.0, cfg.num_views)[:, None]
    return end[None] * s + bend[None] * np.sin(np.pi * s)


def motion_to_affines(params: np.ndarray, src_hw: tuple[int, int], out_hw: tuple[int, int], base_crop: float) -> np.ndarray:
    """Turn motion parameters ``[V, 5]`` into affine maps ``[V, 2, 3]`` from output pixel
    coordinates ``(x, y)`` to source pixel coordinates (the ``WARP_INVERSE_MAP`` convention).

    ``src = c_src + base * R(rot) @ Sh(shear) @ (p - c_out) / zoom + pan * (W_src, H_src)``.
    """
    (hs, ws), (ho, wo) = src_hw, out_hw
    c_src = np.array([(ws - 1) / 2, (hs - 1) / 2])
    c_out = np.array([(wo - 1) / 2, (ho - 1) / 2])
    base = base_crop * min(ws / wo, hs / ho)
    affines = np.zeros((len(params), 2, 3))
    for v, (log_zoom, pan_x, pan_y, rot, shear) in enumerate(params):
        c, s = np.cos(rot), np.sin(rot)
        lin = base * np.array([[c, -s], [s, c]]) @ np.array([[1.0, shear], [0.0, 1.0]]) / np.exp(log_zoom)
        affines[v, :, :2] = lin
        affines[v, :, 2] = c_src - lin @ c_out + np.array([pan_x * ws, pan_y * hs])
    return affines


def affines_valid(affines: np.ndarray, src_hw: tuple[int, int], out_hw: tuple[int, int]) -> bool:
    """True if every output pixel center of every view maps inside the source frame."""
    (hs, ws), (ho, wo) = src_hw, out_hw
    corners = np.array([[0, 0, 1], [wo - 1, 0, 1], [0, ho - 1, 1], [wo - 1, ho - 1, 1]], dtype=float)
    src = np.einsum("vij,kj->vki", affines, corners)
    eps = 1e-9
    return bool((src[..., 0] >= -eps).all() and (src[..., 0] <= ws - 1 + eps).all()
                and (src[..., 1] >= -eps).all() and (src[..., 1] <= hs - 1 + eps).all())


def fit_motion(params: np.ndarray, src_hw: tuple[int, int], out_hw: tuple[int, int], base_crop: float) -> tuple[np.ndarray, float]:
    """Scale the whole motion path by the largest factor in [0, 1] that keeps every view
    inside the source (crop-to-valid). Returns ``(affines [V, 2, 3], factor)``."""
    full = motion_to_affines(params, src_hw, out_hw, base_crop)
    if affines_valid(full, src_hw, out_hw):
        return full, 1.0
    lo, hi = 0.0, 1.0
    if not affines_valid(motion_to_affines(params * lo, src_hw, out_hw, base_crop), src_hw, out_hw):
        raise ConfigError(f"pseudo4d.base_crop = {base_crop} leaves no valid window for output {out_hw} from source "
                          f"{src_hw}; lower pseudo4d.base_crop")
    for _ in range(30):
        mid = (lo + hi) / 2
        if affines_valid(motion_to_affines(params * mid, src_hw, out_hw, base_crop), src_hw, out_hw):
            lo = mid
        else:
            hi = mid
    return motion_to_affines(params * lo, src_hw, out_hw, base_crop), lo


def warp_frame(frame: np.ndarray, affine: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Apply one affine (output -> source pixel map ``[2, 3]``) to ``[H, W, 3]`` uint8 with
    bilinear sampling; returns ``[out_h, out_w, 3]`` uint8."""
    return cv2.warpAffine(frame, affine, (out_hw[1], out_hw[0]), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT_101)


def grid_seed(seed: int, clip_name: str, index: int) -> list[int]:
    """Seed sequence for one grid: stable under adding or removing other clips."""
    return [seed, zlib.crc32(clip_name.encode()), index]


def make_pseudo4d_grid(clip: np.ndarray, cfg: Pseudo4DConfig, rng: np.random.Generator,
                       out_hw: tuple[int, int] | None = None) -> Grid:
    """Build one pseudo-4D grid from a clip ``[T, H, W, 3]`` uint8.

    Returns the grid ``rgb [V, T, H', W', 3]`` with the first row and column marked as
    conditioning; ``meta['affines']`` holds the ``[V, 2, 3]`` maps and
    ``meta['motion_scale']`` the crop-to-valid factor applied to the sampled motion.
    """
    src_hw = clip.shape[1:3]
    out_hw = tuple(out_hw or src_hw)
    params = sample_motion(cfg, rng)
    affines, factor = fit_motion(params, src_hw, out_hw, cfg.base_crop)
    rgb = np.stack([np.stack([warp_frame(frame, a, out_hw) for frame in clip]) for a in affines])
    meta = {"affines": affines.tolist(), "motion_scale": factor, "motion_params": list(_PARAMS)}
    return Grid(rgb=rgb, cond_mask=default_cond_mask(*rgb.shape[:2]), meta=meta)


def _clip_grids(path: Path, per_clip: int, out: Path, cfg: Pseudo4DConfig) -> list[tuple[str, Grid]]:
    """The ``per_clip`` grids of one clip file, each saved under ``out``: ``[(name, grid)]``."""
    clip = load_clip(path)
    name = path.name.removesuffix(".clip.npz")
    made = []
    for k in range(per_clip):
        seed = grid_seed(cfg.seed, name, k)
        grid = make_pseudo4d_grid(clip.rgb, cfg, np.random.default_rng(seed))
        grid.meta.update(source=clip.meta.get("source", name), clip=name, seed=seed, fps=clip.meta.get("fps"),
                         kind="pseudo4d")
        save_grid(out / f"{name}_g{k}.grid.npz", grid)
        made.append((f"{name}_g{k}", grid))
    return made


def write_pseudo4d_grids(clips: list[Path], per_clip: int, final: str, cfg: Pseudo4DConfig,
                         desc: str) -> Iterator[tuple[str, Grid]]:
    """Make ``per_clip`` grids ``<clip>_g<k>`` (``rgb [V, T, H, W, 3]``) of every clip file,
    seeded by :func:`grid_seed`, save each under ``final`` and yield
    ``(name, grid)`` in the order of ``clips``. Clips are made on threads, one per CPU this
    process may use (OpenCV's warps and the compressed writes release the GIL); each grid
    depends only on its clip and seed, so the files are the same on any number of CPUs.
    ``final`` is written atomically: it is replaced as a whole once the iteration completes
    (an empty directory without clips)."""
    workers = max(1, min(len(clips), len(os.sched_getaffinity(0))))
    with atomic_dir(final) as tmp, ThreadPoolExecutor(max_workers=workers) as pool:
        for made in tqdm(pool.map(lambda path: _clip_grids(path, per_clip, tmp, cfg), clips), total=len(clips),
                         desc=desc, unit="clip"):
            yield from made
