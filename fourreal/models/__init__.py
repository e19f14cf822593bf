"""Models: the networks and their configurations.

- :mod:`~fourreal.models.dit`        the video diffusion transformer and its size presets
- :mod:`~fourreal.models.sync`       the hard and soft synchronization layers
- :mod:`~fourreal.models.model4d`    the two-stream 4D model and its architectures
- :mod:`~fourreal.models.fp8`        FP8 linear layers with per-row scales, for sampling
- :mod:`~fourreal.models.upsampler`  the diffusion upsampler's configuration
- :mod:`~fourreal.models.depth`      the monocular depth U-Net (training, prediction, files)
"""
