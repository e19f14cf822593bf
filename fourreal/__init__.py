"""4Real-Video: 4D video generation and reconstruction.

A 4D video is a grid of frames ``[V, T, H, W, 3]``: each row ``v`` is a fixed-view video,
each column ``t`` a freeze-time video. The modules of this package each own one concept:

- :mod:`fourreal.grid`      the on-disk grid format every stage reads and writes
- :mod:`fourreal.clip`      the on-disk clip format (one video, labelled with its mode)
- :mod:`fourreal.preview`   contact sheets, mp4s and the HTML grid viewer
- :mod:`fourreal.videos`    ingestion of user videos into clips
- :mod:`fourreal.pseudo4d`  pseudo-4D grids from 2D affine camera-like motions
- :mod:`fourreal.config`    typed, validated stage configs loaded from ``params.yaml``
- :mod:`fourreal.files`     atomic writes shared by every writer
"""

__version__ = "0.1.0"
