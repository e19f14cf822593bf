"""Data making: the videos, pseudo-4D grids, assets and rendered grids the models train on.

- :mod:`~fourreal.data_making.videos`      user videos cut into clips
- :mod:`~fourreal.data_making.media`       real footage and assets gathered from packages, with licenses
- :mod:`~fourreal.data_making.pseudo4d`    pseudo-4D grids from clips by smooth 2D affine motions
- :mod:`~fourreal.data_making.assets`      asset sources, checks and the train/test split
- :mod:`~fourreal.data_making.gltf`        glTF/GLB reading, Draco decompression
- :mod:`~fourreal.data_making.procedural`  procedural animated assets (generated in Blender)
- :mod:`~fourreal.data_making.render`      grids rendered with BlenderProc (jobs, keys, workers)
- :mod:`~fourreal.data_making.blender`     what runs inside Blender
- :mod:`~fourreal.data_making.fanout`      rendering fanned out over a Dask cluster through Prefect
"""
