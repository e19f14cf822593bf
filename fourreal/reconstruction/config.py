"""The ``reconstruct`` stage's parameters and where a reconstruction runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from fourreal.running import layout
from fourreal.running.config import require
from fourreal.running.errors import UserError


class ReconstructionInputError(UserError, ValueError):
    """A grid or reconstruction directory that cannot be reconstructed or exported as given
    (too few tracked points, an index out of range, a file without intrinsics)."""


@dataclass
class ReconstructConfig:
    """Parameters of the ``reconstruct`` stage.

    Attributes:
        sources: directories of ``.grid.npz`` files with intrinsics (held-out renders,
            generated grids of ``sample_4d``).
        max_grids: reconstruct at most this many of each source (sorted by name; 0 = all).
        depth: ``grid`` (the grid's own depth, as renders have), ``model`` (``depth_model``)
            or ``auto`` (the grid's depth when it has one, else the model).
        depth_model: ``train_depth``'s model directory, or a pretrained TorchScript file.
        keyframes: views of the freeze-time column whose pixels seed points.
        stride: pixel stride of the seeds in a keyframe.
        fb_threshold: forward-backward flow consistency in pixels.
        rigid_outlier: a tracked position farther than this many times the median residual
            from the view's rigid motion counts as lost.
        prune_steps, prune_threshold, prune_lr: floater removal by opacity optimisation.
        fit_steps, lr, batch_cells: the deformable fit (Adam; cells per step); positions
            move at ``lr / 100`` (scaled by the cloud's extent), appearance at ``2 lr``.
        deform_lr: learning rate of the temporal MLP.
        ssim_weight, smooth_weight: loss weights.
        holdout_every: every n-th generated cell (not in the first row or column) is held out.
        backend: rasterizer (``auto``: gsplat on CUDA, the torch compositor on CPU).
        seed: seeds the fit's initialisation and cell sampling.
        compile: run the fit's per-step work around the rasterizer (the temporal MLP and
            view offsets before it, the L1, SSIM and smoothness terms after it) under
            ``torch.compile`` (:mod:`~fourreal.reconstruction.fit`).
        export: also write each grid's per-frame exports into ``<grid>/export/`` (every time
            step: 3DGS PLY, point cloud and fused mesh, and a sweep mp4; see
            :mod:`~fourreal.reconstruction.export`).
    """

    sources: list[str] = field(default_factory=lambda: [layout.RENDER_TEST, f"{layout.SAMPLE_4D}/soft"])
    max_grids: int = 1
    depth: Literal["auto", "grid", "model"] = "auto"
    depth_model: str = layout.DEPTH_MODEL
    keyframes: int = 3
    stride: int = 2
    fb_threshold: float = 1.0
    rigid_outlier: float = 4.0
    prune_steps: int = 40
    prune_threshold: float = 0.2
    prune_lr: float = 0.1
    fit_steps: int = 150
    lr: float = 0.01
    deform_lr: float = 0.01
    batch_cells: int = 4
    ssim_weight: float = 0.2
    smooth_weight: float = 0.1
    holdout_every: int = 5
    backend: Literal["auto", "gsplat", "torch"] = "auto"
    seed: int = 0
    compile: bool = False
    export: bool = False

    def __post_init__(self) -> None:
        require(self.keyframes >= 1, "keyframes", "must be >= 1")
        require(self.stride >= 1, "stride", "must be >= 1")
        require(self.fit_steps >= 1, "fit_steps", "must be >= 1")
        require(self.batch_cells >= 1, "batch_cells", "must be >= 1")
        require(self.holdout_every >= 2, "holdout_every", "must be >= 2")


def compute_device(cfg: ReconstructConfig) -> torch.device:
    """Where a reconstruction runs: CUDA when available (unless the torch backend is forced)."""
    return torch.device("cuda" if torch.cuda.is_available() and cfg.backend != "torch" else "cpu")
