"""The clip: one short video labelled with its generation mode (see docs/GRID_FORMAT.md).

Clips are what the base video model trains on. ``mode`` is ``"dynamic"`` (a fixed-view or
freely moving video: scene and camera may move) or ``"freeze_time"`` (the scene is static,
only the camera moves). One clip is one ``.clip.npz`` file, written atomically.
:func:`grid_clips` cuts the clips of a rendered grid (its rows, columns and diagonal).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from fourreal.formats.files import read_npz, write_npz
from fourreal.formats.grid import Grid
from fourreal.running.errors import UserError

FORMAT = "fourreal.clip/1"
SUFFIX = ".clip.npz"
# The generation modes, in the order of the base model's context ids (fourreal.models.dit.CONTEXTS).
Mode = Literal["dynamic", "freeze_time"]
MODES: tuple[Mode, ...] = get_args(Mode)


class ClipFormatError(UserError, ValueError):
    """A clip file or array does not follow the clip format."""


@dataclass
class Clip:
    """A video clip.

    Attributes:
        rgb: ``[T, H, W, 3]`` uint8 frames.
        mode: ``"dynamic"`` or ``"freeze_time"``.
        meta: JSON-serialisable metadata; ``source`` and ``fps`` are expected.
    """

    rgb: np.ndarray
    mode: Mode = "dynamic"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, where: str = "clip") -> None:
        """Check shape, dtype and mode; raise :class:`ClipFormatError` naming the field."""
        rgb = self.rgb
        if not isinstance(rgb, np.ndarray) or rgb.ndim != 4 or rgb.shape[-1] != 3:
            got = getattr(rgb, "shape", type(rgb).__name__)
            raise ClipFormatError(f"{where}: rgb must be [T, H, W, 3], got {got}")
        if rgb.dtype != np.uint8:
            raise ClipFormatError(f"{where}: rgb must be uint8, got {rgb.dtype}")
        if min(rgb.shape[:3]) < 1:
            raise ClipFormatError(f"{where}: rgb has an empty axis {rgb.shape}")
        if self.mode not in MODES:
            raise ClipFormatError(f"{where}: mode must be one of {MODES}, got {self.mode!r}")


def save_clip(path: str | os.PathLike, clip: Clip) -> Path:
    """Validate and write ``clip`` to ``path`` (must end in ``.clip.npz``), atomically."""
    path = Path(path)
    if not path.name.endswith(SUFFIX):
        raise ClipFormatError(f"{path}: clip files must end in {SUFFIX}")
    clip.validate(str(path))
    meta = {"format": FORMAT, "mode": clip.mode, **clip.meta}
    write_npz(path, {"rgb": clip.rgb, "meta": np.array(json.dumps(meta, sort_keys=True))})
    return path


def load_clip(path: str | os.PathLike) -> Clip:
    """Read and validate a clip file; raise :class:`ClipFormatError` naming the file."""
    path = Path(path)
    arrays = read_npz(path, ClipFormatError, "clip")
    if "rgb" not in arrays or "meta" not in arrays:
        raise ClipFormatError(f"{path}: not a clip file (needs 'rgb' and 'meta' arrays, has {sorted(arrays)})")
    rgb, meta = arrays["rgb"], json.loads(str(arrays["meta"]))
    if meta.get("format") != FORMAT:
        raise ClipFormatError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    mode = meta.pop("mode", None)
    clip = Clip.__new__(Clip)
    clip.rgb, clip.mode, clip.meta = rgb, mode, meta
    clip.validate(str(path))
    return clip


def list_clips(directory: str | os.PathLike) -> list[Path]:
    """Sorted clip files directly under ``directory``."""
    return sorted(Path(directory).glob(f"*{SUFFIX}"))


def grid_clips(grid: Grid, name: str, rows: int, cols: int) -> list[tuple[str, Clip]]:
    """The clips the base video model trains on from one rendered grid, named after ``name``:
    ``rows`` rows spread evenly over the views (dynamic, ``<name>_row<i>``), ``cols`` columns
    spread evenly over the times (freeze-time, ``<name>_col<j>``) and the diagonal (dynamic,
    ``<name>_diag``); each clip's meta records its source grid, its fps and where it was cut."""
    v, t = grid.shape[:2]
    fps = grid.meta.get("fps", 8.0)
    out = []
    for i in np.unique(np.linspace(0, v - 1, rows).round().astype(int)) if rows else []:
        out.append((f"{name}_row{i}", Clip(grid.row(i), "dynamic", {"source": name, "fps": fps, "row": int(i)})))
    for j in np.unique(np.linspace(0, t - 1, cols).round().astype(int)) if cols else []:
        out.append((f"{name}_col{j}", Clip(grid.column(j), "freeze_time", {"source": name, "fps": fps, "col": int(j)})))
    n = min(v, t)
    diag = np.stack([grid.rgb[k, k] for k in range(n)])
    out.append((f"{name}_diag", Clip(diag, "dynamic", {"source": name, "fps": fps, "diagonal": True})))
    return out
