"""The 4D video model (paper Sec. 3.2): two token streams over a ``V x T`` grid through the
base DiT's shared blocks, joined after every block by a synchronization layer.

Grid tokens ``[B, V, T, n, D]`` (``n`` patches a frame) are read two ways: the row stream
``x_v`` as ``B * V`` fixed-view videos of ``T`` frames (mode ``dynamic``), the column stream
``x_t`` as ``B * T`` freeze-time videos of ``V`` frames (mode ``freeze_time``). Each block
updates both (Eq. 4), ``y_v = x_v + phi_l(x_v; c_v)``, ``y_t = x_t + phi_l(x_t; c_t)``, in
one call when the two groupings have the same length; a sync layer (:mod:`fourreal.models.sync`)
then gives the next layer's tokens. ``sequential`` is the interleaving baseline (Eq. 5):
the view update (a column, across views), then the time update (a row, across time) of
its result.
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
from torch import nn

from fourreal.models.dit import CONTEXTS, DiT, timestep_embedding
from fourreal.models.sync import SYNC_MODES, make_sync

ARCHITECTURES = (*SYNC_MODES, "sequential")
# which parameters train: everything, the sync layers, or (sequential baseline) a copy of
# the attention used along one axis
Trainable = Literal["all", "sync", "time_attention", "view_attention", "none"]


class Model4D(nn.Module):
    """Two-stream 4D model around a base :class:`~fourreal.models.dit.DiT`.

    Args:
        base: the video model; its blocks are shared by both streams.
        architecture: a sync mode of :data:`fourreal.models.sync.SYNC_MODES` or ``sequential``.
        seq_attention: for ``sequential``, give the ``time`` (row) or ``view`` (column)
            application its own copy of every block's attention (to fine-tune it alone).
    """

    def __init__(self, base: DiT, architecture: str, seq_attention: Literal["time", "view"] | None = None):
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(f"unknown 4D architecture {architecture!r}; use one of {ARCHITECTURES}")
        self.base = base
        self.architecture = architecture
        depth, dim = base.cfg.depth, base.cfg.dim
        self.syncs = nn.ModuleList(make_sync(architecture, dim, l, depth) for l in range(depth)) \
            if architecture != "sequential" else nn.ModuleList()
        self.seq_attention = seq_attention
        self.axis_attn = nn.ModuleList(copy.deepcopy(b.attn) for b in base.blocks) if seq_attention else nn.ModuleList()

    def set_trainable(self, which: Trainable) -> list[nn.Parameter]:
        """Freeze everything but ``which``; returns the trainable parameters."""
        for p in self.parameters():
            p.requires_grad_(which == "all")
        if which == "sync":
            for p in self.syncs.parameters():
                p.requires_grad_(True)
        elif which in ("time_attention", "view_attention"):
            if not self.seq_attention or not which.startswith(self.seq_attention):
                raise ValueError(f"{which} needs architecture 'sequential' with seq_attention={which.split('_')[0]!r}")
            for p in self.axis_attn.parameters():
                p.requires_grad_(True)
        elif which not in ("all", "none"):
            raise ValueError(f"unknown trainable set {which!r}")
        return [p for p in self.parameters() if p.requires_grad]

    def _rows(self, x, layer, c_v, rope_v):
        b, v, t, n, d = x.shape
        attn = self.axis_attn[layer] if self.seq_attention == "time" else None
        return self.base.block(layer, x.reshape(b * v, t * n, d), c_v, rope_v, attn).view(b, v, t, n, d)

    def _cols(self, x, layer, c_t, rope_t):
        b, v, t, n, d = x.shape
        attn = self.axis_attn[layer] if self.seq_attention == "view" else None
        cols = x.transpose(1, 2).reshape(b * t, v * n, d)
        return self.base.block(layer, cols, c_t, rope_t, attn).view(b, t, v, n, d).transpose(1, 2)

    def _both(self, x_v, x_t, layer, c_v, c_t, rope_v, rope_t):
        """Eq. 4: both streams' updates; one block call when rows and columns are equally long."""
        b, v, t, n, d = x_v.shape
        if v == t and not self.seq_attention:
            seqs = torch.cat([x_v.reshape(b * v, t * n, d), x_t.transpose(1, 2).reshape(b * t, v * n, d)])
            out = self.base.block(layer, seqs, torch.cat([c_v, c_t]), rope_v)
            y_v = out[: b * v].view(b, v, t, n, d)
            y_t = out[b * v :].view(b, t, v, n, d).transpose(1, 2)
            return y_v, y_t
        return self._rows(x_v, layer, c_v, rope_v), self._cols(x_t, layer, c_t, rope_t)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """Velocity ``[B, V, T, 3, H, W]`` of a noisy grid ``x`` at flow times ``sigma [B]``,
        given clean cells ``cond`` where ``mask [B, V, T]`` is 1."""
        b, v, t, c, h, w = x.shape
        base = self.base
        base.check_size(max(v, t), h, w)
        if mask is None:
            mask = torch.zeros(b, v, t, device=x.device)
        if cond is None:
            cond = torch.zeros_like(x)
        tokens = base.embed(x.reshape(b * v, t, c, h, w), cond.reshape(b * v, t, c, h, w), mask.reshape(b * v, t))
        tokens = tokens.view(b, v, t, -1, tokens.shape[-1])
        ctx_v = torch.full((b * v,), CONTEXTS["dynamic"], device=x.device)
        ctx_t = torch.full((b * t,), CONTEXTS["freeze_time"], device=x.device)
        c_v = base.conditioning(sigma.repeat_interleave(v), ctx_v)
        c_t = base.conditioning(sigma.repeat_interleave(t), ctx_t)
        c_sigma = base.time_mlp(timestep_embedding(sigma, 256).to(base.context.weight.dtype))
        rope_v, rope_t = base.rope(t, h, w, x.device), base.rope(v, h, w, x.device)
        x_v = x_t = tokens
        for layer in range(base.cfg.depth):
            if self.architecture == "sequential":  # Eq. 5: across views (columns), then across time (rows)
                x_v = x_t = self._rows(self._cols(x_v, layer, c_t, rope_t), layer, c_v, rope_v)
            else:
                y_v, y_t = self._both(x_v, x_t, layer, c_v, c_t, rope_v, rope_t)
                x_v, x_t = self.syncs[layer](y_v, y_t, c_sigma)
        out_v = base.head(x_v.reshape(b * v, -1, x_v.shape[-1]), c_v, t, h, w).view(b, v, t, c, h, w)
        out_t = base.head(x_t.transpose(1, 2).reshape(b * t, -1, x_t.shape[-1]), c_t, v, h, w)
        out_t = out_t.view(b, t, v, c, h, w).transpose(1, 2)
        return (out_v + out_t) / 2


def build_model4d(base: DiT, architecture: str, seq_attention: str = "") -> Model4D:
    """A 4D model around ``base`` (its weights are used as they are)."""
    return Model4D(base, architecture, seq_attention or None)
