"""glTF files, read and packed without Blender: parsing a .gltf or .glb (:func:`parse_gltf`),
packing a glTF and the buffers and images it references into one self-contained .glb
(:func:`pack_glb`, :func:`gltf_to_glb`), inspecting its structure (:func:`inspect_glb`), the
checks an asset file must pass to be rendered (:func:`check_asset`) and decompressing Draco
meshes with the glTF-Transform CLI (:func:`decompress_draco`). Every failure is an
:class:`AssetError` naming the file and the fix.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from base64 import b64decode
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal
from urllib.parse import unquote, unquote_to_bytes

from fourreal.running.errors import UserError

DRACO = "KHR_draco_mesh_compression"


class AssetError(UserError, ValueError):
    """An asset file cannot be used; the message names the file and the fix."""


@dataclass
class GlbInfo:
    """What :func:`inspect_glb` found in a glTF file."""

    meshes: int
    animations: list[str]
    draco: bool


def parse_gltf(data: bytes, where: str | Path, text: bool) -> tuple[dict, bytes | None]:
    """``(JSON document, binary chunk or None)`` of glTF bytes: a .gltf (``text``) or a .glb.
    ``where`` names the file in errors (:class:`AssetError`)."""
    if text:
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AssetError(f"{where}: not valid glTF JSON ({exc}); re-export it from your 3D tool") from None
        asset = doc.get("asset") if isinstance(doc, dict) else None
        version = asset.get("version", "?") if isinstance(asset, dict) else "?"
        if not str(version).startswith("2"):
            raise AssetError(f"{where}: glTF version {version}, only glTF 2.0 is supported")
        return doc, None
    if len(data) < 20 or data[:4] != b"glTF":
        raise AssetError(f"{where}: not a binary glTF file (no 'glTF' header); re-export it as .glb")
    _, version, total = struct.unpack("<4sII", data[:12])
    if version != 2:
        raise AssetError(f"{where}: glTF version {version}, only glTF 2.0 is supported")
    if total > len(data):
        raise AssetError(f"{where}: truncated ({len(data)} of {total} bytes); download or export it again")
    chunk_len, chunk_type = struct.unpack("<I4s", data[12:20])
    if chunk_type != b"JSON" or 20 + chunk_len > len(data):
        raise AssetError(f"{where}: corrupt glTF JSON chunk; download or export it again")
    try:
        doc = json.loads(data[20 : 20 + chunk_len])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AssetError(f"{where}: corrupt glTF JSON ({exc}); download or export it again") from None
    rest = 20 + chunk_len
    binary = None
    if rest + 8 <= total:
        bin_len, bin_type = struct.unpack("<I4s", data[rest : rest + 8])
        if bin_type == b"BIN\x00":
            binary = data[rest + 8 : rest + 8 + bin_len]
    return doc, binary


def read_gltf_json(path: Path) -> dict:
    """The JSON document of a .glb (binary) or .gltf (text) file."""
    return parse_gltf(path.read_bytes(), path, path.suffix.lower() == ".gltf")[0]


_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".ktx2": "image/ktx2"}


def external_uris(doc: dict) -> list[str]:
    """The URIs of a glTF document's buffers and images that name other files (not ``data:``)."""
    return [x["uri"] for key in ("buffers", "images") for x in doc.get(key, [])
            if "uri" in x and not x["uri"].startswith("data:")]


def _data_uri(uri: str) -> bytes:
    head, _, payload = uri.partition(",")
    return b64decode(payload) if head.endswith(";base64") else unquote_to_bytes(payload)


def pack_glb(doc: dict, read: Callable[[str], bytes], binary: bytes | None = None,
             first_animation: str = "") -> bytes:
    """One binary glTF (.glb bytes) holding ``doc`` and every buffer and image it references.

    ``read(path)`` returns the bytes of a file the document references, by its URI
    (percent-decoded, relative to the document); ``data:`` URIs are decoded and ``binary``
    is a .glb's own binary chunk. All buffers become one (each part 4-byte aligned, the
    buffer views moved with them) and images become buffer views; nothing else changes, so
    meshes, skins and animations are kept exactly. ``first_animation`` names a clip to move
    to the front of ``animations`` (the one Blender's importer makes active, which the
    render stage plays). Raises :class:`AssetError` for a missing file or clip.
    """
    doc = json.loads(json.dumps(doc))  # a deep copy
    blob = bytearray()

    def append(data: bytes) -> int:
        blob.extend(b"\0" * (-len(blob) % 4))
        offset = len(blob)
        blob.extend(data)
        return offset

    def fetch(uri: str) -> bytes:
        if uri.startswith("data:"):
            return _data_uri(uri)
        try:
            return read(unquote(uri))
        except (OSError, KeyError) as exc:
            raise AssetError(f"references {uri}, which cannot be read ({exc})") from None

    starts = []
    for i, buf in enumerate(doc.get("buffers", [])):
        if "uri" in buf:
            data = fetch(buf["uri"])
        elif i == 0 and binary is not None:
            data = binary
        else:
            raise AssetError(f"buffer {i} has no uri and no binary chunk")
        if len(data) < buf.get("byteLength", 0):
            raise AssetError(f"buffer {i} ({buf.get('uri', 'binary chunk')}): {len(data)} bytes, "
                             f"{buf['byteLength']} declared")
        starts.append(append(data[: buf.get("byteLength", len(data))]))
    views = doc.setdefault("bufferViews", [])
    for view in views:
        view["byteOffset"] = view.get("byteOffset", 0) + starts[view.get("buffer", 0)]
        view["buffer"] = 0
    for image in doc.get("images", []):
        if "uri" not in image:
            continue
        uri = image.pop("uri")
        data = fetch(uri)
        if "mimeType" not in image:
            mime = uri.split(";")[0].removeprefix("data:") if uri.startswith("data:") else \
                _MIME.get(Path(unquote(uri)).suffix.lower(), "")
            if not mime:
                raise AssetError(f"image {uri}: unknown image type")
            image["mimeType"] = mime
        views.append({"buffer": 0, "byteOffset": append(data), "byteLength": len(data)})
        image["bufferView"] = len(views) - 1
    if not views:
        doc.pop("bufferViews")
    blob.extend(b"\0" * (-len(blob) % 4))
    doc["buffers"] = [{"byteLength": len(blob)}] if blob else []
    if not doc["buffers"]:
        doc.pop("buffers")
    if first_animation:
        names = [a.get("name", f"animation{i}") for i, a in enumerate(doc.get("animations", []))]
        if first_animation not in names:
            raise AssetError(f"has no animation {first_animation!r} (it has {names})")
        k = names.index(first_animation)
        doc["animations"].insert(0, doc["animations"].pop(k))
    body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    body += b" " * (-len(body) % 4)
    chunks = struct.pack("<I4s", len(body), b"JSON") + body
    if blob:
        chunks += struct.pack("<I4s", len(blob), b"BIN\x00") + bytes(blob)
    return struct.pack("<4sII", b"glTF", 2, 12 + len(chunks)) + chunks


def gltf_to_glb(src: Path, dst: Path) -> Path:
    """Pack ``src`` (.gltf or .glb) and the files it references (beside it) into ``dst`` (.glb)."""
    doc, binary = parse_gltf(src.read_bytes(), src, src.suffix.lower() == ".gltf")
    try:
        data = pack_glb(doc, lambda uri: (src.parent / uri).read_bytes(), binary)
    except AssetError as exc:
        raise AssetError(f"{src}: {exc}; put the files it references beside it") from None
    dst.write_bytes(data)
    return dst


def inspect_glb(path: str | Path) -> GlbInfo:
    """Read a glTF file's structure without Blender; raise :class:`AssetError` if unusable."""
    path = Path(path)
    doc = read_gltf_json(path)
    draco = DRACO in doc.get("extensionsUsed", []) or DRACO in doc.get("extensionsRequired", [])
    anims = [a.get("name", f"animation{i}") for i, a in enumerate(doc.get("animations", [])) if a.get("channels")]
    return GlbInfo(meshes=len(doc.get("meshes", [])), animations=anims, draco=draco)


def check_asset(path: str | Path, static: Literal["skip", "static"] = "skip") -> GlbInfo:
    """The checks an asset must pass to be rendered: glTF 2.0, readable, with a mesh, and
    animated unless ``static`` is ``static``. Draco compression is reported in the result
    (:func:`fourreal.data_making.assets.admit` decompresses it). Raises :class:`AssetError` naming the file and the fix."""
    info = inspect_glb(path)
    if info.meshes == 0:
        raise AssetError(f"{path}: has no mesh to render")
    if not info.animations and static == "skip":
        raise AssetError(f"{path}: has no animation (set assets.static: static to render it as a still scene)")
    return info


def decompress_draco(src: Path, dst: Path) -> Path:
    """Write a Draco-free copy of ``src`` to ``dst`` with the glTF-Transform CLI."""
    tool = shutil.which("gltf-transform")
    if tool is None:
        raise AssetError(
            f"{src}: Draco-compressed meshes, which Blender's Python wheel cannot decode. "
            "Install the decoder (`npm install -g @gltf-transform/cli`) and rerun, or decompress it yourself: "
            f"`gltf-transform copy {src} out.glb`."
        )
    result = subprocess.run([tool, "copy", str(src), str(dst)], capture_output=True, text=True)
    if result.returncode != 0 or not dst.exists():
        raise AssetError(f"{src}: gltf-transform could not decompress it: {result.stderr.strip()[-300:]}")
    return dst
