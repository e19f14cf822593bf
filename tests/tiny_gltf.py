"""A tiny animated glTF 2.0 written by hand for tests: one textured triangle whose node
slides (clip ``slide``) and spins (clip ``spin``), its buffer and texture in separate files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import cv2
import numpy as np

BIN_NAME = "tiny data.bin"  # a space: referenced percent-encoded, as glTF requires
PNG_NAME = "tiny.png"


def tiny_bin() -> bytes:
    """Positions (3 vec3), UVs (3 vec2), two key times, slide translations (2 vec3),
    spin rotations (2 quaternions): 36 + 24 + 8 + 24 + 32 bytes."""
    positions = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)
    uvs = np.array([[0, 0], [1, 0], [0, 1]], np.float32)
    times = np.array([0, 1], np.float32)
    slide = np.array([[0, 0, 0], [2, 0, 0]], np.float32)
    spin = np.array([[0, 0, 0, 1], [0, 0, 1, 0]], np.float32)
    return b"".join(a.tobytes() for a in (positions, uvs, times, slide, spin))


def tiny_png() -> bytes:
    ok, data = cv2.imencode(".png", np.full((4, 4, 3), 200, np.uint8))
    assert ok
    return data.tobytes()


def tiny_doc(animated: bool = True, bin_uri: str = BIN_NAME.replace(" ", "%20"), image_uri: str = PNG_NAME) -> dict:
    views = [(0, 36), (36, 24), (60, 8), (68, 24), (92, 32)]
    doc = {
        "asset": {"version": "2.0", "generator": "tests/tiny_gltf.py"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"name": "tri", "mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0, "TEXCOORD_0": 1}, "material": 0}]}],
        "materials": [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}],
        "textures": [{"source": 0}],
        "images": [{"uri": image_uri}],
        "buffers": [{"uri": bin_uri, "byteLength": 124}],
        "bufferViews": [{"buffer": 0, "byteOffset": o, "byteLength": n} for o, n in views],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3", "min": [0, 0, 0], "max": [1, 1, 0]},
            {"bufferView": 1, "componentType": 5126, "count": 3, "type": "VEC2"},
            {"bufferView": 2, "componentType": 5126, "count": 2, "type": "SCALAR", "min": [0], "max": [1]},
            {"bufferView": 3, "componentType": 5126, "count": 2, "type": "VEC3"},
            {"bufferView": 4, "componentType": 5126, "count": 2, "type": "VEC4"},
        ],
    }
    if animated:
        doc["animations"] = [
            {"name": "slide", "samplers": [{"input": 2, "output": 3}],
             "channels": [{"sampler": 0, "target": {"node": 0, "path": "translation"}}]},
            {"name": "spin", "samplers": [{"input": 2, "output": 4}],
             "channels": [{"sampler": 0, "target": {"node": 0, "path": "rotation"}}]},
        ]
    return doc


def write_tiny_gltf(directory: Path, stem: str = "tiny", animated: bool = True, companions: bool = True) -> Path:
    """``directory/<stem>.gltf`` with its .bin and .png beside it (unless not ``companions``)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}.gltf"
    path.write_text(json.dumps(tiny_doc(animated), indent=1))
    if companions:
        (directory / BIN_NAME).write_bytes(tiny_bin())
        (directory / PNG_NAME).write_bytes(tiny_png())
    return path


def glb_chunks(path: Path) -> tuple[dict, bytes]:
    """``(JSON document, binary chunk)`` of a .glb."""
    data = path.read_bytes()
    magic, version, total = struct.unpack("<4sII", data[:12])
    assert (magic, version, total) == (b"glTF", 2, len(data))
    n, kind = struct.unpack("<I4s", data[12:20])
    assert kind == b"JSON"
    doc = json.loads(data[20 : 20 + n])
    m, kind = struct.unpack("<I4s", data[20 + n : 28 + n])
    assert kind == b"BIN\x00"
    return doc, data[28 + n : 28 + n + m]


def view_bytes(doc: dict, binary: bytes, index: int) -> bytes:
    view = doc["bufferViews"][index]
    start = view.get("byteOffset", 0)
    return binary[start : start + view["byteLength"]]
