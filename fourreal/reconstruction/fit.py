"""The deformable fit (supplementary Sec. 6, step 3): colors, scales, opacities, positions and
the temporal MLP ``Δp^t`` fitted to the grid's cells with Adam, a few random cells per step,
under :func:`fourreal.reconstruction.loss.reconstruction_loss`; some cells are held out to
measure generalisation."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from fourreal.reconstruction.config import ReconstructConfig, compute_device
from fourreal.reconstruction.deformation import Deformable
from fourreal.reconstruction.init import Canonical
from fourreal.reconstruction.loss import reconstruction_loss
from fourreal.reconstruction.scoring import holdout_mask


def optimizer(model: Deformable, cfg: ReconstructConfig) -> torch.optim.Adam:
    """Adam over the model's parameters: positions at ``lr / 100`` (scaled by the cloud's
    extent), appearance at ``2 lr``, the temporal MLP at ``deform_lr`` and learned per-view
    offsets (if any) at ``lr / 10`` (scaled by the extent)."""
    g = model.gaussians
    groups = [
        {"params": [g.means], "lr": cfg.lr * 0.01 * model.deform.extent},
        {"params": [g.log_scales, g.opacity_logits, g.color_logits], "lr": cfg.lr * 2},
        {"params": model.deform.parameters(), "lr": cfg.deform_lr},
    ]
    if isinstance(model.offsets, torch.nn.Parameter):
        groups.append({"params": [model.offsets], "lr": cfg.lr * 0.1 * model.deform.extent})
    return torch.optim.Adam(groups)


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
    the per-view offsets too, and a ``regularizer(model, rng)`` loss (e.g. SDS) added each step."""
    dev = compute_device(cfg)
    v, t, h, w = rgb.shape[:4]
    model = (model or Deformable(canonical, t, learn_offsets)).to(dev)
    held = holdout_mask(v, t, cfg.holdout_every)
    train_cells = cells or [(i, j) for i in range(v) for j in range(t) if not held[i, j]]
    target = torch.as_tensor(rgb, dtype=torch.float32, device=dev) / 255
    K = torch.as_tensor(Ks, dtype=torch.float32, device=dev)
    bg = torch.as_tensor(background, dtype=torch.float32, device=dev)
    opt = optimizer(model, cfg)
    rng = np.random.default_rng(cfg.seed)
    losses = []
    for _ in tqdm(range(steps or cfg.fit_steps), desc="deformable fit", unit="step", disable=not progress, mininterval=5.0):
        pick = [train_cells[k] for k in rng.choice(len(train_cells), size=min(cfg.batch_cells, len(train_cells)), replace=False)]
        pred = model.render_cells(pick, K[[i for i, _ in pick]], h, w, bg, cfg.backend)
        truth = torch.stack([target[i, j] for i, j in pick])
        loss = reconstruction_loss(pred, truth, model, t, rng, cfg)
        if regularizer is not None:
            loss = loss + regularizer(model, rng)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"reconstruction loss is {loss.item()}; lower reconstruct.lr")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model, losses, held
