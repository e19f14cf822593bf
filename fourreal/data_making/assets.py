"""Animated 3D assets: where they come from, and whether they can be rendered.

Three sources, combinable (``assets.sources`` in params.yaml):

- ``procedural``: assets generated in Blender (:mod:`fourreal.data_making.procedural`), the default;
- ``local``: every .glb/.gltf in the directories of ``assets.local_dirs`` (a .gltf that
  references external buffers or images is packed with them into one .glb,
  :func:`fourreal.data_making.gltf.pack_glb`); ``scripts/gather_assets.py`` fills one such directory with real
  animated assets from packages (:mod:`fourreal.data_making.media`);
- ``objaverse``: animated objects of a local Objaverse cache, laid out as the ``objaverse``
  package lays it out (``<cache>/hf-objaverse-v1/{object-paths.json.gz, metadata/*.json.gz,
  glbs/*/<uid>.glb}``). Nothing is downloaded: missing files are reported by name.

Every asset passes :func:`fourreal.data_making.gltf.check_asset` (the file's glTF JSON, read without
Blender) to reject what cannot be rendered: not glTF, truncated, Draco-compressed
(Blender's wheel cannot decode it), or without meshes. Assets without animation are flagged.
``assets.test_assets`` names assets held out whatever the hash split says.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fourreal.data_making.gltf import AssetError, check_asset, decompress_draco, external_uris, gltf_to_glb, inspect_glb, read_gltf_json
from fourreal.data_making.procedural import FAMILIES
from fourreal.running.config import ConfigError, require

log = logging.getLogger(__name__)

@dataclass
class AssetsConfig:
    """Parameters of the ``assets`` stage.

    Attributes:
        sources: which sources to use, any of ``procedural``, ``local``, ``objaverse``.
        procedural_count: how many procedural assets to generate.
        procedural_seed: seed of the procedural generator.
        procedural_frames: animation length of procedural assets, in frames (24 fps).
        procedural_families: shape families to draw from.
        procedural_motion: scale of the procedural animations' amplitudes (bend, squash,
            spin, swing); 1.0 is the original motion, larger values move more.
        local_dirs: directories of .glb/.gltf files (relative to the repository root).
        objaverse_dir: root of a local Objaverse cache (the package's ``~/.objaverse``).
        objaverse_uids: uids to use; empty = every animated object present in the cache.
        objaverse_limit: at most this many Objaverse objects (0 = no limit).
        static: what to do with assets that have no animation: ``skip`` or ``static``
            (render them as a still scene).
        test_fraction: share of assets held out for evaluation (split by asset name).
        split_seed: seed of the split.
        test_assets: names of assets (file stems, e.g. ``knight``) always held out for
            evaluation; the others are split by ``test_fraction``. Each must be an asset found.
    """

    sources: list[Literal["procedural", "local", "objaverse"]] = field(default_factory=lambda: ["procedural", "local"])
    procedural_count: int = 12
    procedural_seed: int = 0
    procedural_frames: int = 48
    procedural_families: list[str] = field(default_factory=lambda: list(FAMILIES))
    procedural_motion: float = 1.0
    local_dirs: list[str] = field(default_factory=lambda: ["assets/glb"])
    objaverse_dir: str = "~/.objaverse"
    objaverse_uids: list[str] = field(default_factory=list)
    objaverse_limit: int = 0
    static: Literal["skip", "static"] = "skip"
    test_fraction: float = 0.25
    split_seed: int = 0
    test_assets: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        require(len(self.sources) > 0, "sources", "name at least one source")
        require(self.procedural_count >= 0, "procedural_count", "must be >= 0")
        require(self.procedural_frames >= 2, "procedural_frames", "must be >= 2")
        unknown = sorted(set(self.procedural_families) - set(FAMILIES))
        require(not unknown and len(self.procedural_families) > 0, "procedural_families",
                f"must be a non-empty subset of {list(FAMILIES)}")
        require(0 < self.procedural_motion <= 4, "procedural_motion", "must be in (0, 4] (1.0: the original motion)")
        require(self.objaverse_limit >= 0, "objaverse_limit", "must be >= 0")
        require(0 <= self.test_fraction < 1, "test_fraction", "must be in [0, 1)")
        require(all(n and "/" not in n and not n.endswith((".glb", ".gltf")) for n in self.test_assets), "test_assets",
                "each must be an asset name: a file stem such as knight, no directory or extension")
        require(len(set(self.test_assets)) == len(self.test_assets), "test_assets", "must not name an asset twice")


def local_assets(dirs: list[str]) -> list[Path]:
    """The .glb/.gltf files directly in each of ``dirs``, sorted; a missing directory is an error."""
    found = []
    for d in dirs:
        root = Path(d).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"assets.local_dirs: {root} is not a directory; fix assets.local_dirs in params.yaml "
                                    "(assets gathered from packages: `python scripts/gather_assets.py --out DIR` first)")
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


def split_assets(names: list[str], test_fraction: float, seed: int,
                 test_assets: list[str] | tuple[str, ...] = ()) -> dict[str, str]:
    """Assign each asset to ``train`` or ``test``: the names of ``test_assets`` to ``test``,
    the others by a seeded hash of their name.

    Of the others, the ``ceil(n * test_fraction)`` names with the smallest hashes are the
    test set, so the split depends only on the names, the held-out names and the seed,
    never on their order; with no ``test_assets`` it is the plain hash split.
    """
    held = set(test_assets)
    rest = [n for n in names if n not in held]
    n_test = math.ceil(len(rest) * test_fraction)
    ranked = sorted(rest, key=lambda n: (zlib.crc32(f"{seed}:{n}".encode()), n))
    test = set(ranked[:n_test]) | (held & set(names))
    return {n: ("test" if n in test else "train") for n in names}


def check_test_assets(cfg: AssetsConfig, names: list[str], skipped: dict[str, str] | None = None) -> None:
    """Raise :class:`ConfigError` (one line: the key, the name, the fix) unless every name of
    ``cfg.test_assets`` is among the asset ``names``; ``skipped`` (``{name: reason}``) says
    why a name found but not usable was left out."""
    missing = [n for n in cfg.test_assets if n not in names]
    if not missing:
        return
    name = missing[0]
    if skipped and name in skipped:
        raise ConfigError(f"assets.test_assets: {name!r} was skipped ({skipped[name]}); "
                          "fix that asset or remove it from assets.test_assets")
    shown = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
    raise ConfigError(
        f"assets.test_assets: {name!r} is not among the assets found ({shown or 'none'}); name one of those "
        "(file stems) or remove it from assets.test_assets; for gathered assets run "
        "`python scripts/gather_assets.py --out media/assets` first and list that directory in assets.local_dirs")


def procedural_paths(out_dir: Path, cfg: AssetsConfig) -> list[Path]:
    """The files :func:`generate_procedural` writes for ``cfg``, in order."""
    from fourreal.data_making.procedural import asset_name, pick_family

    families = tuple(cfg.procedural_families)
    return [out_dir / f"{asset_name(cfg.procedural_seed, i, pick_family(cfg.procedural_seed, i, families))}.glb"
            for i in range(cfg.procedural_count)]


def generate_procedural(out_dir: Path, cfg: AssetsConfig) -> list[Path]:
    """Generate ``cfg.procedural_count`` assets into ``out_dir`` in one bpy worker process."""
    cmd = [sys.executable, "-m", "fourreal.data_making.procedural", "--out", str(out_dir), "--count", str(cfg.procedural_count),
           "--seed", str(cfg.procedural_seed), "--frames", str(cfg.procedural_frames),
           "--families", ",".join(cfg.procedural_families), "--motion", repr(cfg.procedural_motion)]
    # The glTF exporter orders some buffers by Python hashes: fix the seed for identical files.
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    paths = procedural_paths(out_dir, cfg)
    missing = [p.name for p in paths if not p.is_file()]
    if proc.returncode != 0 or missing:
        raise RuntimeError(f"procedural generator failed (exit {proc.returncode}), missing {missing[:3]}: {proc.stderr.strip()[-500:]}")
    return paths


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
    """Check one asset file (:func:`check_asset`) and place a renderable copy at
    ``dst_dir/<name>.glb|.gltf`` (a .gltf with external files is packed into a .glb).
    ``origin`` is what the manifest records as its origin (default: the file's path).

    Raises :class:`AssetError` with the reason when the asset must be skipped.
    """
    info = check_asset(src, cfg.static)
    packed = src.suffix.lower() == ".gltf" and bool(external_uris(read_gltf_json(src)))
    dst = dst_dir / f"{name}{'.glb' if packed else src.suffix.lower()}"
    if info.draco:  # gltf-transform also packs external files into a .glb
        decompress_draco(src, dst)
        if inspect_glb(dst).draco:
            raise AssetError(f"{src}: still Draco-compressed after gltf-transform copy")
    elif packed:  # one self-contained file, as the renderer expects
        gltf_to_glb(src, dst)
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
    generated = f"generated by fourreal/data_making/procedural.py (assets.procedural_seed: {cfg.procedural_seed})"
    procedural = "procedural" in cfg.sources and cfg.procedural_count > 0
    if procedural:  # written straight into glb_dir (a temporary), once the names are checked
        candidates += [(p, p.stem, "procedural") for p in procedural_paths(glb_dir, cfg)]
    if "local" in cfg.sources:
        candidates += [(p, p.stem, "local") for p in local_assets(cfg.local_dirs)]
    if "objaverse" in cfg.sources:
        paths, missing = objaverse_assets(cfg.objaverse_dir, cfg.objaverse_uids, cfg.objaverse_limit)
        for message in missing:
            log.warning("objaverse cache: %s", message)
        skipped.update({m.split(":")[0]: m for m in missing})
        candidates += [(p, f"objv_{p.stem}", "objaverse") for p in paths]
    # Before any work: every held-out name must be a name an asset can get (a superset of
    # the names given below, which depend on which assets turn out usable).
    check_test_assets(cfg, _unique_names([name for _, name, _ in candidates]))
    if procedural:
        generate_procedural(glb_dir, cfg)
    entries: list[AssetEntry] = []
    seen: set[str] = set()
    skipped_names: dict[str, str] = {}
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
            skipped_names.setdefault(name, str(exc))
            if source == "procedural":
                path.unlink(missing_ok=True)
    check_test_assets(cfg, [e.name for e in entries], skipped_names)
    split = split_assets([e.name for e in entries], cfg.test_fraction, cfg.split_seed, cfg.test_assets)
    for e in entries:
        e.split = split[e.name]
    return entries, skipped


def _unique_names(names: list[str]) -> list[str]:
    """``names`` made distinct the way :func:`prepare_assets` does (``x``, ``x_1``, ...)."""
    seen: dict[str, None] = {}
    for name in names:
        base, k = name, 1
        while name in seen:
            name, k = f"{base}_{k}", k + 1
        seen[name] = None
    return list(seen)
