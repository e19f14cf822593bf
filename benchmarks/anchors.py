"""Plain-PyTorch anchors the benchmarks measure in the same run as the project's models.

The anchor is the textbook DiT block at the same width and depth: pre-norm adaLN
modulation, ``F.scaled_dot_product_attention`` over all tokens, a 4x SwiGLU MLP; no rotary
embeddings, no QK norm, no sync layers, no patch embedding or head. Its cost is what any
implementation of the same model size pays; the project's model is reported as a ratio
to it. Beside the anchors: the helpers the benchmarks share (timing, attention kernel choice,
the FP8 conversion of a model under test).
"""

from __future__ import annotations

import contextlib
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from fourreal.models.fp8 import convert_to_fp8
from fourreal.sampling.precision import describe_device, fp8_supported

# scaled-dot-product attention kernels by name; "default" leaves the choice to PyTorch
ATTENTION_KERNELS = ("default", "cudnn", "flash", "efficient")
_BACKENDS = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
             "efficient": SDPBackend.EFFICIENT_ATTENTION}


def attention_kernel(name: str) -> contextlib.AbstractContextManager:
    """A context in which ``F.scaled_dot_product_attention`` uses the kernel ``name`` of
    :data:`ATTENTION_KERNELS` only (``default``: PyTorch's own choice)."""
    return contextlib.nullcontext() if name == "default" else sdpa_kernel(_BACKENDS[name])


class PlainBlock(nn.Module):
    """``x + attn(mod(norm(x)))``, then ``x + mlp(mod(norm(x)))``, gated by ``c``."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.w12, self.w3 = nn.Linear(dim, 8 * dim), nn.Linear(4 * dim, dim)
        self.ada = nn.Linear(dim, 6 * dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``x [N, L, D]``, ``c [N, D]`` -> ``[N, L, D]``."""
        n, length, dim = x.shape
        sh1, sc1, g1, sh2, sc2, g2 = self.ada(F.silu(c)).unsqueeze(1).chunk(6, dim=-1)
        h = F.layer_norm(x, (dim,)) * (1 + sc1) + sh1
        q, k, v = self.qkv(h).view(n, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        x = x + g1 * self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, length, dim))
        a, b = self.w12(F.layer_norm(x, (dim,)) * (1 + sc2) + sh2).chunk(2, dim=-1)
        return x + g2 * self.w3(F.silu(a) * b)


class PlainStack(nn.Module):
    """``depth`` plain blocks."""

    def __init__(self, dim: int, depth: int, heads: int):
        super().__init__()
        self.blocks = nn.ModuleList(PlainBlock(dim, heads) for _ in range(depth))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, c)
        return x


def plain_flops(dim: int, depth: int, sequences: int, length: int) -> float:
    """Forward FLOPs of :class:`PlainStack` (token matmuls and attention, as :mod:`fourreal.training.flops`)."""
    return sequences * depth * (2.0 * length * 16 * dim * dim + 4.0 * length**2 * dim)


def cuda_time(fn: Callable[[], object], steps: int, warmup: int = 3) -> float:
    """Mean seconds of ``fn()`` on the GPU over ``steps`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def to_fp8_or_exit(model: nn.Module, device: torch.device) -> None:
    """Convert ``model``'s block and sync linear layers to FP8 in place
    (:func:`fourreal.models.fp8.convert_to_fp8`), or exit naming ``device`` when it cannot run them."""
    if not fp8_supported(device):
        raise SystemExit(f"--precision fp8 needs compute capability 8.9+ (found {describe_device(device)})")
    convert_to_fp8(model)
