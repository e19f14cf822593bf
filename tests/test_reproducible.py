"""A fresh clone's `dvc repro` of the default pipeline reproduces the committed dvc.lock.

Builds the whole default pipeline (every stage, CPU defaults, procedural assets included)
twice, in two fresh copies of the repository, and compares every output hash with each
other and with the committed ``dvc.lock``, and every git-tracked output file byte for
byte. About 20 minutes on a 2-core machine, so it runs only when asked for:
``python -m pytest -m full tests/test_reproducible.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, copy_repo

pytestmark = pytest.mark.full


def build(repo: Path) -> float:
    """``dvc repro`` of every stage in ``repo``; returns the wall time in seconds."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    start = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=repo, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return time.monotonic() - start


def output_hashes(lock: dict) -> dict[str, str]:
    """``{output path: md5}`` of every stage in a parsed ``dvc.lock``."""
    return {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", [])}


def tracked_outputs(repo: Path) -> dict[str, bytes]:
    """The git-tracked files under ``data/`` (metrics, tables), by path."""
    names = subprocess.run(["git", "ls-files", "data"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    return {name: (repo / name).read_bytes() for name in names if (repo / name).is_file()}


def test_two_fresh_builds_reproduce_the_committed_dvc_lock(tmp_path):
    committed = yaml.safe_load((REPO / "dvc.lock").read_text())
    builds = []
    for name in ("a", "b"):
        repo = copy_repo(tmp_path / name)
        for output in output_hashes(committed):  # nothing of a previous build: every stage runs
            assert not (repo / output).exists() or output.endswith((".json", ".md", ".csv", ".ok"))
        seconds = build(repo)
        print(f"build {name}: {seconds:.0f} s")
        builds.append((yaml.safe_load((repo / "dvc.lock").read_text()), tracked_outputs(repo)))
    (lock_a, files_a), (lock_b, files_b) = builds
    hashes = output_hashes(committed)
    assert output_hashes(lock_a) == output_hashes(lock_b), "two fresh builds differ"
    differ = sorted(p for p in hashes if output_hashes(lock_a).get(p) != hashes[p])
    assert not differ, f"outputs differ from the committed dvc.lock: {differ}"
    assert lock_a == committed and lock_b == committed  # deps, params and outputs alike
    assert files_a == files_b == tracked_outputs(REPO)
