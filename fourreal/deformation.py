"""The temporal deformation field of the reconstruction: an MLP ``Δp^t(p, t)`` of a
canonical position and a time, on sinusoidal encodings of both (supplementary Sec. 6)."""

from __future__ import annotations

import torch
from torch import nn


def encode(x: torch.Tensor, frequencies: int) -> torch.Tensor:
    """``[..., D] -> [..., D * (1 + 2 * frequencies)]``: ``x`` with ``sin/cos(2^k π x)``."""
    k = 2.0 ** torch.arange(frequencies, device=x.device, dtype=x.dtype) * torch.pi
    xk = x[..., None] * k
    return torch.cat([x, torch.sin(xk).flatten(-2), torch.cos(xk).flatten(-2)], -1)


class TimeDeformation(nn.Module):
    """``Δp^t(p, t) = f(p, t) - f(p, 0)``: zero at time 0 (the canonical frame's time) by
    construction; ``f`` starts at zero everywhere (last layer zero-initialised).

    Args:
        position_frequencies, time_frequencies: encoding frequencies of p and t.
        width, depth: hidden layer size and count.
        extent: positions are divided by it before encoding (the cloud's radius).
    """

    def __init__(self, position_frequencies: int = 4, time_frequencies: int = 4, width: int = 64, depth: int = 3,
                 extent: float = 1.0):
        super().__init__()
        self.pf, self.tf = position_frequencies, time_frequencies
        self.register_buffer("scale", torch.tensor(float(extent)))  # saved with the weights
        dims = 3 * (1 + 2 * position_frequencies) + (1 + 2 * time_frequencies)
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [nn.Linear(dims, width), nn.SiLU()]
            dims = width
        self.net = nn.Sequential(*layers)
        self.out = nn.Linear(width, 3)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def extent(self) -> float:
        return float(self.scale)

    def raw(self, p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        tt = t.expand(*p.shape[:-1], 1)
        return self.out(self.net(torch.cat([encode(p / self.scale, self.pf), encode(tt, self.tf)], -1))) * self.scale

    def forward(self, p: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
        """Offsets ``[N, 3]`` of canonical points ``p [N, 3]`` at normalised time ``t`` in [0, 1]."""
        return self.at_times(p, [t])[0]

    def at_times(self, p: torch.Tensor, times) -> torch.Tensor:
        """Offsets ``[B, N, 3]`` of ``p [N, 3]`` at ``B`` normalised times, in one batched
        evaluation (``f(p, 0)`` computed once for all of them)."""
        t = torch.as_tensor(times, dtype=p.dtype, device=p.device).reshape(-1, 1, 1)
        at_zero = self.raw(p, torch.zeros(1, 1, dtype=p.dtype, device=p.device))
        return self.raw(p.expand(t.shape[0], *p.shape), t) - at_zero
