"""Image metrics against ground truth: PSNR and SSIM of frames or grids in [-1, 1]."""

from __future__ import annotations

import numpy as np
import torch


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two tensors of frames in [-1, 1] (any equal shapes)."""
    mse = ((a.float().clamp(-1, 1) - b.float().clamp(-1, 1)) / 2).pow(2).mean().item()
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean SSIM over frames ``[..., 3, H, W]`` in [-1, 1] (Gaussian window, sigma 1.5,
    as in Wang et al. 2004, on the [0, 1] range; window shrunk for tiny frames)."""
    return float(ssim_tensor(a.detach(), b.detach()))


def ssim_tensor(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """:func:`ssim` as a differentiable scalar tensor (for losses)."""
    x = (a.float().clamp(-1, 1) + 1) / 2
    y = (b.float().clamp(-1, 1) + 1) / 2
    x, y = x.reshape(-1, *x.shape[-3:]), y.reshape(-1, *y.shape[-3:])
    size = min(11, x.shape[-1] // 2 * 2 - 1, x.shape[-2] // 2 * 2 - 1)
    coords = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(coords**2) / (2 * 1.5**2))
    g = (g / g.sum())
    kernel = (g[:, None] * g[None, :]).expand(x.shape[1], 1, size, size).to(x.device)

    def blur(z):
        return torch.nn.functional.conv2d(z, kernel, groups=z.shape[1])

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.mean()
