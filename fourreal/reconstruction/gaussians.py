"""Isotropic 3D Gaussians: parameters, rendering (gsplat on CUDA, a small depth-sorted
compositor on gsplat's pure-torch projection on CPU) and the 3DGS PLY file.

Every render here uses an identity camera: the Gaussians are already in the coordinates
of the frame being rendered (the reconstruction's view-dependent offsets put them there),
so only the intrinsics ``K`` change from frame to frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fourreal.formats.files import atomic_path


@dataclass
class GaussianCloud:
    """Canonical points as plain arrays: ``means [N, 3]``, ``scales [N]`` (isotropic std),
    ``colors [N, 3]`` in [0, 1], ``opacities [N]`` in (0, 1)."""

    means: np.ndarray
    scales: np.ndarray
    colors: np.ndarray
    opacities: np.ndarray

    def subset(self, keep: np.ndarray) -> "GaussianCloud":
        """The points selected by ``keep`` (a bool mask ``[N]`` or indices)."""
        return GaussianCloud(self.means[keep], self.scales[keep], self.colors[keep], self.opacities[keep])

    def __len__(self) -> int:
        return len(self.means)


class Gaussians(nn.Module):
    """Trainable isotropic Gaussians (positions, log-scales, color and opacity logits)."""

    def __init__(self, cloud: GaussianCloud):
        super().__init__()
        self.means = nn.Parameter(torch.tensor(cloud.means, dtype=torch.float32))  # a copy of the cloud
        self.log_scales = nn.Parameter(torch.as_tensor(np.log(cloud.scales), dtype=torch.float32))
        self.color_logits = nn.Parameter(torch.logit(torch.as_tensor(cloud.colors, dtype=torch.float32).clamp(0.02, 0.98)))
        self.opacity_logits = nn.Parameter(torch.logit(torch.as_tensor(cloud.opacities, dtype=torch.float32).clamp(0.02, 0.98)))

    @property
    def scales(self) -> torch.Tensor:
        """Isotropic standard deviations ``[N]``."""
        return self.log_scales.exp()

    @property
    def colors(self) -> torch.Tensor:
        """Colors ``[N, 3]`` in (0, 1)."""
        return torch.sigmoid(self.color_logits)

    @property
    def opacities(self) -> torch.Tensor:
        """Opacities ``[N]`` in (0, 1)."""
        return torch.sigmoid(self.opacity_logits)

    def cloud(self) -> GaussianCloud:
        """The current values as a detached :class:`GaussianCloud` on the CPU."""
        d = lambda t: t.detach().cpu().numpy()  # noqa: E731
        return GaussianCloud(d(self.means), d(self.scales), d(self.colors), d(self.opacities))


def render(means: torch.Tensor, scales: torch.Tensor, colors: torch.Tensor, opacities: torch.Tensor, Ks: torch.Tensor,
           height: int, width: int, background: torch.Tensor, backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Render ``B`` frames, each with its own Gaussian positions.

    Args:
        means: ``[B, N, 3]`` positions in each frame's camera coordinates.
        scales: ``[N]`` isotropic standard deviations; colors ``[N, 3]``; opacities ``[N]``.
        Ks: ``[B, 3, 3]`` intrinsics; background: ``[3]`` color behind everything.
        backend: ``gsplat`` (CUDA), ``torch`` (any device) or ``auto`` (gsplat on CUDA).
    Returns:
        ``rgb [B, H, W, 3]`` and ``alpha [B, H, W]``.
    """
    if backend == "auto":
        backend = "gsplat" if means.is_cuda else "torch"
    if backend == "gsplat":
        return _render_gsplat(means, scales, colors, opacities, Ks, height, width, background)
    return _render_torch(means, scales, colors, opacities, Ks, height, width, background)


def render_depth(means: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor, Ks: torch.Tensor, height: int,
                 width: int, backend: str = "auto", min_alpha: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Depth maps of ``B`` frames as :func:`render` composites them: each pixel's
    alpha-weighted mean camera-space z of the Gaussians over it.

    Args:
        means: ``[B, N, 3]`` positions in each frame's camera coordinates; scales, opacities ``[N]``;
            Ks ``[B, 3, 3]``.
        min_alpha: pixels less covered than this get depth 0 (none).
    Returns:
        ``depth [B, H, W]`` and ``alpha [B, H, W]``.
    """
    black = torch.zeros(3, dtype=means.dtype, device=means.device)
    depths, alphas = [], []
    for i in range(means.shape[0]):  # one frame at a time: the "color" (z) differs per frame
        z = means[i, :, 2:3].expand(-1, 3)
        weighted, alpha = render(means[i:i + 1], scales, z, opacities, Ks[i:i + 1], height, width, black, backend)
        depth = weighted[0, ..., 0] / alpha[0].clamp(min=1e-6)
        depths.append(torch.where(alpha[0] >= min_alpha, depth, torch.zeros_like(depth)))
        alphas.append(alpha[0])
    return torch.stack(depths), torch.stack(alphas)


def _render_gsplat(means, scales, colors, opacities, Ks, height, width, background):
    """:func:`render` with gsplat's CUDA rasterizer (identity cameras, isotropic scales)."""
    from gsplat import rasterization

    b, n = means.shape[:2]
    quats = torch.zeros(b, n, 4, device=means.device)
    quats[..., 0] = 1
    rgb, alpha, _ = rasterization(
        means, quats, scales[None, :, None].expand(b, n, 3), opacities[None].expand(b, n), colors[None].expand(b, n, 3),
        torch.eye(4, device=means.device).expand(b, 1, 4, 4), Ks[:, None], width, height,
        backgrounds=background[None, None].expand(b, 1, 3), packed=False)
    return rgb[:, 0], alpha[:, 0, ..., 0]


def _render_torch(means, scales, colors, opacities, Ks, height, width, background):
    """Depth-sorted alpha compositing with gsplat's projection, 0.3-pixel blur and alpha
    rules, sparse: each Gaussian touches only the pixels of its own 3-sigma box (Gaussians
    are taken in groups of similar radius, each group evaluated over its largest box, so
    one large Gaussian does not widen the box of every small one), and every pixel's
    transmittance is a segmented cumulative sum of ``log(1 - alpha)`` (float64)."""
    from gsplat.cuda._torch_impl import _fully_fused_projection

    dev = means.device
    n = means.shape[1]
    covars = (scales**2)[:, None, None] * torch.eye(3, device=dev)
    rgbs, alphas = [], []
    for i in range(means.shape[0]):
        radii, mean2d, depth, conic, _ = _fully_fused_projection(means[i], covars, torch.eye(4, device=dev)[None],
                                                                  Ks[i][None], width, height)
        radii, mean2d, depth, conic = radii[0], mean2d[0], depth[0], conic[0]
        visible = (radii > 0).all(-1)
        rank = torch.empty(n, dtype=torch.long, device=dev)
        rank[torch.argsort(torch.where(visible, depth, torch.full_like(depth, float("inf"))))] = torch.arange(n, device=dev)
        radii = radii.clamp(max=max(height, width))
        pid, alpha, g_idx = _splat_pixels(visible, radii, mean2d, conic, opacities, height, width)
        order = torch.argsort(pid * n + rank[g_idx])
        pid, alpha, g_idx = pid[order], alpha[order], g_idx[order]
        log1m = torch.log1p(-alpha.double())
        inclusive = torch.cumsum(log1m, 0)
        exclusive = inclusive - log1m
        _, seg, counts = torch.unique_consecutive(pid, return_inverse=True, return_counts=True)
        starts = torch.cumsum(counts, 0) - counts
        trans = torch.exp(exclusive - exclusive[starts][seg]).float()
        w = trans * alpha
        pixels = height * width
        acc = torch.zeros(pixels, device=dev, dtype=w.dtype).index_add(0, pid, w)
        rgb = torch.zeros(pixels, 3, device=dev, dtype=w.dtype).index_add(0, pid, w[:, None] * colors[g_idx])
        rgb = rgb + (1 - acc)[:, None] * background
        rgbs.append(rgb.reshape(height, width, 3))
        alphas.append(acc.reshape(height, width))
    return torch.stack(rgbs), torch.stack(alphas)


def _splat_pixels(visible: torch.Tensor, radii: torch.Tensor, mean2d: torch.Tensor, conic: torch.Tensor,
                  opacities: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The (pixel, Gaussian) pairs of one camera that :func:`_render_torch` composites: the
    pixels of each visible Gaussian's box (``radii [n, 2]``, x and y, around ``mean2d [n, 2]``)
    inside the frame, where its ``alpha = opacity exp(-sigma)`` (``conic [n, 3]``) is at least
    1/255. Returns flat pixel indices ``[P]``, alphas ``[P]`` (clamped to 0.999) and Gaussian
    indices ``[P]``. Gaussians are grouped by radius (up to 2, 4, 8, ... pixels) and each
    group is evaluated over its largest box: the pairs do not depend on the grouping."""
    box = radii.max(-1).values
    top = int(box[visible].max()) if visible.any() else 0
    pids, alphas, idxs = [], [], []
    lower, upper = 0, 2
    while lower < top:
        members = (visible & (box > lower) & (box <= upper)).nonzero()[:, 0]
        if len(members):
            r = int(box[members].max())
            span = torch.arange(-r, r + 1, device=radii.device)
            dy, dx = torch.meshgrid(span, span, indexing="ij")
            dx, dy = dx.reshape(1, -1), dy.reshape(1, -1)
            m2d, con = mean2d[members], conic[members]
            base = torch.floor(m2d.detach()).long()  # [m, 2]
            px, py = base[:, None, 0] + dx, base[:, None, 1] + dy  # [m, K]
            d0 = px + 0.5 - m2d[:, None, 0]
            d1 = py + 0.5 - m2d[:, None, 1]
            a, b, c = con[:, None, 0], con[:, None, 1], con[:, None, 2]
            sigma = 0.5 * (a * d0**2 + c * d1**2) + b * d0 * d1
            alpha = (opacities[members][:, None] * torch.exp(-sigma)).clamp(max=0.999)
            own = radii[members]
            keep = ((dx.abs() <= own[:, None, 0]) & (dy.abs() <= own[:, None, 1]) & (px >= 0) & (px < width)
                    & (py >= 0) & (py < height) & (sigma >= 0) & (alpha >= 1 / 255))
            pids.append((py * width + px)[keep])
            alphas.append(alpha[keep])
            idxs.append(members[:, None].expand_as(px)[keep])
        lower, upper = upper, 2 * upper
    if not pids:
        empty = torch.zeros(0, dtype=torch.long, device=radii.device)
        return empty, torch.zeros(0, device=radii.device, dtype=mean2d.dtype), empty
    return torch.cat(pids), torch.cat(alphas), torch.cat(idxs)


SPLAT_FIELDS = ("x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1",
                "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")
"""The vertex properties of a 3DGS PLY as :func:`write_splat_ply` writes them, in order (all float32)."""
SH_C0 = 0.28209479177387814
"""The degree-0 spherical harmonic: a color ``c`` in [0, 1] is stored as ``f_dc = (c - 0.5) / SH_C0``."""


def write_splat_ply(path: str | Path, cloud: GaussianCloud, normals: np.ndarray | None = None) -> Path:
    """Write ``cloud`` as a binary little-endian PLY in the layout 3DGS viewers read, atomically:
    per vertex ``x, y, z`` (means), ``nx, ny, nz`` (``normals [N, 3]``, zero when not given),
    ``f_dc_0..2`` (degree-0 SH colors), ``opacity`` (logit), ``scale_0..2`` (log of the
    isotropic std, three times) and ``rot_0..3`` (the identity quaternion, w first)."""
    n = len(cloud)
    data = np.zeros(n, dtype=[(name, "<f4") for name in SPLAT_FIELDS])
    for k, axis in enumerate("xyz"):
        data[axis] = cloud.means[:, k]
        if normals is not None:
            data[f"n{axis}"] = normals[:, k]
    for k in range(3):
        data[f"f_dc_{k}"] = (cloud.colors[:, k] - 0.5) / SH_C0
        data[f"scale_{k}"] = np.log(cloud.scales)
    opacity = np.clip(cloud.opacities.astype(np.float64), 1e-6, 1 - 1e-6)
    data["opacity"] = np.log(opacity / (1 - opacity))
    data["rot_0"] = 1.0
    header = f"ply\nformat binary_little_endian 1.0\nelement vertex {n}\n"
    header += "".join(f"property float {name}\n" for name in SPLAT_FIELDS) + "end_header\n"
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(header.encode("ascii"))
            fh.write(data.tobytes())
    return Path(path)
