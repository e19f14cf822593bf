"""The deformable model of the reconstruction (supplementary Sec. 6): the temporal deformation
field, an MLP ``Δp^t(p, t)`` of a canonical position and a time on sinusoidal encodings of
both, and :class:`Deformable`, which renders any grid cell as ``p + Δp_i^v + Δp^t(p, t_j)``
(Eq. 11): canonical Gaussians, per-view offsets and that field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from fourreal.reconstruction.gaussians import GaussianCloud, Gaussians, render
from fourreal.reconstruction.init import Canonical
from fourreal.reconstruction.profiling import fit_range


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
        """The cloud's radius that positions are divided by (a float)."""
        return float(self.scale)

    def raw(self, p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``f(p, t)`` of points ``p [N, 3]`` (or ``[..., N, 3]``) at times ``t`` (``[..., 1, 1]``,
        broadcast against ``p``): ``[..., N, 3]``. The first layer is applied to the position
        and the time encodings apart and summed (the same product as on their concatenation),
        so the positions are encoded once however many times are asked for."""
        first = self.net[0]
        split = 3 * (1 + 2 * self.pf)
        h = (torch.nn.functional.linear(encode(p / self.scale, self.pf), first.weight[:, :split])
             + torch.nn.functional.linear(encode(t, self.tf), first.weight[:, split:], first.bias))
        return self.out(self.net[1:](h)) * self.scale

    def forward(self, p: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
        """Offsets ``[N, 3]`` of canonical points ``p [N, 3]`` at normalised time ``t`` in [0, 1]
        (a float or a one-element tensor, which stays on its device)."""
        return self.at_times(p, t)[0]

    def at_times(self, p: torch.Tensor, times) -> torch.Tensor:
        """Offsets ``[B, N, 3]`` of ``p [N, 3]`` at ``B`` normalised times (a list or a tensor
        ``[B]``): ``f`` at time 0 and at the ``B`` times in one batched evaluation; exactly
        zero at time 0 (a batched product need not give equal rows for equal inputs)."""
        t = torch.as_tensor(times, dtype=p.dtype, device=p.device).reshape(-1, 1, 1)
        f = self.raw(p, torch.cat([torch.zeros_like(t[:1]), t]))
        return torch.where(t == 0, 0.0, f[1:] - f[:1])

    def steps(self, p: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """``Δp^t(p, times[1]) - Δp^t(p, times[0])`` of ``p [N, 3]`` for two normalised times
        ``times [2]``: ``[N, 3]`` (``f`` at time 0 cancels; two evaluations in one batch)."""
        f = self.raw(p, times.reshape(2, 1, 1))
        return f[1] - f[0]


class Deformable(torch.nn.Module):
    """Canonical Gaussians + per-view offsets + the temporal MLP: renders any cell. The
    offsets come from tracking and stay fixed, or (``learn_offsets``, 4Real's per-frame
    deformations) are optimised with the rest."""

    def __init__(self, canonical: Canonical, times: int, learn_offsets: bool = False):
        super().__init__()
        self.gaussians = Gaussians(canonical.cloud)
        offsets = torch.tensor(canonical.offsets)  # a copy: fitting never writes into the canonical arrays
        if learn_offsets:
            self.offsets = torch.nn.Parameter(offsets)
        else:
            self.register_buffer("offsets", offsets)
        extent = float(np.abs(canonical.cloud.means - canonical.cloud.means.mean(0)).max()) + 1e-6
        self.deform = TimeDeformation(extent=extent)
        self.times = times

    @classmethod
    def load(cls, path: str | Path, times: int) -> "Deformable":
        """A fitted model from ``deformation.safetensors`` (as the ``reconstruct`` stage writes it)."""
        from safetensors.torch import load_file

        state = load_file(str(path))
        n, v = state["gaussians.means"].shape[0], state["offsets"].shape[0]
        blank = GaussianCloud(np.zeros((n, 3), np.float32), np.ones(n, np.float32), np.full((n, 3), 0.5, np.float32),
                              np.full(n, 0.5, np.float32))
        model = cls(Canonical(blank, np.zeros((v, n, 3), np.float32), v // 2), times)
        model.load_state_dict(state)
        return model.eval()

    def normalised_time(self, time_index: float) -> float:
        """The time in [0, 1] of a (fractional) time index of the grid's ``times`` columns."""
        return time_index / max(1, self.times - 1)

    def view_offset(self, view: float) -> torch.Tensor:
        """``[N, 3]`` offsets of view ``view``; fractional views interpolate the two neighbours'."""
        lo = int(np.floor(view))
        hi = min(lo + 1, self.offsets.shape[0] - 1)
        a = view - lo
        return (1 - a) * self.offsets[lo] + a * self.offsets[hi]

    def positions(self, view: float, t: float) -> torch.Tensor:
        """``[N, 3]`` positions in view ``view``'s coordinates at normalised time ``t`` (Eq. 11)."""
        p = self.gaussians.means
        return p + self.view_offset(view) + self.deform(p, t)

    def means_at(self, offsets: torch.Tensor, times) -> torch.Tensor:
        """``[B, N, 3]`` positions ``p + Δp_i^v + Δp^t(p, t)`` (Eq. 11) of ``B`` cells given their
        view offsets ``offsets [B, N, 3]`` and normalised times (a list or a tensor ``[B]``)."""
        p = self.gaussians.means
        with fit_range("fit.deformation"):
            moved = self.deform.at_times(p, times)
        return p + offsets + moved

    def render_cells(self, cells: list[tuple[float, float]], Ks: torch.Tensor, height: int, width: int,
                     background: torch.Tensor, backend: str) -> torch.Tensor:
        """``[B, H, W, 3]`` renders of ``cells`` = (view, time index) pairs with intrinsics ``Ks [B, 3, 3]``."""
        offsets = torch.stack([self.view_offset(v) for v, _ in cells])
        means = self.means_at(offsets, [self.normalised_time(t) for _, t in cells])
        g = self.gaussians
        return render(means, g.scales, g.colors, g.opacities, Ks, height, width, background, backend)[0]
