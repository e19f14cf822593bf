"""Animated 3D assets: where they come from, and whether they can be rendered.

Three sources, combinable (``assets.sources`` in params.yaml):

- ``procedural``: assets generated in Blender (:mod:`fourreal.procedural`), the default;
- ``local``: every .glb/.gltf in the directories of ``assets.local_dirs``;
- ``objaverse``: animated objects of a local Objaverse cache, laid out as the ``objaverse``
  package lays it out (``<cache>/hf-objaverse-v1/{object-paths.json.gz, metadata/*.json.gz,
  glbs/*/<uid>.glb}``). Nothing is downloaded: missing files are reported by name.

:func:`inspect_glb` reads a file's glTF JSON (no Blender needed) to reject what cannot be
rendered: not glTF, truncated, Draco-compressed (Blender's wheel cannot decode it), or
without meshes. Assets without animation are flagged.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fourreal.config import require
from fourreal.procedural import FAMILIES

log = logging.getLogger(__name__)

DRACO = "KHR_draco_mesh_compression"


class AssetError(ValueError):
    """An asset file cannot be used; the message names the file and the fix."""


@dataclass
class AssetsConfig:
    """Parameters of the ``assets`` stage.

    Attributes:
        sources: which sources to use, any of ``procedural``, ``local``, ``objaverse``.
        procedural_count: how many procedural assets to generate.
        procedural_seed: seed of the procedural generator.
        procedural_frames: animation length of procedural assets, in frames (24 fps).
        procedural_families: shape families to draw from.
        local_dirs: directories of .glb/.gltf files (relative to the repository root).
        objaverse_dir: root of a local Objaverse cache (the package's ``~/.objaverse``).
        objaverse_uids: uids to use; empty = every animated object present in the cache.
        objaverse_limit: at most this many Objaverse objects (0 = no limit).
        static: what to do with assets that have no animation: ``skip`` or ``static``
            (render them as a still scene).
        test_fraction: share of assets held out for evaluation (split by asset name).
        split_seed: seed of the split.
    """

    sources: list[Literal["procedural", "local", "objaverse"]] = field(default_factory=lambda: ["procedural", "local"])
    procedural_count: int = 12
    procedural_seed: int = 0
    procedural_frames: int = 48
    procedural_families: list[str] = field(default_factory=lambda: list(FAMILIES))
    local_dirs: list[str] = field(default_factory=lambda: ["assets/glb"])
    objaverse_dir: str = "~/.objaverse"
    objaverse_uids: list[str] = field(default_factory=list)
    objaverse_limit: int = 0
    static: Literal["skip", "static"] = "skip"
    test_fraction: float = 0.25
    split_seed: int = 0

    def __post_init__(self) -> None:
        require(len(self.sources) > 0, "sources", "name at least one source")
        require(self.procedural_count >= 0, "procedural_count", "must be >= 0")
        require(self.procedural_frames >= 2, "procedural_frames", "must be >= 2")
        unknown = sorted(set(self.procedural_families) - set(FAMILIES))
        require(not unknown and len(self.procedural_families) > 0, "procedural_families",
                f"must be a non-empty subset of {list(FAMILIES)}")
        require(self.objaverse_limit >= 0, "objaverse_limit", "must be >= 0")
        require(0 <= self.test_fraction < 1, "test_fraction", "must be in [0, 1)")


@dataclass
class GlbInfo:
    """What :func:`inspect_glb` found in a glTF file."""

    meshes: int
    animations: list[str]
    draco: bool


def _gltf_json(path: Path) -> dict:
    """The JSON document of a .glb (binary) or .gltf (text) file."""
    data = path.read_bytes()
    if path.suffix.lower() == ".gltf":
        try:
            return json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AssetError(f"{path}: not valid glTF JSON ({exc}); re-export it from your 3D tool") from None
    if len(data) < 20 or data[:4] != b"glTF":
        raise AssetError(f"{path}: not a binary glTF file (no 'glTF' header); re-export it as .glb")
    _, version, total = struct.unpack("<4sII", data[:12])
    if version != 2:
        raise AssetError(f"{path}: glTF version {version}, only glTF 2.0 is supported")
    if total > len(data):
        raise AssetError(f"{path}: truncated ({len(data)} of {total} bytes); download or export it again")
    chunk_len, chunk_type = struct.unpack("<I4s", data[12:20])
    if chunk_type != b"JSON" or 20 + chunk_len > len(data):
        raise AssetError(f"{path}: corrupt glTF JSON chunk; download or export it again")
    try:
        return json.loads(data[20 : 20 + chunk_len])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AssetError(f"{path}: corrupt glTF JSON ({exc}); download or export it again") from None


def inspect_glb(path: str | Path) -> GlbInfo:
    """Read a glTF file's structure without Blender; raise :class:`AssetError` if unusable."""
    path = Path(path)
    doc = _gltf_json(path)
    draco = DRACO in doc.get("extensionsUsed", []) or DRACO in doc.get("extensionsRequired", [])
    anims = [a.get("name", f"animation{i}") for i, a in enumerate(doc.get("animations", [])) if a.get("channels")]
    return GlbInfo(meshes=len(doc.get("meshes", [])), animations=anims, draco=draco)


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


def local_assets(dirs: list[str]) -> list[Path]:
    """The .glb/.gltf files directly in each of ``dirs``, sorted; a missing directory is an error."""
    found = []
    for d in dirs:
        root = Path(d).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"assets.local_dirs: {root} is not a directory; fix assets.local_dirs in params.yaml")
        found += sorted(p for p in root.iterdir() if p.suffix.lower() in (".glb", ".gltf"))
    return found


def objaverse_assets(cache_dir: str, uids: list[str], limit: int) -> tuple[list[Path], list[str]]:
    """Animated objects of a local Objaverse cache, through the ``objaverse`` package.

    Returns ``(paths, missing)``: the .glb files present, and messages naming what the cache
    lacks (metadata shards or object files). Never downloads.
    """
    try:
        import objaverse
    except ImportError:
        raise AssetError("assets.sources has 'objaverse' but the objaverse package is not installed: pip install objaverse") from None
    root = Path(cache_dir).expanduser() / "hf-objaverse-v1"
    paths_file = root / "object-paths.json.gz"
    if not paths_file.is_file():
        raise AssetError(f"{paths_file}: missing; copy an Objaverse cache there or fix assets.objaverse_dir")
    objaverse.BASE_PATH, objaverse._VERSIONED_PATH = str(root.parent), str(root)
    object_paths = objaverse._load_object_paths()
    wanted = uids or sorted({Path(p).stem for p in root.glob("glbs/*/*.glb")})
    missing: list[str] = []
    known = [u for u in wanted if u in object_paths]
    missing += [f"uid {u}: not in object-paths.json.gz" for u in wanted if u not in object_paths]
    shards = sorted({object_paths[u].split("/")[1] for u in known})
    absent = [s for s in shards if not (root / "metadata" / f"{s}.json.gz").is_file()]
    missing += [f"{root / 'metadata' / s}.json.gz: metadata shard missing" for s in absent]
    present = [u for u in known if object_paths[u].split("/")[1] not in absent]
    annotations = objaverse.load_annotations(present) if present else {}
    animated = [u for u in present if annotations.get(u, {}).get("animationCount", 0) > 0]
    out = []
    for uid in animated:
        path = root / object_paths[uid]
        if path.is_file():
            out.append(path)
        else:
            missing.append(f"{path}: object file missing from the cache")
        if limit and len(out) >= limit:
            break
    return out, missing


def split_assets(names: list[str], test_fraction: float, seed: int) -> dict[str, str]:
    """Assign each asset to ``train`` or ``test`` by a seeded hash of its name.

    The ``ceil(n * test_fraction)`` names with the smallest hashes are the test set, so the
    split depends only on the names and the seed, never on their order.
    """
    n_test = math.ceil(len(names) * test_fraction)
    ranked = sorted(names, key=lambda n: (zlib.crc32(f"{seed}:{n}".encode()), n))
    test = set(ranked[:n_test])
    return {n: ("test" if n in test else "train") for n in names}


def generate_procedural(out_dir: Path, cfg: AssetsConfig) -> list[Path]:
    """Generate ``cfg.procedural_count`` assets into ``out_dir`` in one bpy worker process."""
    from fourreal.procedural import asset_name, pick_family

    families = tuple(cfg.procedural_families)
    cmd = [sys.executable, "-m", "fourreal.procedural", "--out", str(out_dir), "--count", str(cfg.procedural_count),
           "--seed", str(cfg.procedural_seed), "--frames", str(cfg.procedural_frames), "--families", ",".join(families)]
    # The glTF exporter orders some buffers by Python hashes: fix the seed for identical files.
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    paths = [out_dir / f"{asset_name(cfg.procedural_seed, i, pick_family(cfg.procedural_seed, i, families))}.glb"
             for i in range(cfg.procedural_count)]
    missing = [p.name for p in paths if not p.is_file()]
    if proc.returncode != 0 or missing:
        raise RuntimeError(f"procedural generator failed (exit {proc.returncode}), missing {missing[:3]}: {proc.stderr.strip()[-500:]}")
    return paths


def _external_uris(path: Path) -> list[str]:
    doc = _gltf_json(path)
    return [x["uri"] for key in ("buffers", "images") for x in doc.get(key, []) if "uri" in x and not x["uri"].startswith("data:")]


@dataclass
class AssetEntry:
    """One usable asset in the manifest of the ``assets`` stage."""

    name: str
    source: str
    file: str
    origin: str
    animations: list[str]
    animated: bool
    split: str = "train"


def admit(src: Path, dst_dir: Path, name: str, source: str, cfg: AssetsConfig, origin: str = "") -> AssetEntry:
    """Check one asset file and place a renderable copy at ``dst_dir/<name>.glb|.gltf``.
    ``origin`` is what the manifest records as its origin (default: the file's path).

    Raises :class:`AssetError` with the reason when the asset must be skipped.
    """
    info = inspect_glb(src)
    if src.suffix.lower() == ".gltf" and _external_uris(src):
        raise AssetError(f"{src}: references external files {_external_uris(src)[:3]}; "
                         f"pack it into one file: `gltf-transform copy {src} {src.with_suffix('.glb')}`")
    if info.meshes == 0:
        raise AssetError(f"{src}: has no mesh to render")
    if not info.animations and cfg.static == "skip":
        raise AssetError(f"{src}: has no animation (set assets.static: static to render it as a still scene)")
    dst = dst_dir / f"{name}{src.suffix.lower()}"
    if info.draco:
        decompress_draco(src, dst)
        if inspect_glb(dst).draco:
            raise AssetError(f"{src}: still Draco-compressed after gltf-transform copy")
    elif src.resolve() != dst.resolve():
        shutil.copyfile(src, dst)
    return AssetEntry(name=name, source=source, file=dst.name, origin=origin or str(src), animations=info.animations,
                      animated=bool(info.animations))


def prepare_assets(cfg: AssetsConfig, glb_dir: Path) -> tuple[list[AssetEntry], dict[str, str]]:
    """Collect every configured source into ``glb_dir`` and split the usable assets.

    Returns ``(entries, skipped)``: the manifest entries (with ``split`` set) and
    ``{file: reason}`` for assets left out. Broken files never stop the others.
    """
    glb_dir.mkdir(parents=True, exist_ok=True)
    candidates: list[tuple[Path, str, str]] = []  # (file, name, source)
    skipped: dict[str, str] = {}
    generated = f"generated by fourreal/procedural.py (assets.procedural_seed: {cfg.procedural_seed})"
    if "procedural" in cfg.sources and cfg.procedural_count:  # written straight into glb_dir (a temporary)
        candidates += [(p, p.stem, "procedural") for p in generate_procedural(glb_dir, cfg)]
    if "local" in cfg.sources:
        candidates += [(p, p.stem, "local") for p in local_assets(cfg.local_dirs)]
    if "objaverse" in cfg.sources:
        paths, missing = objaverse_assets(cfg.objaverse_dir, cfg.objaverse_uids, cfg.objaverse_limit)
        for message in missing:
            log.warning("objaverse cache: %s", message)
        skipped.update({m.split(":")[0]: m for m in missing})
        candidates += [(p, f"objv_{p.stem}", "objaverse") for p in paths]
    entries: list[AssetEntry] = []
    seen: set[str] = set()
    for path, name, source in candidates:
        base, k = name, 1
        while name in seen:
            name, k = f"{base}_{k}", k + 1
        try:
            entries.append(admit(path, glb_dir, name, source, cfg, generated if source == "procedural" else ""))
            seen.add(name)
        except (AssetError, OSError) as exc:
            log.warning("skipping asset: %s", exc)
            skipped[str(path)] = str(exc)
            if source == "procedural":
                path.unlink(missing_ok=True)
    split = split_assets([e.name for e in entries], cfg.test_fraction, cfg.split_seed)
    for e in entries:
        e.split = split[e.name]
    return entries, skipped
