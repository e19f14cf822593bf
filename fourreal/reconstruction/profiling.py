"""Named profiler ranges around the parts of a fit step (``fit.positions``, ``fit.render``,
``fit.loss``, ``fit.deformation``, ``fit.ssim``, ``fit.smoothness``), by which
``benchmarks/reconstruct_profile.py`` groups a profile's time."""

from __future__ import annotations

import contextlib

import torch
from torch.profiler import record_function


def fit_range(name: str) -> contextlib.AbstractContextManager:
    """A ``torch.profiler`` range named ``name`` (nothing is recorded unless a profiler runs);
    none while ``torch.compile`` traces, which would drop it with a warning."""
    return contextlib.nullcontext() if torch.compiler.is_compiling() else record_function(name)
