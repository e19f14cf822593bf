"""Training stages resume only the very same run: new upstream data or weights start over."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import yaml

from fourreal.formats.grid import Grid, save_grid
from fourreal.models.dit import DiT, DiTConfig
from fourreal.training.model_files import export_model

from conftest import REPO


def random_grid(path: Path, seed: int) -> None:
    rgb = np.random.default_rng(seed).integers(0, 255, (3, 3, 16, 32, 3), dtype=np.uint8)
    save_grid(path, Grid(rgb=rgb, meta={"kind": "pseudo4d", "source": "test", "fps": 8.0}))


def workspace(root: Path) -> Path:
    """A directory laid out like the repository's data/, with a tiny base model and one grid
    per source, and params for a few steps of the soft variant."""
    cfg = DiTConfig(patch=4, dim=24, depth=2, heads=2)
    torch.manual_seed(0)
    base = DiT(cfg)
    for p in base.parameters():  # a base model that has trained: adaLN-Zero's zero gates would pass no gradient
        p.data.add_(0.05 * torch.randn_like(p))  # to the sync layers, and phase 1 would not depend on its data
    export_model(root / "data/train_base/model", base, {"preset": "tiny", "dit": asdict(cfg)}, 15.0)
    random_grid(root / "data/pseudo4d/grids/a.grid.npz", 0)
    random_grid(root / "data/render/grids/train/b.grid.npz", 1)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = params["train_4d"]
    section["variants"] = {"soft": section["variants"]["soft"]}
    for phase in ("pseudo", "render"):
        section[phase].update({"phases": [{"steps": 4, "height": 16, "width": 32, "frames": 2, "batch_size": 2}],
                               "checkpoint_every": 2, "warmup": 1})
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def train(root: Path, phase: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "stages.train_4d", "--variant", "soft", "--phase", phase], cwd=root,
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stderr


def test_train_4d_and_finetune_4d_start_over_when_data_or_upstream_weights_change(tmp_path):
    ws = workspace(tmp_path)
    assert "resumed from" not in train(ws, "pseudo")
    assert "resumed from data/train_4d/soft/checkpoints/step_0000004" in train(ws, "pseudo")  # same run: nothing to do
    assert "resumed from" not in train(ws, "render")
    assert "resumed from" in train(ws, "render")

    random_grid(ws / "data/pseudo4d/grids/a.grid.npz", 2)  # upstream data changed (e.g. pseudo4d.seed)
    log = train(ws, "pseudo")
    assert "come from another run" in log and "resumed from" not in log
    log = train(ws, "render")  # its phase-1 model changed with it
    assert "come from another run" in log and "resumed from" not in log

    cfg = DiTConfig(patch=4, dim=24, depth=2, heads=2)
    base = DiT(cfg)
    for p in base.parameters():
        p.data.add_(0.01)
    export_model(ws / "data/train_base/model", base, {"preset": "tiny", "dit": asdict(cfg)}, 15.0)  # new base model
    log = train(ws, "pseudo")
    assert "come from another run" in log and "resumed from" not in log


def test_a_run_resumes_under_another_checkpoint_log_or_time_setting(tmp_path):
    ws = workspace(tmp_path)
    train(ws, "pseudo")
    first = json.loads((ws / "data/train_4d/soft/run.json").read_text())
    assert first["resumed_from_step"] == 0 and first["seconds_all_runs"] == first["seconds"]
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["train_4d"]["pseudo"].update(checkpoint_every=1, log_every=1, time_limit_s=600.0, max_shard_mb=5.0)
    (ws / "params.yaml").write_text(yaml.safe_dump(params))
    assert "resumed from data/train_4d/soft/checkpoints/step_0000004" in train(ws, "pseudo")
    run = json.loads((ws / "data/train_4d/soft/run.json").read_text())
    assert run["resumed_from_step"] == 4 and run["tokens_per_s"] == 0  # this run did no steps itself
    # the training time of the run it resumed counts, up to the checkpoint it resumed from
    trained = json.loads((ws / "data/train_4d/soft/train_time.json").read_text())["seconds"]
    assert 0 < trained <= first["seconds"] + 0.01 and run["seconds_all_runs"] >= round(trained, 2)
