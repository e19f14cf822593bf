"""Atomic file and directory writes: an output either exists whole or not at all."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from fourreal.training.faults import fault_point


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_stale(parent: Path, pattern: str) -> None:
    """Remove temporaries that a killed writer of the same output left behind (writers of
    one output never run at once: DVC's lock serialises stages)."""
    for stale in parent.glob(pattern):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; rename it onto ``final`` only on success.

    The temporary name keeps ``final``'s suffix so that writers which pick a format by
    extension (cv2, PyAV) still work. On error the temporary file is removed and ``final``
    is left untouched; temporaries of ``final`` left by a killed process are removed first.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(final.parent, f".{glob.escape(final.stem)}.*.tmp{glob.escape(final.suffix)}")
    fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; outputs are for everyone
        fault_point("before_rename", final.name)
        os.replace(tmp_path, final)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success it replaces ``final`` as a whole.
    Temporaries of ``final`` left by a killed process are removed first."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(final.parent, f".{glob.escape(final.name)}.*.tmp")
    shutil.rmtree(final.with_name(f".{final.name}.old"), ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700
        fault_point("before_rename", final.name)
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_loss_csv(path: str | os.PathLike, losses: list[float]) -> None:
    """Write a ``step,loss`` CSV (steps from 1; a DVC plot's input), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text("step,loss\n" + "".join(f"{i + 1},{v:.6f}\n" for i, v in enumerate(losses)))


def write_npz(path: str | os.PathLike, arrays: dict) -> None:
    """Write ``arrays`` as a compressed ``.npz`` archive, atomically."""
    import numpy as np

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


def read_npz(path: str | os.PathLike, error: type[Exception], what: str) -> dict:
    """Every array of an ``.npz`` archive (no pickles); ``error`` names the file when it is
    missing, not an archive or unreadable (``what`` is the kind of file, e.g. ``"grid"``)."""
    import zipfile

    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such {what} file")
    with open(path, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"  # npz archives are zip files; numpy would take others for pickles
    if not is_zip:
        raise error(f"{path}: not a {what} file (not an .npz archive); pass a {what} file written by the pipeline")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise error(f"{path}: unreadable {what} file ({exc}); re-run the stage that wrote it") from None
