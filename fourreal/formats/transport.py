"""Grids and clips packed small for travel between machines (e.g. renders made where Blender
runs, or clips cut from videos too large to carry, trained on where the GPU is), and unpacked
back into grid or clip files there.

A packed directory holds, per file, ``<name>.mp4``: its frames as H.264 with 4:4:4 chroma
(nothing of the 72x128 frames is subsampled); a grid's ``V x T`` cells go view-major. A grid
also has ``<name>.rest.npz`` (every other array of the grid, depth as float16 when kept). The
directory's ``index.json`` names the kind (``grids`` or ``clips``), each file's shape and
metadata, and the encoding. RGB is lossy at the chosen ``crf`` (the unpacked file's
``meta["transport"]`` says so): fine for training data, not for the ground truth of an
evaluation. Packing needs PyAV (x264); unpacking reads with OpenCV only, so it also works
where PyAV is missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fourreal.formats import clip as clips
from fourreal.formats import grid as grids
from fourreal.formats.files import atomic_dir, read_npz, write_json, write_npz
from fourreal.formats.preview import write_mp4

INDEX = "index.json"


def pack(src: str | Path, out: str | Path, crf: int = 12, depth: bool = False) -> dict[str, int | str]:
    """Pack every grid file of ``src`` (or, when it has none, every clip file) into the
    directory ``out``, atomically; returns the kind and the bytes before and after."""
    src, out = Path(src), Path(out)
    kind, paths = ("grids", grids.list_grids(src))
    if not paths:
        kind, paths = ("clips", clips.list_clips(src))
    if not paths:
        raise FileNotFoundError(f"{src}: no {grids.SUFFIX} or {clips.SUFFIX} files to pack")
    index = {"encoding": f"h264 yuv444p crf {crf}", kind: {}}
    with atomic_dir(out) as tmp:
        for path in paths:
            if kind == "grids":
                name, entry = _pack_grid(path, tmp, crf, depth)
            else:
                name, entry = _pack_clip(path, tmp, crf)
            index[kind][name] = entry
        write_json(tmp / INDEX, index)
    return {"kind": kind, "bytes": sum(p.stat().st_size for p in paths),
            "packed_bytes": sum(f.stat().st_size for f in out.iterdir())}


def _pack_grid(path: Path, tmp: Path, crf: int, depth: bool) -> tuple[str, dict]:
    """Write one grid's cells as ``<name>.mp4`` and its other arrays as ``<name>.rest.npz``."""
    grid = grids.load_grid(path)
    name = path.name.removesuffix(grids.SUFFIX)
    v, t, h, w, _ = grid.rgb.shape
    write_mp4(tmp / f"{name}.mp4", _even(grid.rgb.reshape(v * t, h, w, 3)), fps=8.0, crf=crf, pix_fmt="yuv444p")
    rest = {k: getattr(grid, k).astype(np.float32) for k in ("intrinsics", "cam_to_world")
            if getattr(grid, k) is not None}
    if depth and grid.depth is not None:
        rest["depth"] = grid.depth.astype(np.float16)
    write_npz(tmp / f"{name}.rest.npz", {"cond_mask": grid.cond_mask, **rest})
    return name, {"shape": [v, t, h, w], "meta": grid.meta}


def _pack_clip(path: Path, tmp: Path, crf: int) -> tuple[str, dict]:
    """Write one clip's frames as ``<name>.mp4``."""
    clip = clips.load_clip(path)
    name = path.name.removesuffix(clips.SUFFIX)
    t, h, w, _ = clip.rgb.shape
    write_mp4(tmp / f"{name}.mp4", _even(clip.rgb), fps=float(clip.meta.get("fps", 8.0)), crf=crf, pix_fmt="yuv444p")
    return name, {"shape": [t, h, w], "mode": clip.mode, "meta": clip.meta}


def _even(frames: np.ndarray) -> np.ndarray:
    """Frames padded by edge replication to even sides (H.264 needs them)."""
    n, h, w, _ = frames.shape
    return np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def unpack(packed: str | Path, out: str | Path) -> list[Path]:
    """Grid or clip files in ``out`` from a directory made by :func:`pack` (OpenCV decoding)."""
    packed, out = Path(packed), Path(out)
    if not (packed / INDEX).is_file():
        raise FileNotFoundError(f"{packed / INDEX}: missing; pass a directory written by `fourreal pack`")
    index = json.loads((packed / INDEX).read_text())
    written = []
    with atomic_dir(out) as tmp:
        for name, entry in index.get("grids", {}).items():
            v, t, h, w = entry["shape"]
            rgb = _read_frames(packed / f"{name}.mp4", v * t, h, w, grids.GridFormatError).reshape(v, t, h, w, 3)
            arrays = read_npz(packed / f"{name}.rest.npz", grids.GridFormatError, "packed grid")
            depth = arrays.pop("depth").astype(np.float32) if "depth" in arrays else None
            meta = {**entry["meta"], "transport": index["encoding"]}
            grid = grids.Grid(rgb=rgb, depth=depth, meta=meta, **arrays)
            written.append(grids.save_grid(tmp / f"{name}{grids.SUFFIX}", grid))
        for name, entry in index.get("clips", {}).items():
            t, h, w = entry["shape"]
            rgb = _read_frames(packed / f"{name}.mp4", t, h, w, clips.ClipFormatError)
            meta = {**entry["meta"], "transport": index["encoding"]}
            written.append(clips.save_clip(tmp / f"{name}{clips.SUFFIX}", clips.Clip(rgb, entry["mode"], meta)))
    return [out / p.name for p in written]


def _read_frames(path: Path, n: int, h: int, w: int, error: type[Exception]) -> np.ndarray:
    """The first ``n`` frames of the video ``path`` cropped to ``h x w``: ``[n, h, w, 3]`` uint8 RGB."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < n:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame[:h, :w], cv2.COLOR_BGR2RGB))
    cap.release()
    if len(frames) != n:
        raise error(f"{path}: {len(frames)} frames decoded, {n} expected; pack it again")
    return np.stack(frames)
