"""Pixel-space video diffusion transformer (paper Sec. 3.1, 4.1).

A video ``[B, F, 3, H, W]`` is cut into ``p x p`` pixel patches; every patch of every frame
is a token. Blocks apply full self-attention over all tokens of a sequence (spatio-temporal)
and a SwiGLU MLP, modulated by adaLN-Zero from the conditioning vector (flow time
``sigma`` + generation mode). Positions enter through 3D rotary embeddings (frame, row,
column) computed for any size, so resolution and length can change between training
phases, and so that :meth:`DiT.block` can run on any grouping of a grid's tokens: the 4D
model calls the same block on rows (frames = times) and on columns (frames = views).

Frame conditioning: a per-frame mask marks clean frames. Their pixels are given in extra
input channels (and replace the noisy input), plus a mask channel, so one model continues
videos, makes freeze-time videos from one frame, or fills a 4D grid's missing cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.utils.checkpoint
import torch.nn.functional as F
from torch import nn

from fourreal.formats.clip import MODES
from fourreal.running.config import ConfigError, require

# Generation modes (the paper's context embedding); NULL_CONTEXT is for classifier-free guidance.
CONTEXTS = {mode: i for i, mode in enumerate(MODES)}
NULL_CONTEXT = len(CONTEXTS)


@dataclass
class DiTConfig:
    """Size of the video DiT.

    Attributes:
        patch: pixel patch side.
        dim: token channels.
        depth: number of blocks.
        heads: attention heads (``dim / heads`` must be even and >= 6: its rotary pairs are
            shared out between the frame, row and column axes).
        mlp_ratio: SwiGLU hidden size as a multiple of ``dim``.
        max_frames, max_height, max_width: largest inputs accepted (checked at run time).
        rope_theta: rotary embedding base.
        extra_channels: per-pixel conditioning channels beyond the frame conditioning (the
            upsampler's low-resolution video, resized to the output size); 0 for the base model.
    """

    patch: int = 4
    dim: int = 96
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 4.0
    max_frames: int = 64
    max_height: int = 288
    max_width: int = 512
    rope_theta: float = 10000.0
    extra_channels: int = 0

    def __post_init__(self) -> None:
        require(self.patch >= 1, "patch", "must be >= 1")
        require(self.dim % self.heads == 0, "dim", "must be divisible by heads")
        head_dim = self.dim // self.heads
        require(head_dim % 2 == 0 and head_dim >= 6, "heads", "dim / heads must be even and >= 6 (3D rotary embeddings)")
        require(self.depth >= 1, "depth", "must be >= 1")
        require(self.max_height % self.patch == 0, "max_height", f"must be a multiple of patch = {self.patch}")
        require(self.max_width % self.patch == 0, "max_width", f"must be a multiple of patch = {self.patch}")


# The paper gives 24 blocks of 1024 channels (~600M parameters), not the head count: 8 heads
# of 128 channels run attention at 86% of an H200's bf16 matmul rate, 16 heads of 64 at 61%
# (docs/BENCHMARKS.md). `small` (one GPU, 26.6M parameters: 53 MB in bf16, so that it
# travels and ships) keeps heads of 128 channels for the same reason.
PRESETS: dict[str, DiTConfig] = {
    "tiny": DiTConfig(patch=4, dim=96, depth=2, heads=4),
    "small": DiTConfig(patch=4, dim=384, depth=8, heads=3),
    "paper": DiTConfig(patch=4, dim=1024, depth=24, heads=8),
}


def rope_tables(frames: int, rows: int, cols: int, head_dim: int, theta: float, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary tables ``(cos, sin)``, each ``[frames * rows * cols, head_dim // 2]``, for tokens
    ordered frame-major then row then column. About a third of the rotary pairs encode each axis."""
    third = (head_dim // 2) // 3
    pairs = [third, third, head_dim // 2 - 2 * third]
    grids = torch.meshgrid(torch.arange(frames, device=device), torch.arange(rows, device=device),
                           torch.arange(cols, device=device), indexing="ij")
    angles = []
    for pos, n in zip(grids, pairs):
        freqs = theta ** (-torch.arange(n, device=device, dtype=torch.float32) / n)
        angles.append(pos.reshape(-1, 1).float() * freqs)
    ang = torch.cat(angles, dim=1)
    return ang.cos(), ang.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x [..., L, head_dim]`` by ``(cos, sin) [L, head_dim // 2]`` (interleaved pairs)."""
    x1, x2 = x.float().unflatten(-1, (-1, 2)).unbind(-1)
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)
    return out.type_as(x)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: ``x [N, L, D]`` scaled and shifted by per-sequence ``[N, D]`` vectors."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class Attention(nn.Module):
    """Multi-head self-attention with QK RMS-norm and rotary embeddings."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.q_norm = nn.RMSNorm(dim // heads, eps=1e-6)
        self.k_norm = nn.RMSNorm(dim // heads, eps=1e-6)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """``x [N, L, D]`` -> ``[N, L, D]``."""
        n, length, dim = x.shape
        q, k, v = self.qkv(x).view(n, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(self.q_norm(q), *rope), apply_rope(self.k_norm(k), *rope)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(n, length, dim))


class SwiGLU(nn.Module):
    """Gated MLP: ``w3(silu(x W1) * (x W2))``."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(a) * b)


class Block(nn.Module):
    """DiT block with adaLN-Zero: returns ``x + phi(x; c)`` (paper Eq. 1)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = SwiGLU(dim, int(dim * mlp_ratio))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                attn: Attention | None = None) -> torch.Tensor:
        """``x [N, L, D]``, ``c [N, D]`` -> ``[N, L, D]``; ``attn`` replaces the block's own
        attention (the sequential 4D baseline fine-tunes a copy of it for one axis)."""
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(c).chunk(6, dim=-1)
        x = x + gate1.unsqueeze(1) * (attn or self.attn)(modulate(self.norm1(x), shift1, scale1), rope)
        return x + gate2.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift2, scale2))


def timestep_embedding(sigma: torch.Tensor, dim: int, scale: float = 1000.0) -> torch.Tensor:
    """Sinusoidal embedding ``[N, dim]`` of flow times ``sigma [N]`` in [0, 1]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=sigma.device, dtype=torch.float32) / half)
    args = scale * sigma.float()[:, None] * freqs[None]
    return torch.cat([args.cos(), args.sin()], dim=-1)


class DiT(nn.Module):
    """The video DiT. :meth:`forward` predicts the rectified-flow velocity of a video;
    :meth:`embed`, :meth:`conditioning`, :meth:`block` and :meth:`head` are its parts, for
    models (the 4D model) that group tokens differently."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        p, d = cfg.patch, cfg.dim
        self.in_channels = 7 + cfg.extra_channels  # noisy RGB + clean RGB + mask (+ extra), per pixel
        self.patch_embed = nn.Linear(self.in_channels * p * p, d)
        self.time_mlp = nn.Sequential(nn.Linear(256, d), nn.SiLU(), nn.Linear(d, d))
        self.context = nn.Embedding(len(CONTEXTS) + 1, d)
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.checkpointing = False  # recompute each block's activations in the backward pass (saves memory)
        self.norm_out = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        self.out = nn.Linear(d, 3 * p * p)
        for m in (self.ada_out[1], self.out):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def check_size(self, frames: int, height: int, width: int) -> None:
        """Raise :class:`ConfigError` naming the limit when an input does not fit this model."""
        c = self.cfg
        if height % c.patch or width % c.patch:
            raise ConfigError(f"frame size {height}x{width} is not a multiple of the patch size {c.patch}; change "
                              "the height or width")
        if frames > c.max_frames or height > c.max_height or width > c.max_width:
            raise ConfigError(f"input {frames}x{height}x{width} exceeds the model's maxima "
                             f"{c.max_frames}x{c.max_height}x{c.max_width} (model.max_* in params.yaml)")

    def rope(self, frames: int, height: int, width: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotary tables for a sequence of ``frames`` frames of ``height x width`` pixels."""
        p = self.cfg.patch
        return rope_tables(frames, height // p, width // p, self.cfg.dim // self.cfg.heads, self.cfg.rope_theta, device)

    def embed(self, x: torch.Tensor, cond: torch.Tensor, mask: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens ``[B, F * h * w, D]`` of noisy frames ``x [B, F, 3, H, W]`` with clean
        conditioning frames ``cond`` (same shape) where ``mask [B, F]`` is 1, and the
        ``extra [B, F, extra_channels, H, W]`` conditioning when the model has some."""
        b, f, _, h, w = x.shape
        p, c = self.cfg.patch, self.in_channels
        m = mask.to(x.dtype)[:, :, None, None, None]
        parts = [x * (1 - m) + cond * m, cond * m, m.expand(b, f, 1, h, w)]
        if self.cfg.extra_channels:
            if extra is None or extra.shape != (b, f, self.cfg.extra_channels, h, w):
                got = None if extra is None else tuple(extra.shape)
                raise ValueError(f"this model needs extra conditioning [B, F, {self.cfg.extra_channels}, H, W], got {got}")
            parts.append(extra.to(x.dtype))
        inp = torch.cat(parts, dim=2)
        patches = inp.view(b, f, c, h // p, p, w // p, p).permute(0, 1, 3, 5, 2, 4, 6)
        return self.patch_embed(patches.reshape(b, f * (h // p) * (w // p), c * p * p))

    def conditioning(self, sigma: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Conditioning vector ``[N, D]`` from flow times ``sigma [N]`` and mode ids ``context [N]``."""
        return self.time_mlp(timestep_embedding(sigma, 256).to(self.context.weight.dtype)) + self.context(context)

    def block(self, index: int, x: torch.Tensor, c: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
              attn: Attention | None = None) -> torch.Tensor:
        """Apply block ``index`` to token sequences ``x [N, L, D]`` with conditioning ``c [N, D]``
        (with activation checkpointing when :attr:`checkpointing` is set and grads are on)."""
        if self.checkpointing and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(self.blocks[index], x, c, rope, attn, use_reentrant=False)
        return self.blocks[index](x, c, rope, attn)

    def head(self, x: torch.Tensor, c: torch.Tensor, frames: int, height: int, width: int) -> torch.Tensor:
        """Tokens ``[B, F * h * w, D]`` -> velocity ``[B, F, 3, H, W]``."""
        p = self.cfg.patch
        shift, scale = self.ada_out(c).chunk(2, dim=-1)
        out = self.out(modulate(self.norm_out(x), shift, scale))
        b = out.shape[0]
        out = out.view(b, frames, height // p, width // p, 3, p, p).permute(0, 1, 4, 2, 5, 3, 6)
        return out.reshape(b, frames, 3, height, width)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, context: torch.Tensor,
                cond: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                extra: torch.Tensor | None = None) -> torch.Tensor:
        """Velocity ``[B, F, 3, H, W]`` for noisy video ``x`` at flow times ``sigma [B]`` in
        mode ``context [B]`` (ids of :data:`CONTEXTS`), given clean frames ``cond`` where
        ``mask [B, F]`` is 1 (and the ``extra`` conditioning of an upsampler)."""
        b, f, _, h, w = x.shape
        self.check_size(f, h, w)
        if mask is None:
            mask = torch.zeros(b, f, device=x.device)
        if cond is None:
            cond = torch.zeros_like(x)
        tokens = self.embed(x, cond, mask, extra)
        c = self.conditioning(sigma, context)
        rope = self.rope(f, h, w, x.device)
        for i in range(len(self.blocks)):
            tokens = self.block(i, tokens, c, rope)
        return self.head(tokens, c, f, h, w)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())
