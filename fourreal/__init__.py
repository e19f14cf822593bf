"""4Real-Video: 4D video generation and reconstruction.

A 4D video is a grid of frames ``[V, T, H, W, 3]``: each row ``v`` is a fixed-view video,
each column ``t`` a freeze-time video. Each module owns one concept, in a subpackage per part
of the pipeline (docs/ARCHITECTURE.md maps them and lists the files each common change touches):

- :mod:`fourreal.formats`         grids, clips, previews, checkpoints, files
- :mod:`fourreal.data_making`     videos, pseudo-4D grids, assets, renders, gathered media
- :mod:`fourreal.models`          the video DiT, sync layers, the 4D model, upsampler, depth network
- :mod:`fourreal.training`        data, objectives, the training loop, model files
- :mod:`fourreal.sampling`        the ODE solver, videos, 4D grids by windows, the ablation, video to 4D
- :mod:`fourreal.baseline`        4Real's optimisation pipeline with SDS
- :mod:`fourreal.reconstruction`  deformable 3D Gaussians fitted to a grid, geometry, optical flow
- :mod:`fourreal.evaluation`      the paper's tables and their metrics
- :mod:`fourreal.running`         parameters, paths, provenance, stage entry points, the command
"""

__version__ = "0.1.0"
