"""Synchronization layers between the two token streams of the 4D model (paper Sec. 3.2.4
and supplementary Sec. 7).

After block ``l``, the row stream's output ``y_v`` and the column stream's output ``y_t``
(both ``[..., D]`` over the same grid cells) are joined:

- ``hard`` (Eq. 8): one token set ``x = W_v y_v + W_t y_t``, ``W`` initialised to ``I / 2``,
  each term scaled by ``1 + s(sigma)`` (a zero-initialised function of the flow time);
- ``soft`` (Eq. 9-10): two token sets ``x_v = y_v + dy_v``, ``x_t = y_t + dy_t`` with
  ``(dy_v, dy_t)`` from a sigma-modulated linear map of ``(y_v, y_t)``, initialised to the
  training-free soft sync below;
- ``hard_free`` (Eq. 12): ``x = (y_v + y_t) / 2``;
- ``soft_free`` (Eq. 13): ``x_v = (1 - w_l) y_v + w_l y_t``, ``x_t = (1 - w_l) y_t + w_l y_v``
  with ``w_l = 0.1 + 0.4 l / L``.
"""

from __future__ import annotations

import torch
from torch import nn

SYNC_MODES = ("hard", "soft", "hard_free", "soft_free")


def soft_weight(layer: int, depth: int) -> float:
    """``w_l = 0.1 + 0.4 * l / L`` (supplementary Eq. 13)."""
    return 0.1 + 0.4 * layer / depth


class SigmaScale(nn.Module):
    """Per-channel factors ``1 + s(c)`` from the flow-time embedding ``c [N, D]``; zero-initialised
    so that a new layer starts unmodulated."""

    def __init__(self, dim: int, outputs: int):
        super().__init__()
        self.outputs = outputs
        self.net = nn.Sequential(nn.SiLU(), nn.Linear(dim, outputs * dim))
        nn.init.zeros_(self.net[1].weight)
        nn.init.zeros_(self.net[1].bias)

    def forward(self, c: torch.Tensor) -> list[torch.Tensor]:
        """``outputs`` factors, each ``[N, D]``."""
        return [1 + s for s in self.net(c).chunk(self.outputs, dim=-1)]


class HardSync(nn.Module):
    """Eq. 8: ``x = (1 + s_v(sigma)) W_v y_v + (1 + s_t(sigma)) W_t y_t``, ``W = I / 2`` at init."""

    def __init__(self, dim: int):
        super().__init__()
        self.w_v = nn.Linear(dim, dim, bias=False)
        self.w_t = nn.Linear(dim, dim, bias=False)
        for w in (self.w_v, self.w_t):
            nn.init.eye_(w.weight)
            w.weight.data.mul_(0.5)
        self.scale = SigmaScale(dim, 2)

    def forward(self, y_v: torch.Tensor, y_t: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``y_v, y_t [N, ..., D]``, ``c [N, D]`` -> the merged tokens, returned for both streams."""
        a_v, a_t = (_expand(s, y_v) for s in self.scale(c))
        x = a_v * self.w_v(y_v) + a_t * self.w_t(y_t)
        return x, x


class SoftSync(nn.Module):
    """Eq. 9-10: ``(dy_v, dy_t) = Mod_Linear(y_v, y_t; sigma)``, ``x_v = y_v + dy_v``,
    ``x_t = y_t + dy_t``; at init ``dy_v = w (y_t - y_v)``, ``dy_t = w (y_v - y_t)`` (Eq. 13)."""

    def __init__(self, dim: int, weight: float):
        super().__init__()
        self.linear = nn.Linear(2 * dim, 2 * dim, bias=True)
        eye = torch.eye(dim)
        with torch.no_grad():
            self.linear.weight.copy_(torch.cat([torch.cat([-weight * eye, weight * eye], 1),
                                                torch.cat([weight * eye, -weight * eye], 1)], 0))
            self.linear.bias.zero_()
        self.scale = SigmaScale(dim, 2)

    def forward(self, y_v: torch.Tensor, y_t: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dy_v, dy_t = self.linear(torch.cat([y_v, y_t], dim=-1)).chunk(2, dim=-1)
        a_v, a_t = (_expand(s, y_v) for s in self.scale(c))
        return y_v + a_v * dy_v, y_t + a_t * dy_t


class FreeSync(nn.Module):
    """Training-free syncs: ``hard_free`` (Eq. 12, plain average) and ``soft_free`` (Eq. 13)."""

    def __init__(self, weight: float | None):
        super().__init__()
        self.weight = weight  # None: hard average

    def forward(self, y_v: torch.Tensor, y_t: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.weight is None:
            x = (y_v + y_t) / 2
            return x, x
        w = self.weight
        return (1 - w) * y_v + w * y_t, (1 - w) * y_t + w * y_v


def _expand(scale: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``[N, D]`` -> ``[N, 1, ..., 1, D]`` broadcastable against ``like [N, ..., D]``."""
    return scale.view(scale.shape[0], *([1] * (like.dim() - 2)), scale.shape[-1]).to(like.dtype)


def make_sync(mode: str, dim: int, layer: int, depth: int) -> nn.Module:
    """The synchronization layer after block ``layer`` (0-based) of ``depth``."""
    if mode == "hard":
        return HardSync(dim)
    if mode == "soft":
        return SoftSync(dim, soft_weight(layer, depth))
    if mode == "hard_free":
        return FreeSync(None)
    if mode == "soft_free":
        return FreeSync(soft_weight(layer, depth))
    raise ValueError(f"unknown sync mode {mode!r}; use one of {SYNC_MODES}")
