"""The whole reconstruction of one grid ``[V, T, H, W, 3]`` with depth and intrinsics:
tracking-based canonical init, floater pruning, the deformable fit, renders and scores."""

from __future__ import annotations

import time

import numpy as np
import torch

from fourreal.reconstruction.config import ReconstructConfig, compute_device
from fourreal.reconstruction.fit import fit
from fourreal.reconstruction.init import background_color, canonical_init
from fourreal.reconstruction.output import render_grid
from fourreal.reconstruction.prune import prune_floaters
from fourreal.reconstruction.scoring import scores


def reconstruct(rgb: np.ndarray, depth: np.ndarray, Ks: np.ndarray, cfg: ReconstructConfig,
                progress: bool = True) -> dict:
    """The whole reconstruction of one grid ``rgb [V, T, H, W, 3]`` (uint8) with ``depth
    [V, T, H, W]`` (0 = none; column 0's is used) and intrinsics ``Ks [V, 3, 3]``. Returns a
    dict: ``model`` (:class:`~fourreal.reconstruction.deformation.Deformable`), ``canonical``,
    ``renders [V, T, H, W, 3]`` uint8, ``losses`` per step, ``held [V, T]``, ``background [3]``,
    ``scores``, ``stats`` (points, pruned floaters) and ``timings`` (seconds). Seeded by
    ``cfg.seed``; on the CPU bit-reproducible (deterministic kernels are forced for the call),
    on CUDA not (gsplat accumulates gradients with atomics)."""
    torch.manual_seed(cfg.seed)
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(compute_device(cfg).type == "cpu")
    try:
        return _reconstruct(rgb, depth, Ks, cfg, progress)
    finally:
        torch.use_deterministic_algorithms(previous)


def _reconstruct(rgb: np.ndarray, depth: np.ndarray, Ks: np.ndarray, cfg: ReconstructConfig, progress: bool) -> dict:
    """:func:`reconstruct` without the seeding and determinism switches: canonical init on
    column 0, floater pruning, the fit, every cell rendered and scored, each step timed."""
    timings = {}
    start = time.perf_counter()
    column = rgb[:, 0]
    bg = background_color(column, depth[:, 0])
    canonical = canonical_init(column, depth[:, 0], Ks, cfg)
    timings["track_init_s"] = time.perf_counter() - start
    start = time.perf_counter()
    canonical, pruned = prune_floaters(canonical, column, Ks, bg, cfg)
    timings["prune_s"] = time.perf_counter() - start
    start = time.perf_counter()
    model, losses, held = fit(rgb, Ks, canonical, bg, cfg, progress)
    timings["fit_s"] = time.perf_counter() - start
    v, t, h, w = rgb.shape[:4]
    renders = render_grid(model, Ks, v, t, h, w, bg, cfg.backend)
    return {"model": model, "canonical": canonical, "renders": renders, "losses": losses, "held": held,
            "background": bg, "scores": scores(renders, rgb, held),
            "stats": {**canonical.stats, "floaters_pruned": pruned, "final_points": len(canonical.cloud)},
            "timings": {k: round(s, 2) for k, s in timings.items()}}
