"""The 4D grid: the on-disk contract between all stages (see docs/GRID_FORMAT.md).

A grid holds ``V`` views by ``T`` times of ``H x W`` RGB frames. Row ``v`` (``rgb[v]``) is a
fixed-view video, column ``t`` (``rgb[:, t]``) a freeze-time video. Depth and cameras are
optional (renders have them, generated and pseudo-4D grids do not). One grid is one
``.grid.npz`` file, written atomically.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fourreal.formats.files import read_npz, write_npz
from fourreal.running.errors import UserError

FORMAT = "fourreal.grid/1"
SUFFIX = ".grid.npz"


class GridFormatError(UserError, ValueError):
    """A grid file or array does not follow the grid format."""


def default_cond_mask(views: int, times: int) -> np.ndarray:
    """The model's conditioning cells: the first row (fixed-view video) and first column
    (freeze-time video). Returns a bool array ``[V, T]``."""
    mask = np.zeros((views, times), dtype=bool)
    mask[0, :] = True
    mask[:, 0] = True
    return mask


@dataclass
class Grid:
    """A 4D video grid.

    Attributes:
        rgb: ``[V, T, H, W, 3]`` uint8 frames; ``rgb[v, t]`` is view ``v`` at time ``t``.
        depth: optional ``[V, T, H, W]`` float32 camera-space z in scene units, ``0`` where
            nothing was hit (background).
        intrinsics: optional ``[V, 3, 3]`` float32 pinhole matrices in pixels.
        cam_to_world: optional ``[V, T, 4, 4]`` float32 camera-to-world transforms, OpenCV
            convention (x right, y down, z forward).
        cond_mask: ``[V, T]`` bool, True for cells given as conditioning.
        meta: JSON-serialisable metadata; ``source``, ``seed`` and ``fps`` are expected.
    """

    rgb: np.ndarray
    depth: np.ndarray | None = None
    intrinsics: np.ndarray | None = None
    cam_to_world: np.ndarray | None = None
    cond_mask: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.cond_mask is None and isinstance(self.rgb, np.ndarray) and self.rgb.ndim == 5:
            self.cond_mask = default_cond_mask(self.rgb.shape[0], self.rgb.shape[1])
        self.validate()

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(V, T, H, W)``."""
        v, t, h, w, _ = self.rgb.shape
        return v, t, h, w

    def row(self, v: int) -> np.ndarray:
        """Fixed-view video of view ``v``: ``[T, H, W, 3]``."""
        return self.rgb[v]

    def column(self, t: int) -> np.ndarray:
        """Freeze-time video at time ``t``: ``[V, H, W, 3]``."""
        return self.rgb[:, t]

    def validate(self, where: str = "grid") -> None:
        """Check shapes, dtypes and values; raise :class:`GridFormatError` naming the field."""
        rgb = self.rgb
        if not isinstance(rgb, np.ndarray) or rgb.ndim != 5 or rgb.shape[-1] != 3:
            got = getattr(rgb, "shape", type(rgb).__name__)
            raise GridFormatError(f"{where}: rgb must be [V, T, H, W, 3], got {got}")
        if rgb.dtype != np.uint8:
            raise GridFormatError(f"{where}: rgb must be uint8, got {rgb.dtype}")
        v, t, h, w = self.shape
        if min(v, t, h, w) < 1:
            raise GridFormatError(f"{where}: rgb has an empty axis {rgb.shape}")
        expected = {
            "depth": ((v, t, h, w), np.floating),
            "intrinsics": ((v, 3, 3), np.floating),
            "cam_to_world": ((v, t, 4, 4), np.floating),
            "cond_mask": ((v, t), np.bool_),
        }
        for name, (shape, kind) in expected.items():
            arr = getattr(self, name)
            if arr is None:
                continue
            if not isinstance(arr, np.ndarray) or arr.shape != shape:
                got = getattr(arr, "shape", type(arr).__name__)
                raise GridFormatError(f"{where}: {name} must have shape {list(shape)} for a {v}x{t} grid of {h}x{w}, got {got}")
            if not np.issubdtype(arr.dtype, kind):
                raise GridFormatError(f"{where}: {name} must be {kind.__name__}, got {arr.dtype}")
            if kind is np.floating and not np.isfinite(arr).all():
                raise GridFormatError(f"{where}: {name} contains NaN or inf")
        if self.depth is not None and (self.depth < 0).any():
            raise GridFormatError(f"{where}: depth must be >= 0 (0 marks background)")
        if not isinstance(self.meta, dict):
            raise GridFormatError(f"{where}: meta must be a dict, got {type(self.meta).__name__}")


def save_grid(path: str | os.PathLike, grid: Grid) -> Path:
    """Validate and write ``grid`` to ``path`` (must end in ``.grid.npz``), atomically."""
    path = Path(path)
    if not path.name.endswith(SUFFIX):
        raise GridFormatError(f"{path}: grid files must end in {SUFFIX}")
    grid.validate(str(path))
    arrays: dict[str, np.ndarray] = {"rgb": grid.rgb, "cond_mask": grid.cond_mask}
    for name in ("depth", "intrinsics", "cam_to_world"):
        arr = getattr(grid, name)
        if arr is not None:
            arrays[name] = arr.astype(np.float32)
    meta = {"format": FORMAT, **grid.meta}
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    write_npz(path, arrays)
    return path


def load_grid(path: str | os.PathLike) -> Grid:
    """Read and validate a grid file; raise :class:`GridFormatError` naming the file."""
    path = Path(path)
    arrays = read_npz(path, GridFormatError, "grid")
    if "rgb" not in arrays or "meta" not in arrays:
        raise GridFormatError(f"{path}: not a grid file (needs 'rgb' and 'meta' arrays, has {sorted(arrays)})")
    meta = json.loads(str(arrays.pop("meta")))
    if meta.get("format") != FORMAT:
        raise GridFormatError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    grid = Grid.__new__(Grid)
    grid.rgb = arrays["rgb"]
    grid.depth = arrays.get("depth")
    grid.intrinsics = arrays.get("intrinsics")
    grid.cam_to_world = arrays.get("cam_to_world")
    grid.cond_mask = arrays.get("cond_mask")
    grid.meta = meta
    if grid.cond_mask is None:
        raise GridFormatError(f"{path}: cond_mask missing")
    grid.validate(str(path))
    return grid


def list_grids(directory: str | os.PathLike) -> list[Path]:
    """Sorted grid files directly under ``directory``."""
    return sorted(Path(directory).glob(f"*{SUFFIX}"))
