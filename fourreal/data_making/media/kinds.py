"""The kinds of media (:class:`Kind`: :data:`VIDEOS`, :data:`ASSETS`): each one's catalogue,
how each of its files is checked and described; the check of every catalogue, run on
import; and which packages to gather (:func:`select`, :func:`iter_files`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

from fourreal.data_making.gltf import AssetError, check_asset
from fourreal.data_making.media.catalogue import ASSET_CATALOGUE, VIDEO_CATALOGUE
from fourreal.data_making.media.packages import MANAGERS, GatherError, MediaFile, MediaPackage
from fourreal.data_making.videos import VideoReadError, probe_video

@dataclass(frozen=True)
class Kind:
    """A kind of media: its catalogue and how each of its files is checked and reported.

    Attributes:
        name: ``videos`` or ``assets``.
        catalogue: the packages to gather from.
        script: its entry point (recorded in each manifest).
        suffixes: the suffixes of the files written.
        timed: whether its files have a duration (``MediaFile.seconds``) for the docs.
        measure: checks a written file completely and returns its manifest fields; raises
            :class:`GatherError` or :class:`~fourreal.data_making.videos.VideoReadError` when it must
            not be kept.
        describe: a manifest entry in a few words (the progress lines).
    """

    name: str
    catalogue: tuple[MediaPackage, ...]
    script: str
    suffixes: tuple[str, ...]
    timed: bool
    measure: Callable[[Path], dict]
    describe: Callable[[dict], str]


def _measure_video(path: Path) -> dict:
    info = probe_video(path)
    if info.frames < 2:
        raise VideoReadError(f"only {info.frames} frame")
    return dict(frames=info.frames, fps=info.fps, duration_s=info.duration_s, width=info.width,
                height=info.height, codec=info.codec)


def _measure_asset(path: Path) -> dict:
    """The assets stage's own check (a glTF 2.0 file with a mesh and an animation); Draco
    is refused too, since the stage needs gltf-transform for it."""
    try:
        info = check_asset(path, static="skip")
    except AssetError as exc:
        raise GatherError(str(exc).removeprefix(f"{path}: ")) from None
    if info.draco:
        raise GatherError("Draco-compressed (the assets stage would need gltf-transform); catalogue a plain copy")
    return dict(meshes=info.meshes, animations=info.animations)


VIDEOS = Kind("videos", VIDEO_CATALOGUE, "scripts/gather_videos.py",
              (".avi", ".mp4", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ogv"), True,
              _measure_video, lambda e: f"{e['duration_s']:.1f} s")
ASSETS = Kind("assets", ASSET_CATALOGUE, "scripts/gather_assets.py", (".glb",), False,
              _measure_asset, lambda e: f"{len(e['animations'])} clip{'s' * (len(e['animations']) != 1)}, "
                                      f"plays {e['animations'][0]}")
KINDS = {k.name: k for k in (VIDEOS, ASSETS)}


def _check_catalogue(catalogue: tuple[MediaPackage, ...], kind: Kind = VIDEOS) -> None:
    """Raise ``ValueError`` naming the entry unless every entry is well formed for ``kind``."""
    seen_packages: set[str] = set()
    seen_names: dict[str, str] = {}
    for pkg in catalogue:
        where = f"fourreal/data_making/media/catalogue.py: {pkg.package or '?'}"
        if not pkg.package or pkg.package in seen_packages:
            raise ValueError(f"{where}: package name empty or repeated")
        seen_packages.add(pkg.package)
        if pkg.manager not in MANAGERS:
            raise ValueError(f"{where}: manager {pkg.manager!r} is not one of {MANAGERS}")
        if not pkg.version or not pkg.files or not pkg.license_source:
            raise ValueError(f"{where}: needs a version, files and license_source")
        if pkg.sdist and pkg.manager != "pip":
            raise ValueError(f"{where}: sdist is for pip packages only")
        if pkg.optional and not pkg.why_optional:
            raise ValueError(f"{where}: optional needs why_optional")
        for f in pkg.files:
            if not f.member or not f.license.strip() or not f.description.strip():
                raise ValueError(f"{where}: every file needs a member, a license and a description")
            if f.is_glob and (f.name or f.inner or f.first_animation):
                raise ValueError(f"{where}: {f.member}: a glob takes no name, inner or first_animation")
            if f.name and PurePosixPath(f.name).name != f.name:
                raise ValueError(f"{where}: {f.name}: name must be a plain file name")
            if PurePosixPath(f.out_name).suffix.lower() not in kind.suffixes:
                raise ValueError(f"{where}: {f.out_name}: {kind.name} are written as {', '.join(kind.suffixes)}")
            if f.inner and kind is not VIDEOS:
                raise ValueError(f"{where}: {f.member}: inner is for videos inside zip archives")
            if f.first_animation and kind is not ASSETS:
                raise ValueError(f"{where}: {f.member}: first_animation is for assets")
            if not f.is_glob:
                if f.out_name in seen_names:
                    raise ValueError(f"{where}: {f.out_name} also comes from {seen_names[f.out_name]}; give one a name")
                seen_names[f.out_name] = pkg.package


for _kind in KINDS.values():
    _check_catalogue(_kind.catalogue, _kind)
del _kind


def select(names: list[str] | None = None, include_optional: bool = False, kind: Kind = VIDEOS) -> list[MediaPackage]:
    """The packages of ``kind`` to gather: those named (optional ones included), else every
    package that is not optional (every one with ``include_optional``)."""
    if names:
        known = {p.package: p for p in kind.catalogue}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise GatherError(f"unknown package {unknown[0]!r}; the {kind.name} catalogue has: {', '.join(known)}")
        return [known[n] for n in dict.fromkeys(names)]
    return [p for p in kind.catalogue if include_optional or not p.optional]


def iter_files(kind: Kind = VIDEOS) -> Iterator[tuple[MediaPackage, MediaFile]]:
    """Every ``(package, file)`` of ``kind``'s catalogue, in catalogue order."""
    for pkg in kind.catalogue:
        for f in pkg.files:
            yield pkg, f
