"""Helpers that build glTF files for tests by editing the JSON chunk of real .glb files."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path


def read_glb(path: Path) -> tuple[dict, bytes]:
    """``(json document, binary chunk bytes including its header)`` of a .glb."""
    data = path.read_bytes()
    length = struct.unpack("<I", data[12:16])[0]
    return json.loads(data[20 : 20 + length]), data[20 + length :]


def write_glb(path: Path, doc: dict, rest: bytes) -> Path:
    """Write a .glb from a JSON document and the original binary chunk."""
    body = json.dumps(doc).encode()
    body += b" " * (-len(body) % 4)
    chunk = struct.pack("<I4s", len(body), b"JSON") + body
    total = 12 + len(chunk) + len(rest)
    path.write_bytes(struct.pack("<4sII", b"glTF", 2, total) + chunk + rest)
    return path


def variant(src: Path, dst: Path, draco: bool = False, drop_animations: bool = False) -> Path:
    """A copy of ``src`` marked as Draco-compressed and/or stripped of its animations."""
    doc, rest = read_glb(src)
    if draco:
        doc["extensionsUsed"] = doc.get("extensionsUsed", []) + ["KHR_draco_mesh_compression"]
    if drop_animations:
        doc.pop("animations", None)
    return write_glb(dst, doc, rest)


def objaverse_cache(root: Path, objects: dict[str, tuple[Path | None, int]]) -> Path:
    """Lay out an Objaverse cache as the ``objaverse`` package does.

    ``objects`` maps uid -> (source .glb or None for a file absent from the cache,
    animationCount). Everything goes into shard ``000-001``.
    """
    base = root / "hf-objaverse-v1"
    (base / "metadata").mkdir(parents=True)
    (base / "glbs" / "000-001").mkdir(parents=True)
    paths = {uid: f"glbs/000-001/{uid}.glb" for uid in objects}
    with gzip.open(base / "object-paths.json.gz", "wt") as f:
        json.dump(paths, f)
    meta = {uid: {"uid": uid, "animationCount": count, "name": uid} for uid, (_, count) in objects.items()}
    with gzip.open(base / "metadata" / "000-001.json.gz", "wt") as f:
        json.dump(meta, f)
    for uid, (src, _) in objects.items():
        if src is not None:
            (base / paths[uid]).write_bytes(src.read_bytes())
    return root
