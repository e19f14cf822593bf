"""The diffusion upsampler (paper Sec. 4.1: from 72x128 to 288x512): a video DiT at the
output resolution whose extra input channels hold the low-resolution video, resized up
(bilinear). It generates the residual between the truth and that bilinear video, divided
by ``residual_scale`` to bring it near unit variance, with the same rectified-flow loss on
the same videos (each downscaled by ``scale`` to make its input,
:func:`fourreal.training.losses.upsampler_loss`); applied row by row to grids
(:func:`fourreal.sampling.video_sampling.upsample_grid`)."""

from __future__ import annotations

from dataclasses import replace

from fourreal.models.dit import PRESETS, DiTConfig

# the DiT's extra input channels: the RGB of the low-resolution video, resized up
LOW_RES_CHANNELS = 3


def upsampler_config(preset: str) -> DiTConfig:
    """The upsampler of size ``preset`` (:data:`fourreal.models.dit.PRESETS`): that DiT with the
    low-resolution video ``[B, F, 3, H, W]`` as extra input channels."""
    return replace(PRESETS[preset], extra_channels=LOW_RES_CHANNELS)
