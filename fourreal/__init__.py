"""4Real-Video: 4D video generation and reconstruction.

A 4D video is a grid of frames ``[V, T, H, W, 3]``: each row ``v`` is a fixed-view video,
each column ``t`` a freeze-time video. Each module owns one concept; docs/ARCHITECTURE.md
maps them by part of the pipeline (formats, data making, models, training, sampling, the 4Real
baseline, reconstruction, evaluation, running) and lists the files each common change touches.
The subpackages: :mod:`fourreal.media` (real footage and assets gathered from packages) and
:mod:`fourreal.reconstruction` (deformable 3D Gaussians fitted to a grid).
"""

__version__ = "0.1.0"
