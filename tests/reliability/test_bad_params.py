"""A bad value anywhere in params.yaml stops `dvc repro` before DVC removes any output."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import copy_repo

pytestmark = pytest.mark.slow

# (section path, bad value, the one line that must name it)
BAD = [
    (("videos", "height"), -36, "error: params.yaml: videos.height = -36: must be even and >= 8"),
    (("pseudo4d", "zoom_max"), 9.0, "error: params.yaml: pseudo4d.zoom_max = 9.0: must be in [1, 4]"),
    (("render", "samples"), 0, "error: params.yaml: render.samples = 0: must be >= 1"),
    (("train_4d", "pseudo", "lr"), -0.1, "error: params.yaml: train_4d.pseudo.lr = -0.1: must be > 0"),
    (("reconstruct", "holdout_every"), "2", "error: params.yaml: reconstruct.holdout_every: expected an integer, got '2'"),
    (("evaluate", "worker"), 1, "error: params.yaml: evaluate.worker: unknown key; known keys are"),
]


def digests(*roots: Path) -> dict[str, str]:
    """SHA-256 of every file under ``roots`` (outputs in the workspace and DVC's cache)."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for root in roots for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_bad_values_in_several_sections_stop_dvc_repro_before_any_output_is_removed(tmp_path, video_dir):
    repo = copy_repo(tmp_path / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["videos"].update({"input_dir": str(video_dir), "height": 16, "width": 32, "clip_frames": 4, "clip_stride": 4,
                             "max_clips_per_video": 2, "exclude": []})
    params["pseudo4d"].update({"num_views": 3, "preview": {"max_items": 1, "cell_height": 16, "mp4": True, "html": True}})
    good = yaml.safe_dump(params)
    (repo / "params.yaml").write_text(good)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    def dvc(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=env, capture_output=True, text=True)

    made = dvc("repro", "pseudo4d")
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    outputs = [repo / "data/videos/clips", repo / "data/videos/metrics.json", repo / "data/pseudo4d/grids",
               repo / "data/pseudo4d/test_grids", repo / "data/pseudo4d/previews", repo / "data/pseudo4d/metrics.json",
               repo / "data/params.ok"]
    assert all(p.exists() for p in outputs)
    before = digests(repo / "data", repo / ".dvc/cache")
    for keys, value, line in BAD:
        bad = yaml.safe_load(good)
        section = bad
        for key in keys[:-1]:
            section = section[key]
        section[keys[-1]] = value
        (repo / "params.yaml").write_text(yaml.safe_dump(bad))
        for targets in ([], ["videos"], ["pseudo4d"]):  # the whole pipeline, and single targets
            run = dvc("repro", *targets)
            said = run.stdout + run.stderr
            assert run.returncode != 0, said[-2000:]
            errors = [x for x in said.splitlines() if x.startswith("error: ")]
            assert len(errors) == 1 and errors[0].startswith(line), said[-2000:]
            assert "Traceback" not in said
            assert digests(repo / "data", repo / ".dvc/cache") == before, f"{keys}: outputs changed"
    (repo / "params.yaml").write_text(good)
    status = dvc("status", "pseudo4d")  # the good params back: nothing to redo
    assert "up to date" in status.stdout, status.stdout
