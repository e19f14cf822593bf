"""The rectified-flow ODE solver: Euler and Heun steps over a sigma schedule, with
classifier-free guidance on the generation mode, conditioning frames held exactly,
deterministic given the seed."""

from __future__ import annotations

from typing import Callable, Literal

import torch
from tqdm import tqdm

# What the solver integrates: velocity(x [B, ...], sigma [B]) -> [B, ...], of the noisy sample and
# the flow time alone (any conditioning is bound inside it).
PlainVelocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def sigma_schedule(steps: int, shift: float = 1.0, device=None) -> torch.Tensor:
    """``steps + 1`` flow times from 1 to 0; ``shift > 1`` spends more steps at high noise
    (``s' = shift * s / (1 + (shift - 1) * s)``)."""
    s = torch.linspace(1.0, 0.0, steps + 1, device=device)
    return shift * s / (1 + (shift - 1) * s)


def initial_noise(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """The noise ``shape`` a solve starts from: standard normal, drawn on the CPU from ``seed``
    (the same on every device)."""
    return torch.randn(shape, generator=torch.Generator(device="cpu").manual_seed(seed))


def guided(velocity_cond: PlainVelocity, velocity_uncond: PlainVelocity | None, scale: float) -> PlainVelocity:
    """Classifier-free guidance: ``v_u + scale * (v_c - v_u)`` (plain ``v_c`` when scale is 1)."""
    if velocity_uncond is None or scale == 1.0:
        return velocity_cond

    def velocity(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        vu = velocity_uncond(x, sigma)
        return vu + scale * (velocity_cond(x, sigma) - vu)

    return velocity


def sample(velocity: PlainVelocity, shape: tuple[int, ...], steps: int = 30, method: Literal["euler", "heun"] = "euler",
           cond: torch.Tensor | None = None, cond_mask: torch.Tensor | None = None, seed: int = 0,
           shift: float = 1.0, device=None, progress: bool = True, noise: torch.Tensor | None = None,
           sigma_max: float = 1.0) -> torch.Tensor:
    """Integrate from noise (``sigma = 1``) to data (``sigma = 0``).

    Args:
        velocity: the model's velocity at ``(x, sigma)``.
        shape: ``[B, F, 3, H, W]`` (or any ``[B, F, ...]``).
        cond, cond_mask: clean frames ``[B, F, ...]`` and ``[B, F]`` (1 = given); given frames
            are put back after every step, so they come out exactly as given.
        seed: the initial noise's seed.
        noise: the initial noise (broadcast to ``shape``) instead of :func:`initial_noise` of ``seed``.
        sigma_max: the highest flow time the model is asked at: steps above it evaluate
            ``velocity`` at ``sigma_max`` (1: none). Training by a logit-normal schedule
            almost never draws sigma near 1, so the first steps ask the model where it
            never learned; the state still starts from pure noise.
    Returns the sample, shaped ``shape``.
    """
    if noise is None:
        noise = initial_noise(shape, seed)
    x = noise.to(device).expand(shape).clone()
    sigmas = sigma_schedule(steps, shift, device)

    def hold(z: torch.Tensor) -> torch.Tensor:
        if cond is None or cond_mask is None:
            return z
        m = cond_mask.to(z.dtype).view(*cond_mask.shape, *([1] * (z.dim() - cond_mask.dim())))
        return z * (1 - m) + cond.to(z.dtype) * m

    x = hold(x)
    b = shape[0]
    for i in tqdm(range(steps), desc=f"sampling ({method})", disable=not progress, leave=False):
        s, s_next = sigmas[i], sigmas[i + 1]
        v = velocity(x, s.clamp(max=sigma_max).expand(b))
        x_next = x + (s_next - s) * v
        if method == "heun" and s_next > 0:
            v2 = velocity(hold(x_next), s_next.clamp(max=sigma_max).expand(b))
            x_next = x + (s_next - s) * (v + v2) / 2
        elif method not in ("euler", "heun"):
            raise ValueError(f"unknown sampler {method!r}; use 'euler' or 'heun'")
        x = hold(x_next)
    return x
