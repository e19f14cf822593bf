"""Which grid cells the fit holds out, and PSNR/SSIM of the renders on fitted and held-out cells."""

from __future__ import annotations

import numpy as np
import torch

from fourreal.evaluation.metrics import psnr, ssim_tensor


def holdout_mask(views: int, times: int, every: int) -> np.ndarray:
    """``[V, T]`` bool: cells left out of the fit (every ``every``-th cell outside the first
    row and column, in row-major order)."""
    mask = np.zeros((views, times), bool)
    idx = [(i, j) for i in range(1, views) for j in range(1, times)]
    for n, (i, j) in enumerate(idx):
        mask[i, j] = n % every == every // 2
    return mask


def scores(renders: np.ndarray, rgb: np.ndarray, held: np.ndarray) -> dict[str, float]:
    """PSNR/SSIM of ``renders`` against the grid ``rgb`` (both ``[V, T, H, W, 3]`` uint8) on the
    fitted and the held-out cells (``held [V, T]``): ``fit_psnr``, ``fit_ssim``, ``heldout_psnr``,
    ``heldout_ssim`` (a pair only when it has cells)."""
    def to_t(x):
        return torch.as_tensor(x, dtype=torch.float32).permute(0, 3, 1, 2) / 127.5 - 1

    out = {}
    for name, mask in (("fit", ~held), ("heldout", held)):
        if mask.any():
            a, b = to_t(renders[mask]), to_t(rgb[mask])
            out[f"{name}_psnr"], out[f"{name}_ssim"] = round(psnr(a, b), 3), round(float(ssim_tensor(a, b)), 4)
    return out
