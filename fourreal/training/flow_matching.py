"""Rectified flow (paper Sec. 3.3, "velocity matching loss of rectified flow").

Data ``x0`` and noise ``eps`` are joined by the straight path
``x_sigma = (1 - sigma) * x0 + sigma * eps`` for ``sigma`` in [0, 1] (``sigma = 1`` is pure
noise). The model predicts the velocity ``v = eps - x0``; sampling integrates
``dx / dsigma = v`` from ``sigma = 1`` down to 0.
"""

from __future__ import annotations

from typing import Literal

import torch


def sample_sigma(n: int, schedule: Literal["uniform", "logit_normal"] = "uniform", mean: float = 0.0,
                 std: float = 1.0, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """Training flow times ``[n]`` in (0, 1): uniform, or logit-normal (``sigmoid(N(mean, std))``)."""
    if schedule == "uniform":
        return torch.rand(n, generator=generator, device=device)
    if schedule == "logit_normal":
        return torch.sigmoid(mean + std * torch.randn(n, generator=generator, device=device))
    raise ValueError(f"unknown timestep schedule {schedule!r}; use 'uniform' or 'logit_normal'")


def training_noise(x0: torch.Tensor, optim, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Flow times ``sigma [B]`` (``optim.sigma_schedule``) and noise shaped like ``x0 [B, ...]``,
    drawn from ``gen`` on the generator's device (a GPU generator draws where the model
    trains; a CPU one keeps CPU runs reproducible) and put on ``x0``'s device."""
    sigma = sample_sigma(x0.shape[0], optim.sigma_schedule, optim.sigma_mean, optim.sigma_std, generator=gen, device=gen.device)
    noise = torch.randn(x0.shape, generator=gen, device=gen.device)
    return sigma.to(x0.device), noise.to(x0.device)


def interpolate(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``x_sigma = (1 - sigma) x0 + sigma noise``; ``sigma [B]`` broadcast over ``x0 [B, ...]``."""
    s = sigma.view(-1, *([1] * (x0.dim() - 1))).to(x0.dtype)
    return (1 - s) * x0 + s * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The velocity of the straight path: ``noise - x0``."""
    return noise - x0


def flow_loss(pred: torch.Tensor, target: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """Mean squared velocity error over the frames to generate.

    ``pred``, ``target``: ``[B, F, ...]``; ``frame_mask [B, F]`` is 1 for conditioning frames,
    which are excluded. Returns a scalar (0 if every frame is conditioning).
    """
    per_frame = (pred.float() - target.float()).pow(2).flatten(2).mean(-1)  # [B, F]
    weight = 1.0 - frame_mask.float()
    return (per_frame * weight).sum() / weight.sum().clamp(min=1.0)
