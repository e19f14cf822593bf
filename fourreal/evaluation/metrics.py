"""Image metrics against ground truth: PSNR and SSIM of frames or grids in [-1, 1]."""

from __future__ import annotations

import numpy as np
import torch


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two tensors of frames in [-1, 1] (any equal shapes)."""
    return _decibels(((a.float().clamp(-1, 1) - b.float().clamp(-1, 1)) / 2).pow(2).mean().item())


def _decibels(mse: float) -> float:
    """PSNR in dB of a mean squared error on the [0, 1] range; ``inf`` for 0."""
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean SSIM over frames ``[..., 3, H, W]`` in [-1, 1] (Gaussian window, sigma 1.5,
    as in Wang et al. 2004, on the [0, 1] range; window shrunk for tiny frames)."""
    return float(ssim_tensor(a.detach(), b.detach()))


def ssim_tensor(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """:func:`ssim` as a differentiable scalar tensor (for losses)."""
    return ssim_map(a, b).mean()


def ssim_map(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The local SSIM of frames ``[..., 3, H, W]`` in [-1, 1], per channel: ``[N, 3, H - s + 1,
    W - s + 1]`` (frames flattened to ``N``; window ``s`` as in :func:`ssim`, no padding, so
    entry ``(i, j)`` is the window centred on pixel ``(i + s // 2, j + s // 2)``)."""
    # contiguous NCHW: frames from a renderer come as [N, H, W, 3] permuted, a channels-last
    # layout that the blur's cuDNN depthwise convolutions would keep (inside the fit on an H200
    # they took 4.4 ms a step, against 1.8 ms for the whole SSIM on contiguous frames)
    x = ((a.float().clamp(-1, 1) + 1) / 2).reshape(-1, *a.shape[-3:]).contiguous()
    y = ((b.float().clamp(-1, 1) + 1) / 2).reshape(-1, *b.shape[-3:]).contiguous()
    size = ssim_window(*x.shape[-2:])
    g = ssim_weights(size, x.device)  # built where x is: no copy
    # the five local means in one separable blur (the 2D window is g's outer product):
    # a column then a row pass over every channel of x, y, x², y², xy
    c = x.shape[1]
    stats = torch.cat([x, y, x * x, y * y, x * y], 1)  # [N, 5C, H, W]
    k = stats.shape[1]
    blurred = torch.nn.functional.conv2d(stats, g.view(1, 1, size, 1).expand(k, 1, size, 1), groups=k)
    blurred = torch.nn.functional.conv2d(blurred, g.view(1, 1, 1, size).expand(k, 1, 1, size), groups=k)
    return ssim_from_means(*blurred.split(c, 1))


def ssim_weights(size: int, device: torch.device | str) -> torch.Tensor:
    """The normalised 1D Gaussian window of :func:`ssim` (sigma 1.5): ``[size]`` float32."""
    coords = torch.arange(size, dtype=torch.float32, device=device) - size // 2
    g = torch.exp(-(coords**2) / (2 * 1.5**2))
    return g / g.sum()


def ssim_from_means(mx: torch.Tensor, my: torch.Tensor, mxx: torch.Tensor, myy: torch.Tensor,
                    mxy: torch.Tensor) -> torch.Tensor:
    """Local SSIM from the windowed means of ``x``, ``y``, ``x²``, ``y²`` and ``xy`` (frames
    on the [0, 1] range; any equal shapes), with Wang et al.'s constants ``(0.01)²``, ``(0.03)²``."""
    vx, vy, cxy = mxx - mx**2, myy - my**2, mxy - mx * my
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))


def ssim_window(height: int, width: int) -> int:
    """Side of :func:`ssim`'s Gaussian window for ``height x width`` frames: 11, shrunk
    (odd) for tiny frames."""
    return min(11, width // 2 * 2 - 1, height // 2 * 2 - 1)


def masked_psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float | None:
    """PSNR in dB of frames ``[..., 3, H, W]`` in [-1, 1] over the pixels where ``mask
    [..., H, W]`` is True: the MSE of all 3 channels of those pixels, pooled over every
    frame (a frame without such pixels adds nothing). ``inf`` when they match exactly, as
    :func:`psnr`; None when ``mask`` has no True pixel."""
    m = mask.bool().unsqueeze(-3).expand_as(a)
    count = int(m.sum())
    if count == 0:
        return None
    err = ((a.float().clamp(-1, 1) - b.float().clamp(-1, 1)) / 2).pow(2)
    return _decibels((err[m].sum() / count).item())


def masked_ssim(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float | None:
    """SSIM of frames ``[..., 3, H, W]`` in [-1, 1] over the pixels where ``mask [..., H, W]``
    is True: :func:`ssim_map` (the same windows as :func:`ssim`), averaged over the 3 channels,
    then over the window centres inside ``mask``, pooled over every frame (each such pixel
    counts once; a frame without one adds nothing). Pixels within ``s // 2`` of the border
    centre no window and never count, as in :func:`ssim`. None when no window centre is
    inside ``mask``."""
    local = ssim_map(a, b).mean(1)  # [N, h, w]
    h, w = local.shape[-2:]
    r = ssim_window(*a.shape[-2:]) // 2
    centres = mask.bool().reshape(-1, *mask.shape[-2:])[:, r:r + h, r:r + w]
    if not centres.any():
        return None
    return float(local[centres].mean())
