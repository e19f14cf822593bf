"""Model FLOPs of the video DiT and the 4D model, and the GPU's measured bf16 matmul ceiling:
the two numbers behind every MFU (model FLOPs utilisation) this project reports.

Counted: the matrix products every token goes through (patch embedding, each block's qkv,
output projection and SwiGLU, the output head, the soft/hard sync layers' token maps) at 2
FLOPs a multiply-add, and attention's two products (``4 x L^2 x dim`` a sequence a block).
Not counted: per-sequence work (adaLN and the sync layers' flow-time modulation run once a
video, not once a token), norms, rotary embeddings and other elementwise work. A training
step is 3x the forward pass (backward = 2x), whether or not activations are recomputed.
"""

from __future__ import annotations

import time

import torch

from fourreal.models.dit import DiTConfig


def token_matmul_parameters(cfg: DiTConfig) -> int:
    """Weights every token is multiplied by in one pass through the DiT (no per-sequence ones)."""
    d, hidden, p = cfg.dim, int(cfg.dim * cfg.mlp_ratio), cfg.patch
    in_channels = 7 + cfg.extra_channels
    per_block = 3 * d * d + d * d + d * 2 * hidden + hidden * d  # qkv, proj, w12, w3
    return cfg.depth * per_block + in_channels * p * p * d + d * 3 * p * p


def dit_forward_flops(cfg: DiTConfig, sequences: int, frames: int, height: int, width: int) -> float:
    """Forward FLOPs of the DiT on ``sequences`` videos of ``frames`` frames of ``height x width``."""
    length = frames * (height // cfg.patch) * (width // cfg.patch)
    return sequences * (2.0 * length * token_matmul_parameters(cfg) + cfg.depth * 4.0 * length**2 * cfg.dim)


def sync_token_parameters(architecture: str, dim: int) -> int:
    """Weights a grid cell's token pair is multiplied by in one sync layer."""
    return {"soft": (2 * dim) ** 2, "hard": 2 * dim * dim}.get(architecture, 0)


def model4d_forward_flops(architecture: str, cfg: DiTConfig, batch: int, views: int, times: int,
                          height: int, width: int) -> float:
    """Forward FLOPs of the 4D model on ``batch`` grids of ``views x times`` cells: the DiT on
    every row (``times`` frames) and every column (``views`` frames), patches embedded once
    for both, plus the sync layers (the sequential baseline applies the blocks along both
    axes too)."""
    tokens = batch * views * times * (height // cfg.patch) * (width // cfg.patch)
    streams = (dit_forward_flops(cfg, batch * views, times, height, width)
               + dit_forward_flops(cfg, batch * times, views, height, width))
    embedding = 2.0 * tokens * (7 + cfg.extra_channels) * cfg.patch**2 * cfg.dim
    return streams - embedding + 2.0 * tokens * cfg.depth * sync_token_parameters(architecture, cfg.dim)


# bf16 matmul rates (TFLOP/s, 8192^3 products of random operands) measured on idle cards of
# the machines this project ran on. A rate measured while other work shares the card reads low
# (and an MFU against it high), so the ceiling never goes below these.
IDLE_MATMUL_TFLOPS = {"NVIDIA H200": 788.0}


def matmul_ceiling(device: torch.device | str = "cuda", n: int = 8192, repeats: int = 10) -> float:
    """The GPU's bf16 matmul rate in TFLOP/s: measured now (``n x n`` random operands, after a
    warm-up), but not below the card's idle rate in :data:`IDLE_MATMUL_TFLOPS`."""
    return max(_measured_matmul_rate(device, n, repeats),
               IDLE_MATMUL_TFLOPS.get(torch.cuda.get_device_name(device), 0.0))


def _measured_matmul_rate(device: torch.device | str, n: int, repeats: int) -> float:
    """The bf16 rate of ``repeats`` ``n x n`` matrix products, in TFLOP/s."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize(device)
    return 2.0 * n**3 * repeats / (time.perf_counter() - start) / 1e12
