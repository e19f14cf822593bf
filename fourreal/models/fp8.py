"""FP8 linear layers for sampling: e4m3 weights and activations with one scale per row.

A weight ``W [N, K]`` is quantized once, per output row; an activation ``x [M, K]`` per row
(token) at every call: ``q = round_e4m3(x / s)`` with ``s = amax(|x_row|) / 448`` (448 is the
largest e4m3 value), so every row uses the whole e4m3 range and ``x ~ q * s``. The product
``y = x W^T + b`` is then ``(q_x * s_x) (q_W * s_W)^T + b``: on CUDA one
``torch._scaled_mm`` call (FP8 tensor cores, fp32 accumulation, bf16 output, the scales and
the bias applied in its epilogue), elsewhere the same numbers dequantized and multiplied in
fp32 (:attr:`Fp8Linear.emulate`), which is what the CPU tests check.

:func:`convert_to_fp8` swaps the linear layers of the transformer blocks (attention ``qkv``
and ``proj``, the SwiGLU MLP's ``w12`` and ``w3``) and of the 4D model's synchronization
layers for :class:`Fp8Linear`; everything else (embeddings, adaLN modulation, the head,
attention itself) keeps its dtype.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from fourreal.models.dit import Attention, SwiGLU
from fourreal.models.sync import HardSync, SoftSync

FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = 448.0  # torch.finfo(torch.float8_e4m3fn).max
# The smallest scale: a row of zeros (or of values below FP8_MAX * MIN_SCALE) is divided by
# this instead of by 0, so it quantizes to zeros (or to small values) and never to NaN.
MIN_SCALE = 1e-12
# torch._scaled_mm needs K and N divisible by 16.
ALIGNMENT = 16
# The linear layers converted, by the module that holds them.
FP8_LINEARS: dict[type[nn.Module], tuple[str, ...]] = {
    Attention: ("qkv", "proj"),
    SwiGLU: ("w12", "w3"),
    HardSync: ("w_v", "w_t"),
    SoftSync: ("linear",),
}


def quantize_rowwise(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize ``x [..., K]`` to e4m3 with one scale per row (last dimension).

    Returns ``(x_fp8 [..., K] float8_e4m3fn, scale [..., 1] float32)`` with
    ``scale = max(amax(|row|) / 448, MIN_SCALE)`` and ``x ~ x_fp8.float() * scale``; the
    largest magnitude of every nonzero row becomes +-448.
    """
    xf = x.float()
    scale = (xf.abs().amax(dim=-1, keepdim=True) / FP8_MAX).clamp(min=MIN_SCALE)
    return (xf / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE), scale


def dequantize_rowwise(x_fp8: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``x_fp8 [..., K]`` times its row scales ``scale [..., 1]``: float32 ``[..., K]``."""
    return x_fp8.float() * scale


def fp8_compatible(linear: nn.Linear) -> bool:
    """Whether ``torch._scaled_mm`` can run ``linear``: in and out features divisible by 16."""
    return linear.in_features % ALIGNMENT == 0 and linear.out_features % ALIGNMENT == 0


class Fp8Linear(nn.Module):
    """An ``nn.Linear`` ``y = x W^T + b`` with ``W [N, K]`` stored in e4m3 with one fp32 scale
    per output row, and its input quantized per row at every call.

    Buffers: ``weight_fp8 [N, K]`` float8_e4m3fn, ``weight_scale [N, 1]`` float32, ``bias [N]``
    float32 (or None). They keep these dtypes under ``.to(dtype)``/``.half()``/``.bfloat16()``
    of the model around them (only device moves apply), so a model cast to bf16 after the
    conversion keeps its FP8 weights and fp32 scales.

    Args:
        linear: the layer to quantize (its in and out features divisible by 16 for CUDA).
        emulate: always dequantize and multiply in fp32 instead of calling ``torch._scaled_mm``
            (what runs anyway on a non-CUDA device).
    """

    def __init__(self, linear: nn.Linear, emulate: bool = False):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.emulate = emulate
        with torch.no_grad():
            weight_fp8, weight_scale = quantize_rowwise(linear.weight.detach())
            bias = None if linear.bias is None else linear.bias.detach().float().clone()
        self.register_buffer("weight_fp8", weight_fp8)
        self.register_buffer("weight_scale", weight_scale)
        self.register_buffer("bias", bias)

    def _apply(self, fn, recurse: bool = True):
        """Apply ``fn`` (``.to()``, ``.cuda()``, ...) for its device only: a buffer that ``fn``
        would give another dtype is moved, as it is, to the device ``fn`` chose."""
        for name, buf in self._buffers.items():
            if buf is not None:
                moved = fn(buf)
                self._buffers[name] = moved if moved.dtype == buf.dtype else buf.to(moved.device)
        return self

    def dequantized_weight(self) -> torch.Tensor:
        """The weight the layer multiplies by: ``weight_fp8 * weight_scale``, float32 ``[N, K]``."""
        return dequantize_rowwise(self.weight_fp8, self.weight_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [..., K]`` -> ``[..., N]``: bf16 from ``torch._scaled_mm`` on CUDA, ``x``'s
        dtype when emulated."""
        lead = x.shape[:-1]
        x_fp8, x_scale = quantize_rowwise(x.reshape(-1, self.in_features))  # [M, K], [M, 1]
        if x.is_cuda and not self.emulate:
            out = torch._scaled_mm(
                x_fp8,  # [M, K] row-major
                self.weight_fp8.t(),  # [K, N] column-major (a view of the row-major [N, K])
                scale_a=x_scale,  # [M, 1] float32
                scale_b=self.weight_scale.view(1, -1),  # [1, N] float32
                bias=None if self.bias is None else self.bias.to(torch.bfloat16),  # [N]
                out_dtype=torch.bfloat16,
            )
        else:
            out = dequantize_rowwise(x_fp8, x_scale) @ self.dequantized_weight().t()
            if self.bias is not None:
                out = out + self.bias
            out = out.to(x.dtype if x.is_floating_point() else torch.float32)
        return out.reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"emulate={self.emulate}")


@functools.lru_cache(maxsize=None)
def fp8_linear_error(device: torch.device) -> str | None:
    """None when :class:`Fp8Linear` computes right on ``device``, else what went wrong, on one
    line; checked once per device.

    A ``[2, 16] x [16, 16]^T + b`` product of fixed operands (no random numbers drawn) through
    :meth:`Fp8Linear.forward` (``torch._scaled_mm`` on CUDA) must match the emulated product
    of the same quantized operands within bf16 rounding; a PyTorch built without row-wise FP8
    kernels for the GPU raises instead, which is returned as ``Type: message``.
    """
    n = ALIGNMENT
    try:
        grid = torch.arange(n * n, dtype=torch.float32, device=device).view(n, n)
        linear = nn.utils.skip_init(nn.Linear, n, n, device=device)
        with torch.no_grad():
            linear.weight.copy_((grid % 7 - 3) / 4)
            linear.bias.copy_(torch.arange(n, dtype=torch.float32, device=device) / 8)
        layer = Fp8Linear(linear)
        x = (grid[:2] * 3 % 5 - 2) / 2  # [2, 16]
        got = layer(x).float()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        layer.emulate = True
        want = layer(x).float()
    except (RuntimeError, TypeError, AttributeError, NotImplementedError) as exc:
        text = str(exc).strip()
        return f"{type(exc).__name__}: {text.splitlines()[0] if text else 'no message'}"
    if got.shape != want.shape or not torch.allclose(got, want, rtol=1e-2, atol=1e-2):
        worst = (got - want).abs().max().item() if got.shape == want.shape else float("nan")
        return f"torch._scaled_mm disagrees with the emulated product (largest difference {worst:.3g})"
    return None


def convert_to_fp8(model: nn.Module, emulate: bool = False) -> int:
    """Swap, in place, the linear layers of :data:`FP8_LINEARS` anywhere in ``model`` (a
    :class:`~fourreal.models.model4d.Model4D`, a :class:`~fourreal.models.dit.DiT` or a
    part of one) for :class:`Fp8Linear`: every block's attention ``qkv`` ``[3D, D]`` and
    ``proj`` ``[D, D]``, its MLP's ``w12`` ``[2H, D]`` and ``w3`` ``[D, H]`` (``H`` the hidden
    size), the sequential baseline's own attention copies, and the synchronization layers'
    ``w_v``, ``w_t`` ``[D, D]`` (hard) or ``linear`` ``[2D, 2D]`` (soft). A layer whose in or
    out features are not divisible by 16 stays as it is (``torch._scaled_mm`` cannot run it).
    Already converted layers are left alone. Returns the number of layers converted."""
    converted = 0
    for module in list(model.modules()):
        for name in FP8_LINEARS.get(type(module), ()):
            child = getattr(module, name)
            if type(child) is nn.Linear and fp8_compatible(child):
                setattr(module, name, Fp8Linear(child, emulate))
                converted += 1
    return converted
