"""4Real (NeurIPS 2024), the optimisation pipeline that 4Real-Video's feed-forward 4D model
replaces, on this project's Gaussians, deformation and base video model.

Given a reference video (the grid's first row) and a freeze-time video of its first frame
(the first column):

1. Canonical 3D Gaussians from the freeze-time video: initialised by dense tracking (as the
   reconstruction does), fitted jointly with learnable per-frame deformations (per-view
   offsets) that absorb the freeze-time video's inconsistency.
2. Temporal deformation fitted to the reference video (and the freeze-time video at time 0),
   regularised by video score distillation with the base model: multi-view SDS on rendered
   freeze-time videos (a time, several views; freeze-time mode) and temporal SDS on rendered
   fixed-view videos (a view, several times; dynamic mode).

Rendering every (view, time) cell of the result gives a grid comparable with the 4D model's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from fourreal.baseline.sds import sds_loss
from fourreal.reconstruction.config import ReconstructConfig, compute_device
from fourreal.reconstruction.deformation import Deformable
from fourreal.reconstruction.fit import fit
from fourreal.reconstruction.init import Canonical, background_color, canonical_init
from fourreal.reconstruction.output import render_grid
from fourreal.reconstruction.prune import prune_floaters
from fourreal.running import layout
from fourreal.running.config import require


@dataclass
class Baseline4RealConfig:
    """Parameters of the ``baseline_4real`` stage.

    Attributes:
        base_model: ``train_base``'s model directory (the SDS prior).
        depth_model: depth network for the freeze-time video (``train_depth``'s or a TorchScript file).
        max_grids: run on at most this many test grids (sorted by name; 0 = all).
        canonical_steps: steps of stage 1 (canonical Gaussians + per-frame deformations).
        temporal_steps: steps of stage 2 (temporal deformation + SDS).
        per_frame_deformation: learn the per-view offsets in stage 1 (4Real's ablation: off).
        multiview_sds, temporal_sds: the two SDS terms (4Real's ablations: either off).
        sds_weight: weight of each SDS term against the photometric loss.
        sds_frames: frames of each rendered SDS video (<= the grid's views and times).
        sds_sigma: range of flow times drawn for SDS.
        seed: optimisation seed.
    """

    base_model: str = layout.BASE_MODEL
    depth_model: str = layout.DEPTH_MODEL
    max_grids: int = 0
    canonical_steps: int = 100
    temporal_steps: int = 150
    per_frame_deformation: bool = True
    multiview_sds: bool = True
    temporal_sds: bool = True
    sds_weight: float = 0.05
    sds_frames: int = 4
    sds_sigma: tuple[float, float] = (0.2, 0.8)
    seed: int = 0

    def __post_init__(self) -> None:
        self.sds_sigma = tuple(self.sds_sigma)
        require(self.canonical_steps >= 1, "canonical_steps", "must be >= 1")
        require(self.temporal_steps >= 1, "temporal_steps", "must be >= 1")
        require(self.sds_weight >= 0, "sds_weight", "must be >= 0")
        require(self.sds_frames >= 2, "sds_frames", "must be >= 2 (one conditioning frame + one to score)")
        require(len(self.sds_sigma) == 2 and 0 < self.sds_sigma[0] <= self.sds_sigma[1] < 1, "sds_sigma",
                "two flow times 0 < lo <= hi < 1")


def sds_regularizer(base: torch.nn.Module, Ks: np.ndarray, background: np.ndarray, height: int, width: int,
                    cfg: Baseline4RealConfig, recon: ReconstructConfig):
    """The SDS term of stage 2 as a ``regularizer(model, rng)`` for :func:`fourreal.reconstruction.fit.fit`:
    a rendered fixed-view video (random view, ``sds_frames`` consecutive times) scored in
    dynamic mode plus a rendered freeze-time video (random time, consecutive views) scored in
    freeze-time mode, each conditioned on its first rendered frame."""
    dev = compute_device(recon)
    K = torch.as_tensor(Ks, dtype=torch.float32, device=dev)
    bg = torch.as_tensor(background, dtype=torch.float32, device=dev)

    def video(model: Deformable, cells: list[tuple[int, int]]) -> torch.Tensor:
        rgb = model.render_cells(cells, K[[v for v, _ in cells]], height, width, bg, recon.backend)
        return rgb.permute(0, 3, 1, 2)[None] * 2 - 1  # [1, F, 3, H, W] in [-1, 1]

    def regularizer(model: Deformable, rng: np.random.Generator) -> torch.Tensor:
        views, times = model.offsets.shape[0], model.times
        f = min(cfg.sds_frames, views, times)
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        loss = torch.zeros((), device=dev)
        if cfg.temporal_sds:
            v, t0 = int(rng.integers(0, views)), int(rng.integers(0, times - f + 1))
            loss = loss + sds_loss(base, video(model, [(v, t0 + k) for k in range(f)]), "dynamic", cfg.sds_sigma, 1, gen)
        if cfg.multiview_sds:
            t, v0 = int(rng.integers(0, times)), int(rng.integers(0, views - f + 1))
            loss = loss + sds_loss(base, video(model, [(v0 + k, t) for k in range(f)]), "freeze_time", cfg.sds_sigma, 1, gen)
        return cfg.sds_weight * loss

    return regularizer


def optimize_4real(row: np.ndarray, column: np.ndarray, depth: np.ndarray, Ks: np.ndarray, base: torch.nn.Module,
                   cfg: Baseline4RealConfig, recon: ReconstructConfig, progress: bool = True) -> dict:
    """4Real for a reference video ``row [T, H, W, 3]`` and a freeze-time video ``column
    [V, H, W, 3]`` (uint8, sharing their first frame) with the column's depth ``[V, H, W]``
    and intrinsics ``[V, 3, 3]``. Returns the model, the rendered grid ``[V, T, H, W, 3]``,
    the losses of both stages and timings (seconds)."""
    torch.manual_seed(cfg.seed)
    v, t, (h, w) = len(column), len(row), row.shape[1:3]
    grid = np.zeros((v, t, h, w, 3), np.uint8)
    grid[:, 0], grid[0, :] = column, row
    timings = {}
    start = time.perf_counter()
    bg = background_color(column, depth)
    canonical = canonical_init(column, depth, Ks, recon)
    canonical, _ = prune_floaters(canonical, column, Ks, bg, recon)
    stage1, losses1, _ = fit(grid[:, :1], Ks, canonical, bg, recon, progress, steps=cfg.canonical_steps,
                             cells=[(i, 0) for i in range(v)], learn_offsets=cfg.per_frame_deformation)
    timings["canonical_s"] = time.perf_counter() - start
    start = time.perf_counter()
    learned = Canonical(stage1.gaussians.cloud(), stage1.offsets.detach().cpu().numpy(), canonical.center)
    base = base.to(compute_device(recon)).eval().requires_grad_(False)
    regularizer = sds_regularizer(base, Ks, bg, h, w, cfg, recon) if cfg.sds_weight > 0 else None
    cells = [(0, j) for j in range(t)] + [(i, 0) for i in range(1, v)]
    model, losses2, _ = fit(grid, Ks, learned, bg, recon, progress, steps=cfg.temporal_steps, cells=cells,
                            regularizer=regularizer)
    timings["temporal_s"] = time.perf_counter() - start
    renders = render_grid(model, Ks, v, t, h, w, bg, recon.backend)
    return {"model": model, "renders": renders, "background": bg, "losses": losses1 + losses2,
            "timings": {k: round(s, 2) for k, s in timings.items()}}
