"""Model bundles: the frozen base weights stored once, bf16, loaded back exactly."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from fourreal.formats.checkpoint import CheckpointError, load_tensors, save_tensors
from fourreal.formats.grid import load_grid
from fourreal.models.depth import DepthNet, load_depth_model, save_depth_model
from fourreal.models.dit import DiT, DiTConfig
from fourreal.models.model4d import build_model4d
from fourreal.running.bundle import bundle_paths, write_bundle
from fourreal.running.cli import main
from fourreal.training.model_files import export_model, load_model, load_model4d, model4d_config
from fourreal.training.optim import OptimConfig, Phase

from conftest import REPO, moving_square_frames, write_video

CFG = DiTConfig(patch=4, dim=24, depth=1, heads=2)
OPTIM = OptimConfig(phases=[Phase(1, 16, 32, 4, 1)])


def trained_models(root: Path, train_base: bool = False) -> dict[str, Path]:
    """A base model, a soft 4D model around it (sync layers changed; with ``train_base`` a
    base weight too) and a depth network, exported as the stages export them."""
    torch.manual_seed(0)
    base = DiT(CFG)
    for p in base.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    export_model(root / "base", base, {"preset": "tiny", "dit": asdict(CFG), "training_frames": 4}, 15.0)
    model = build_model4d(load_model(root / "base"), "soft")
    with torch.no_grad():
        for p in model.syncs.parameters():
            p.add_(0.1 * torch.randn_like(p))
        if train_base:
            next(model.base.parameters()).add_(0.1)
    export_model(root / "soft", model, model4d_config(model, OPTIM), 15.0)
    save_depth_model(root / "depth", DepthNet(4))
    return {"base": root / "base", "model_4d": root / "soft", "depth": root / "depth"}


def bf16(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.to(torch.bfloat16).float() for k, v in tensors.items()}


def test_a_bundle_stores_the_frozen_base_once_and_loads_the_same_model(tmp_path):
    src = trained_models(tmp_path / "stages")
    sizes = write_bundle(tmp_path / "bundle", **src)
    stored = load_tensors(tmp_path / "bundle" / "model_4d", "model")
    assert stored and all(k.startswith("syncs.") for k in stored)  # the base weights are not repeated
    assert all(v.dtype == torch.bfloat16 for v in stored.values())
    assert sizes["model_4d"] < sizes["base"]
    spec = json.loads((tmp_path / "bundle" / "model_4d" / "config.json").read_text())
    assert spec["base"] == "../base" and spec["training_window"]["views"] == 4
    loaded = load_model4d(tmp_path / "bundle" / "model_4d").state_dict()
    original = bf16(load_model4d(src["model_4d"]).state_dict())
    assert loaded.keys() == original.keys()
    assert all(torch.equal(loaded[k], original[k]) for k in loaded)  # the trained model, rounded to bf16
    depth = load_depth_model(tmp_path / "bundle" / "depth")
    assert all(torch.equal(a, b.to(torch.bfloat16).float()) for a, b in
               zip(depth.state_dict().values(), load_depth_model(src["depth"]).state_dict().values()))


def test_a_4d_model_whose_base_trained_keeps_its_own_weights(tmp_path):
    src = trained_models(tmp_path / "stages", train_base=True)
    write_bundle(tmp_path / "bundle", **src)
    stored = load_tensors(tmp_path / "bundle" / "model_4d", "model")
    assert any(k.startswith("base.") for k in stored)
    assert "base" not in json.loads((tmp_path / "bundle" / "model_4d" / "config.json").read_text())
    loaded = load_model4d(tmp_path / "bundle" / "model_4d").state_dict()
    original = bf16(load_model4d(src["model_4d"]).state_dict())
    assert all(torch.equal(loaded[k], original[k]) for k in loaded)


def test_a_4d_model_stored_over_a_linked_base_bundles_against_that_base(tmp_path):
    """A 4D model directory holding only its own tensors and a link to its base (how trained
    models travel between machines) bundles the same as the full export."""
    src = trained_models(tmp_path / "stages")
    own = {k: v for k, v in load_tensors(src["model_4d"], "model").items() if not k.startswith("base.")}
    linked = tmp_path / "stages" / "linked" / "model"
    linked.mkdir(parents=True)
    save_tensors(linked, "model", own, 15.0)
    spec = json.loads((src["model_4d"] / "config.json").read_text())
    (linked / "config.json").write_text(json.dumps({**spec, "base": "../../base"}))
    write_bundle(tmp_path / "bundle", src["base"], linked, src["depth"])
    assert json.loads((tmp_path / "bundle" / "model_4d" / "config.json").read_text())["base"] == "../base"
    loaded = load_model4d(tmp_path / "bundle" / "model_4d").state_dict()
    original = bf16(load_model4d(src["model_4d"]).state_dict())
    assert all(torch.equal(loaded[k], original[k]) for k in loaded)
    export_base = tmp_path / "other_base"  # another base (one weight differs): refused
    shutil.copytree(src["base"], export_base)
    t = load_tensors(export_base, "model")
    first = next(iter(t))
    t[first] = t[first] + 1
    for f in export_base.glob("model-*.safetensors"):
        f.unlink()
    save_tensors(export_base, "model", t, 15.0)
    (linked / "config.json").write_text(json.dumps({**spec, "base": "../../../other_base"}))
    with pytest.raises(CheckpointError, match="is not .*; bundle it with the base model it was trained on"):
        write_bundle(tmp_path / "bundle2", src["base"], linked, src["depth"])


def test_bundle_errors_name_the_missing_part(tmp_path):
    src = trained_models(tmp_path / "stages")
    with pytest.raises(CheckpointError, match="train the depth model first"):
        write_bundle(tmp_path / "bundle", src["base"], src["model_4d"], tmp_path / "nowhere")
    assert not (tmp_path / "bundle").exists()  # nothing half-written
    write_bundle(tmp_path / "bundle", **src)
    for f in (tmp_path / "bundle" / "depth").iterdir():
        f.unlink()
    with pytest.raises(CheckpointError, match="missing depth/config.json"):
        bundle_paths(tmp_path / "bundle")
    with pytest.raises(FileNotFoundError, match="no such model bundle"):
        bundle_paths(tmp_path / "elsewhere")


def test_grid_command_runs_a_bundle(tmp_path):
    write_bundle(tmp_path / "bundle", **trained_models(tmp_path / "stages"))
    frames = moving_square_frames(24, 48, 80)
    write_video(tmp_path / "row.mp4", frames, fps=8)
    column = np.stack([np.roll(frames[0], i, axis=1) for i in range(len(frames))])
    write_video(tmp_path / "col.mp4", column, fps=8)
    assert main(["grid", "--row", str(tmp_path / "row.mp4"), "--column", str(tmp_path / "col.mp4"), "--models",
                 str(tmp_path / "bundle"), "--out", str(tmp_path / "out"), "--views", "4", "--times", "4",
                 "--height", "16", "--width", "32", "--steps", "2"]) == 0
    assert load_grid(tmp_path / "out" / "row.grid.npz").shape == (4, 4, 16, 32)


@pytest.mark.parametrize("bundle", sorted(p for p in (REPO / "models").glob("*") if p.is_dir()) or [None])
def test_every_shipped_bundle_loads_with_the_code(bundle):
    """Each committed bundle's configs are accepted by the code and its weights fit them."""
    if bundle is None:
        pytest.skip("no bundle is committed under models/")
    check_bundle(bundle)


def check_bundle(bundle: Path) -> None:
    """A bundle's parts load with the code and agree with each other; it has its model card."""
    parts = bundle_paths(bundle)
    assert (bundle / "README.md").is_file(), f"{bundle}: a bundle needs its model card"
    load_model(parts["base"])
    model = load_model4d(parts["model_4d"])
    assert json.loads((parts["model_4d"] / "config.json").read_text())["training_window"]["views"] >= 2
    load_depth_model(parts["depth"])
    assert model.base.cfg == load_model(parts["base"]).cfg


def test_to4d_reads_its_models_from_a_bundle(tmp_path):
    """``fourreal to4d --models`` hands the bundle to the stage, which refuses a folder that is
    not one with a one-line error naming it (before reading any video)."""
    (tmp_path / "notabundle").mkdir()
    video = tmp_path / "v.mp4"
    write_video(video, moving_square_frames(24, 48, 8), fps=8)
    out = subprocess.run([sys.executable, "-m", "fourreal.running.cli", "to4d", str(video), "--params", str(REPO / "params.yaml"),
                          "--models", str(tmp_path / "notabundle"), "--out", str(tmp_path / "out")],
                         cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 2
    assert "notabundle: not a model bundle (missing base, model_4d, depth/config.json)" in out.stderr
    assert not (tmp_path / "out").exists()


def test_bundle_command_writes_the_model_card(tmp_path, capsys):
    src = trained_models(tmp_path / "stages")
    (tmp_path / "stages" / "details.json").write_text(json.dumps({"steps": 7, "heldout_loss_ema": 0.25}))
    scores = {"soft_psnr": 21.5, "soft_ssim": 0.7, "soft_fg_psnr": 18.0, "soft_fg_ssim": 0.5, "copy_row_baseline_psnr": 20.0,
              "pseudo_soft_psnr": 25.5, "pseudo_soft_ssim": 0.8}
    (tmp_path / "scores.json").write_text(json.dumps(scores))
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"files": {"clip.mp4": {"package": "pkg", "license": "CC-BY-4.0"}}}))
    out = tmp_path / "models" / "tiny"
    assert main(["bundle", str(out), "--base", str(src["base"]), "--model-4d", str(src["model_4d"]), "--depth",
                 str(src["depth"]), "--scores", str(tmp_path / "scores.json"), "--manifests", str(manifest)]) == 0
    card = (out / "README.md").read_text()
    assert card.startswith("# tiny") and "4x4 windows of 16x32" in card
    assert "| soft | 21.5 | 0.7 | 18.0 | 0.5 | 25.5 | 0.8 |" in card
    assert "| copy_row_baseline | 20.0 | - | - | - | - | - |" in card
    assert "| clip.mp4 | pkg | CC-BY-4.0 |" in card and "steps 7" in card
    assert "fourreal to4d --models models/tiny" in card
    assert "MB in all" in capsys.readouterr().out
    check_bundle(out)  # what the test of committed bundles checks
