"""The numeric precision a 4D model samples in, and how a model is set up for it.

- ``fp32``: as the model is (the CPU's only precision);
- ``bf16``: bf16 autocast on CUDA;
- ``fp8``: the linear layers of the transformer blocks and of the sync layers in FP8 with
  per-row scales (:mod:`fourreal.models.fp8`), everything else (attention included) under bf16
  autocast; needs an NVIDIA GPU of compute capability 8.9 or more (Ada, Hopper, Blackwell)
  and a PyTorch whose ``torch._scaled_mm`` runs row-wise scales there (tried once per GPU);
- ``auto``: ``fp8`` where it runs, else ``bf16`` on CUDA, else ``fp32``.

A precision the device cannot run falls back (``fp8``: to ``bf16`` on an older GPU, to
``fp32`` on the CPU; ``bf16``: to ``fp32`` on the CPU) with a one-line warning that names the
device and the setting that silences it (:func:`resolve_precision`).
"""

from __future__ import annotations

import contextlib
import logging

import torch
from torch import nn

from fourreal.models.fp8 import convert_to_fp8, fp8_linear_error
from fourreal.running.config import ConfigError

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp8")
# torch._scaled_mm's FP8 tensor-core matmuls: Ada (8.9), Hopper (9.0) and later.
FP8_CAPABILITY = (8, 9)
_warned: set[str] = set()  # fallback warnings already given (each is given once per process)


def check_precision(value: str, key: str = "sample_4d.precision") -> None:
    """Raise :class:`~fourreal.running.config.ConfigError` (a ``ValueError``) naming ``key``
    and the allowed values unless ``value`` is one of :data:`PRECISIONS`."""
    if value not in PRECISIONS:
        raise ConfigError(f"{key} = {value!r}: not a precision; use one of {', '.join(PRECISIONS)}")


def describe_device(device: torch.device | str) -> str:
    """``cpu``, or a GPU's name and compute capability: ``NVIDIA A100-SXM4-80GB, compute
    capability 8.0`` (``NAME (ROCm)`` on an AMD GPU)."""
    device = torch.device(device)
    if device.type != "cuda":
        return device.type
    name = torch.cuda.get_device_name(device)
    if torch.version.hip:
        return f"{name} (ROCm)"
    major, minor = torch.cuda.get_device_capability(device)
    return f"{name}, compute capability {major}.{minor}"


def fp8_capable(device: torch.device | str) -> bool:
    """Whether ``device`` is an NVIDIA GPU (not ROCm, whose FP8 types differ) of compute
    capability 8.9 or more, the GPUs with FP8 tensor cores."""
    device = torch.device(device)
    if device.type != "cuda" or torch.version.hip:
        return False
    return tuple(torch.cuda.get_device_capability(device)) >= FP8_CAPABILITY


def fp8_runtime_error(device: torch.device | str) -> str | None:
    """None when :mod:`fourreal.models.fp8`'s ``torch._scaled_mm`` call runs on the CUDA
    ``device`` (tried once per device: :func:`fourreal.models.fp8.fp8_linear_error`), else its error."""
    device = torch.device(device)
    index = device.index if device.index is not None else torch.cuda.current_device()
    return fp8_linear_error(torch.device("cuda", index))


def fp8_supported(device: torch.device | str) -> bool:
    """Whether :mod:`fourreal.models.fp8`'s ``torch._scaled_mm`` path runs on ``device``: a GPU
    of :func:`fp8_capable` on which the call itself works (:func:`fp8_runtime_error`)."""
    return fp8_capable(device) and fp8_runtime_error(device) is None


def _setting(key: str, value: str) -> str:
    """How ``key`` is set to ``value``: ``sample_4d.precision: fp32`` in a params file,
    ``--precision fp32`` on a command line."""
    return f"{key} {value}" if key.startswith("--") else f"{key}: {value}"


def _fall_back(requested: str, instead: str, device: torch.device, key: str) -> str:
    """Warn once (one line) that ``requested`` does not run on ``device``; returns ``instead``."""
    found = describe_device(device)
    if requested != "fp8":
        need = f"{requested} sampling needs a CUDA GPU"
    elif fp8_capable(device):  # the GPU has FP8 tensor cores but this PyTorch's call failed on it
        need = "fp8 needs torch._scaled_mm with row-wise scales, which failed here"
        found = f"{found}; {fp8_runtime_error(device)}"
    else:
        need = f"fp8 needs an NVIDIA GPU of compute capability {FP8_CAPABILITY[0]}.{FP8_CAPABILITY[1]}+"
    message = (f"{need} (found {found}); sampling in {instead} instead — set {_setting(key, instead)} to "
               "silence this")
    if message not in _warned:
        _warned.add(message)
        log.warning(message)
    return instead


def resolve_precision(requested: str, device: torch.device | str, key: str = "sample_4d.precision") -> str:
    """The precision to sample in on ``device`` for the ``requested`` one (:data:`PRECISIONS`):
    ``fp32``, ``bf16`` or ``fp8``.

    ``auto`` is ``fp8`` on a GPU that runs it (:func:`fp8_supported`), ``bf16`` on another
    CUDA GPU, ``fp32`` on the CPU. ``fp8`` asked for where it does not run falls back to
    ``bf16`` (CUDA) or ``fp32`` (CPU), ``bf16`` on the CPU to ``fp32``, each with a one-line
    warning (once) naming the device and ``key``, the setting that silences it; ``auto``
    warns only on a GPU of compute capability 8.9+ where the FP8 call failed. An unknown
    value raises :class:`~fourreal.running.config.ConfigError` (a ``ValueError``) naming ``key``.
    """
    check_precision(requested, key)
    device = torch.device(device)
    cuda = device.type == "cuda"
    if requested == "auto":
        if fp8_supported(device):
            return "fp8"
        if fp8_capable(device):  # FP8 tensor cores, but this PyTorch's call failed on them
            return _fall_back("fp8", "bf16", device, key)
        return "bf16" if cuda else "fp32"
    if requested == "fp8" and not fp8_supported(device):
        return _fall_back("fp8", "bf16" if cuda else "fp32", device, key)
    if requested == "bf16" and not cuda:
        return _fall_back("bf16", "fp32", device, key)
    return requested


def prepare_model(model: nn.Module, precision: str, emulate: bool = False) -> nn.Module:
    """``model`` set up, in place, to sample in the resolved ``precision``: for ``fp8`` its
    block and sync linear layers converted (:func:`fourreal.models.fp8.convert_to_fp8`;
    ``emulate``: in fp32 arithmetic, for a CPU); as it is otherwise (``bf16`` is autocast,
    :func:`autocast`). Returns ``model``."""
    check_precision(precision, "precision")
    if precision == "fp8":
        count = convert_to_fp8(model, emulate=emulate)
        log.info("fp8: %d linear layers converted", count)
    return model


def autocast(device: torch.device | str, precision: str):
    """The context a model's forward pass runs in: bf16 autocast on CUDA for ``bf16`` and
    ``fp8`` (the layers FP8 does not cover run in bf16), nothing otherwise."""
    device = torch.device(device)
    if device.type == "cuda" and precision in ("bf16", "fp8"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
