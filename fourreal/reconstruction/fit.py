"""The deformable fit (supplementary Sec. 6, step 3): colors, scales, opacities, positions and
the temporal MLP ``Δp^t`` fitted to the grid's cells with Adam, a few random cells per step,
under :func:`fourreal.reconstruction.loss.reconstruction_loss`; some cells are held out to
measure generalisation. The per-step work around the rasterizer is two pure tensor functions,
:func:`cell_positions` and :func:`~fourreal.reconstruction.loss.reconstruction_loss`, run
eagerly or under ``torch.compile`` (``reconstruct.compile``)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from fourreal.reconstruction.config import ReconstructConfig, compute_device
from fourreal.reconstruction.deformation import Deformable
from fourreal.reconstruction.gaussians import render
from fourreal.reconstruction.init import Canonical
from fourreal.reconstruction.loss import reconstruction_loss
from fourreal.reconstruction.profiling import fit_range
from fourreal.reconstruction.scoring import holdout_mask


def optimizer(model: Deformable, cfg: ReconstructConfig) -> torch.optim.Adam:
    """Adam over the model's parameters: positions at ``lr / 100`` (scaled by the cloud's
    extent), appearance at ``2 lr``, the temporal MLP at ``deform_lr`` and learned per-view
    offsets (if any) at ``lr / 10`` (scaled by the extent). On CUDA, torch's fused Adam (a few
    kernels a step instead of several per parameter)."""
    g = model.gaussians
    groups = [
        {"params": [g.means], "lr": cfg.lr * 0.01 * model.deform.extent},
        {"params": [g.log_scales, g.opacity_logits, g.color_logits], "lr": cfg.lr * 2},
        {"params": model.deform.parameters(), "lr": cfg.deform_lr},
    ]
    if isinstance(model.offsets, torch.nn.Parameter):
        groups.append({"params": [model.offsets], "lr": cfg.lr * 0.1 * model.deform.extent})
    return torch.optim.Adam(groups, fused=g.means.is_cuda)


def cell_positions(model: Deformable, views: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """``[B, N, 3]`` Gaussian positions of ``B`` cells at integer views ``views [B]`` (long)
    and normalised times ``times [B]``: the per-view offsets gathered on the device and the
    temporal MLP (:meth:`Deformable.means_at`). A pure tensor function, like
    :func:`~fourreal.reconstruction.loss.reconstruction_loss`: the fit compiles both with
    ``reconstruct.compile``."""
    return model.means_at(model.offsets[views], times)


def read_losses(pending: list[torch.Tensor], first_step: int) -> list[float]:
    """The losses ``pending`` (on the device) of the steps from ``first_step`` (1-based) on, as
    floats read back in one transfer; raises ``FloatingPointError`` naming the first step
    whose loss is NaN or inf."""
    values = torch.stack(pending).cpu().tolist()
    for i, value in enumerate(values):
        if not np.isfinite(value):
            raise FloatingPointError(f"reconstruction loss is {value} at step {first_step + i}; lower reconstruct.lr")
    return values


def to_device(indices: np.ndarray, device: torch.device) -> torch.Tensor:
    """``indices [B]`` as a tensor on ``device``; on CUDA copied through pinned memory without
    the host waiting (a plain copy from pageable memory synchronises the stream)."""
    x = torch.from_numpy(indices)
    return x.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else x


READ_EVERY = 50
"""The fit reads its losses back from the device (and checks them) every this many steps and
at the end; in between the host never waits for the device."""


def fit(rgb: np.ndarray, Ks: np.ndarray, canonical: Canonical, background: np.ndarray, cfg: ReconstructConfig,
        progress: bool = True, *, steps: int | None = None, model: Deformable | None = None,
        cells: list[tuple[int, int]] | None = None, learn_offsets: bool = False,
        regularizer: Callable[[Deformable, np.random.Generator], torch.Tensor] | None = None,
        ) -> tuple[Deformable, list[float], np.ndarray]:
    """Fit the deformable Gaussians to a grid ``rgb [V, T, H, W, 3]`` (uint8) with intrinsics
    ``Ks [V, 3, 3]`` and ``background [3]``. Returns the model, the loss per step and the
    held-out mask ``[V, T]``.

    By default every cell but the held-out ones is a target and the model starts from
    ``canonical``. Keyword arguments serve 4Real's optimisation: ``model`` to continue from,
    ``cells`` to fit (only those cells of ``rgb`` are read), ``learn_offsets`` to optimise
    the per-view offsets too, and a ``regularizer(model, rng)`` loss (e.g. SDS) added each step.

    Each step copies the picked cells' indices to the device (:func:`to_device`) and nothing
    back: the cells' views, times, intrinsics and targets are gathered there, and the losses are read back
    every :data:`READ_EVERY` steps (:func:`read_losses`). The step's parts run in named profiler
    ranges (``fit.positions``, ``fit.render``, ``fit.loss``; :mod:`fourreal.reconstruction.profiling`)."""
    dev = compute_device(cfg)
    v, t, h, w = rgb.shape[:4]
    model = (model or Deformable(canonical, t, learn_offsets)).to(dev)
    held = holdout_mask(v, t, cfg.holdout_every)
    train_cells = cells or [(i, j) for i in range(v) for j in range(t) if not held[i, j]]
    target = torch.as_tensor(rgb, dtype=torch.float32, device=dev) / 255
    K = torch.as_tensor(Ks, dtype=torch.float32, device=dev)
    bg = torch.as_tensor(background, dtype=torch.float32, device=dev)
    cell_view, cell_time = torch.as_tensor(train_cells, device=dev).T  # [C] each: the cells' views, time indices
    time_of = torch.as_tensor([model.normalised_time(j) for j in range(t)], dtype=torch.float32, device=dev)  # [T]
    extent = model.deform.extent  # read once: the loss takes it as a constant
    positions, loss_of = cell_positions, reconstruction_loss
    if cfg.compile:
        positions, loss_of = torch.compile(positions), torch.compile(loss_of)
    opt = optimizer(model, cfg)
    rng = np.random.default_rng(cfg.seed)
    losses, pending = [], []
    g = model.gaussians
    total = steps or cfg.fit_steps
    for step in tqdm(range(total), desc="deformable fit", unit="step", disable=not progress, mininterval=5.0):
        pick = to_device(rng.choice(len(train_cells), size=min(cfg.batch_cells, len(train_cells)), replace=False), dev)
        views, times = cell_view[pick], cell_time[pick]
        with fit_range("fit.positions"):
            means = positions(model, views, time_of[times])
        with fit_range("fit.render"):
            pred = render(means, g.scales, g.colors, g.opacities, K[views], h, w, bg, cfg.backend)[0]
        j = int(rng.integers(0, t - 1)) if cfg.smooth_weight > 0 and t > 1 else None
        smooth_times = None if j is None else time_of[j:j + 2]
        with fit_range("fit.loss"):
            loss = loss_of(pred, target[views, times], model.deform, g.means, smooth_times, extent, cfg.ssim_weight,
                           cfg.smooth_weight)
        if regularizer is not None:
            loss = loss + regularizer(model, rng)
        opt.zero_grad()
        loss.backward()
        opt.step()
        pending.append(loss.detach())
        if len(pending) == READ_EVERY or step == total - 1:
            losses += read_losses(pending, step + 2 - len(pending))
            pending.clear()
    return model, losses, held
