"""Formats and files: the data the stages pass to each other and how it is written.

- :mod:`~fourreal.formats.grid`        4D grids (``.grid.npz``: views x times of frames, depth, cameras)
- :mod:`~fourreal.formats.clip`        clips (``.clip.npz``: one video with its mode)
- :mod:`~fourreal.formats.transport`   packing grids and clips small for moving them between machines
- :mod:`~fourreal.formats.files`       atomic writes of files and directories, JSON, loss curves
- :mod:`~fourreal.formats.preview`     contact sheets, mp4s and the HTML viewer of grids
- :mod:`~fourreal.formats.checkpoint`  sharded safetensors checkpoints and model weights
"""
