"""Video score distillation sampling (SDS) with the base video model (4Real, Sec. 3.3).

A rendered video ``x`` (differentiable in the scene's parameters) is noised to
``x_sigma = (1 - sigma) x + sigma eps`` (:func:`fourreal.training.flow_matching.interpolate`); the
frozen video model predicts the velocity ``v``, hence a denoised estimate
``x_hat = x_sigma - sigma v``. SDS moves ``x`` towards ``x_hat``: its gradient is
``w(sigma) (x - x_hat)`` with ``x_hat`` held constant, written here as the loss
``0.5 w ||x - stopgrad(x_hat)||^2`` (mean over pixels). The conditioning frames (the video's
first ``context`` frames) are given to the model and get no gradient.
"""

from __future__ import annotations

from typing import Callable

import torch

from fourreal.models.dit import CONTEXTS
from fourreal.training.flow_matching import interpolate

# The video model with its generation mode and conditioning frames:
# ``model(x_sigma [B, F, 3, H, W], sigma [B], mode [B], cond=, mask= [B, F]) -> [B, F, 3, H, W]``
ModeVideoVelocity = Callable[..., torch.Tensor]


def sds_loss(model: ModeVideoVelocity, video: torch.Tensor, mode: str, sigma_range: tuple[float, float] = (0.2, 0.8),
             context: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """SDS loss of ``video [B, F, 3, H, W]`` in [-1, 1] under the base model in ``mode``
    (``dynamic`` for fixed-view videos, ``freeze_time`` for freeze-time videos).

    ``sigma`` is drawn uniformly in ``sigma_range`` per video; the weight is
    ``w = sigma / (1 - sigma)`` scaled to 1 on average, so the gradient's size does not
    depend on how much noise was drawn. The first ``context`` frames condition the model."""
    b, f = video.shape[:2]
    if not 0 <= context < f:
        raise ValueError(f"context {context} must be in [0, frames={f})")
    lo, hi = sigma_range
    sigma = lo + (hi - lo) * torch.rand(b, generator=generator, device="cpu").to(video.device)
    noise = torch.randn(video.shape, generator=generator, device="cpu").to(video.device, video.dtype)
    x = video.detach()
    s = sigma.view(b, 1, 1, 1, 1)
    mask = torch.zeros(b, f, device=video.device)
    mask[:, :context] = 1
    mode_id = torch.full((b,), CONTEXTS[mode], device=video.device)
    with torch.no_grad():
        noisy = interpolate(x, noise, sigma)
        noisy[:, :context] = x[:, :context]
        v = model(noisy, sigma, mode_id, cond=x, mask=mask)
        denoised = noisy - s * v
        weight = (s / (1 - s)) / (sigma / (1 - sigma)).mean()
    keep = (1 - mask).view(b, f, 1, 1, 1)
    return 0.5 * (weight * keep * (video - denoised).pow(2)).sum() / (keep.sum() * video[0, 0].numel()).clamp(min=1)
