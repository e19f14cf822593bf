"""Grids packed small for travel between machines (e.g. renders made where Blender runs,
trained on where the GPU is), and unpacked back into grid files there.

A packed directory holds, per grid, ``<name>.mp4`` (its ``V x T`` cells view-major as
H.264 frames, 4:4:4 chroma: nothing of the 72x128 frames is subsampled) and
``<name>.rest.npz`` (every other array of the grid, depth as float16 when kept, and the
metadata), plus ``index.json`` (names, shapes, the encoding). RGB is lossy at the chosen
``crf`` (the unpacked grid's ``meta["transport"]`` says so): fine for training data, not for
the ground truth of an evaluation. Packing needs PyAV (x264); unpacking reads with OpenCV
only, so it also works where PyAV is missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fourreal.files import atomic_dir, read_npz, write_json, write_npz
from fourreal.grid import SUFFIX, Grid, GridFormatError, list_grids, load_grid, save_grid
from fourreal.preview import write_mp4

INDEX = "index.json"


def pack_grids(src: str | Path, out: str | Path, crf: int = 12, depth: bool = False) -> dict[str, int]:
    """Pack every grid file of ``src`` into the directory ``out`` (atomically); returns the
    bytes of the grid files and of the packed directory."""
    src, out = Path(src), Path(out)
    paths = list_grids(src)
    if not paths:
        raise FileNotFoundError(f"{src}: no {SUFFIX} files to pack")
    index = {"encoding": f"h264 yuv444p crf {crf}", "grids": {}}
    with atomic_dir(out) as tmp:
        for path in paths:
            grid = load_grid(path)
            name = path.name.removesuffix(SUFFIX)
            v, t, h, w, _ = grid.rgb.shape
            write_mp4(tmp / f"{name}.mp4", _even(grid.rgb.reshape(v * t, h, w, 3)), fps=8.0, crf=crf, pix_fmt="yuv444p")
            rest = {k: getattr(grid, k).astype(np.float32) for k in ("intrinsics", "cam_to_world")
                    if getattr(grid, k) is not None}
            if depth and grid.depth is not None:
                rest["depth"] = grid.depth.astype(np.float16)
            write_npz(tmp / f"{name}.rest.npz", {"cond_mask": grid.cond_mask, **rest})
            index["grids"][name] = {"shape": [v, t, h, w], "meta": grid.meta}
        write_json(tmp / INDEX, index)
    return {"grid_bytes": sum(p.stat().st_size for p in paths),
            "packed_bytes": sum(f.stat().st_size for f in out.iterdir())}


def _even(frames: np.ndarray) -> np.ndarray:
    """Frames padded by edge replication to even sides (H.264 needs them)."""
    n, h, w, _ = frames.shape
    return np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def unpack_grids(packed: str | Path, out: str | Path) -> list[Path]:
    """Grid files in ``out`` from a directory made by :func:`pack_grids` (OpenCV decoding)."""
    import cv2

    packed, out = Path(packed), Path(out)
    if not (packed / INDEX).is_file():
        raise FileNotFoundError(f"{packed / INDEX}: missing; pass a directory written by `fourreal pack`")
    index = json.loads((packed / INDEX).read_text())
    written = []
    with atomic_dir(out) as tmp:
        for name, entry in index["grids"].items():
            v, t, h, w = entry["shape"]
            cap = cv2.VideoCapture(str(packed / f"{name}.mp4"))
            frames = []
            while len(frames) < v * t:
                ok, frame = cap.read()
                if not ok:
                    break
                frames.append(cv2.cvtColor(frame[:h, :w], cv2.COLOR_BGR2RGB))
            cap.release()
            if len(frames) != v * t:
                raise GridFormatError(f"{packed / name}.mp4: {len(frames)} frames decoded, {v * t} expected; "
                                      "pack it again")
            arrays = read_npz(packed / f"{name}.rest.npz", GridFormatError, "packed grid")
            depth = arrays.pop("depth").astype(np.float32) if "depth" in arrays else None
            meta = {**entry["meta"], "transport": index["encoding"]}
            grid = Grid(rgb=np.stack(frames).reshape(v, t, h, w, 3), depth=depth, meta=meta, **arrays)
            written.append(save_grid(tmp / f"{name}{SUFFIX}", grid))
    return [out / p.name for p in written]
