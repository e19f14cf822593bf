"""Read-only access to the members of a downloaded package: a .deb (its installed files), a
wheel or zip, or a tarball (npm's .tgz, an sdist)."""

from __future__ import annotations

import fnmatch
import subprocess
import tarfile
import zipfile
from pathlib import Path
from typing import IO

from fourreal.data_making.media.packages import GLOB_CHARS, GatherError

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
        if not GLOB_CHARS & set(pattern):
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
