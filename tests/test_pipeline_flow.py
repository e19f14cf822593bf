"""The DVC + Prefect path end to end: Prefect flows drive real `dvc repro` on a temporary
copy of this repository, with tiny params and synthetic input videos."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from fourreal.formats.grid import list_grids, load_grid
from fourreal.running.stage import HEADLINE_KEYS

from conftest import content_digests, copy_repo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):  # slow, busy CI machines
        yield


def set_params(repo, **sections):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in sections.items():
        params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params))


def test_flows_drive_dvc(tmp_path, video_dir, prefect_harness):
    from flows.pipeline import _env, list_stages, pipeline, stage

    repo = copy_repo(tmp_path / "repo")
    set_params(
        repo,
        videos={"input_dir": str(video_dir), "height": 16, "width": 32, "clip_frames": 4, "clip_stride": 4,
                "max_clips_per_video": 2, "exclude": []},
        pseudo4d={"num_views": 3, "preview": {"max_items": 1, "cell_height": 16, "mp4": True, "html": True}},
        assets={"sources": ["procedural", "local"], "procedural_count": 2, "test_fraction": 0.34},
        render={"num_views": 3, "num_times": 3, "height": 16, "width": 24, "samples": 2,
                "preview": {"max_items": 1, "cell_height": 16, "mp4": False, "html": True}},
    )
    tiny_phase = {"phases": [{"steps": 30, "height": 16, "width": 32, "frames": 2, "batch_size": 4}], "checkpoint_every": 30}
    set_params(repo, train_base={"eval_batches": 1, "sample_steps": 2}, train_upsampler={"eval_batches": 1, "sample_steps": 2})
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for optim in (params["train_base"]["optim"], params["train_upsampler"]["optim"]):
        optim.update(tiny_phase)
    for optim in (params["train_4d"]["pseudo"], params["train_4d"]["render"]):
        optim.update({"phases": [{"steps": 4, "height": 16, "width": 32, "frames": 2, "batch_size": 2}], "checkpoint_every": 4})
    params["sample_4d"].update({"views": 3, "times": 3, "height": 16, "width": 32, "window": 2, "steps": 2})
    params["train_depth"].update({"steps": 20, "batch_size": 4, "channels": 8})
    params["reconstruct"].update({"stride": 1, "prune_steps": 3, "fit_steps": 5, "batch_cells": 2, "holdout_every": 2})
    params["baseline_4real"].update({"canonical_steps": 3, "temporal_steps": 3, "sds_frames": 2})
    source = video_dir / "a.mp4"
    params["video_to_4d"].update({"input": str(source), "views": 3, "times": 3, "height": 16, "width": 32, "window": 2,
                                  "chunk": 2, "overlap": 1, "steps": 2})
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    stages = list_stages(repo)
    assert stages[:7] == ["check_params", "videos", "pseudo4d", "assets", "render", "train_base", "train_upsampler"]
    assert {"train_4d@soft", "finetune_4d@hard", "sample_4d", "train_depth", "reconstruct", "evaluate"} <= set(stages)
    assert stages.index("evaluate") > stages.index("sample_4d") < stages.index("reconstruct")

    first = pipeline(repo=str(repo))
    assert set(first.values()) == {"ran"}
    render_details = json.loads((repo / "data/render/details.json").read_text())
    assert render_details["assets"] == 4 and render_details["test"] == 2 and render_details["failed"] == 0
    assert json.loads((repo / "data/render/metrics.json").read_text()) == {"grids": 4, "held_out": 2, "skipped": 0}
    assert len(list_grids(repo / "data/render/grids/test")) == 2
    base = json.loads((repo / "data/train_base/details.json").read_text())
    assert base["steps"] == 30 and base["heldout_loss_ema"] < base["heldout_loss_untrained"]
    losses = [float(line.split(",")[1]) for line in (repo / "data/train_base/loss.csv").read_text().splitlines()[1:]]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert (repo / "data/train_upsampler/model/config.json").is_file()
    finetune = json.loads((repo / "data/finetune_4d/soft/details.json").read_text())
    assert finetune["trainable"] == "sync" and finetune["frozen_parameters_unchanged"] is True
    samples = json.loads((repo / "data/sample_4d/details.json").read_text())
    assert {"soft_psnr", "hard_free_ssim", "soft_fg_psnr", "copy_row_baseline_psnr",
            "copy_column_baseline_fg_ssim"} <= set(samples)
    assert samples["pseudo_grids"] == 0 and list((repo / "data/sample_4d/pseudo").iterdir()) == []  # none held out
    generated = list_grids(repo / "data/sample_4d/soft")
    assert len(generated) == 2 and load_grid(generated[0]).shape == (3, 3, 16, 32)
    assert load_grid(generated[0]).intrinsics.shape == (3, 3, 3)  # the input column's cameras, fitted to 16x32
    depth = json.loads((repo / "data/train_depth/details.json").read_text())
    assert depth["steps"] == 20 and depth["test_absrel"] >= 0
    recon = json.loads((repo / "data/reconstruct/details.json").read_text())
    assert recon["grids"] + recon["failed"] == 2 and recon["sources"]["render_grids_test"]["heldout_psnr"] > 10
    plys = list((repo / "data/reconstruct/grids/render_grids_test").glob("*/canonical.ply"))
    assert len(plys) == 1
    table1 = (repo / "data/eval/table1.md").read_text()
    assert "Parallel soft (full)" in table1 and "Rendered ground truth" in table1
    assert "Rendered ground truth" in (repo / "data/eval/table3.md").read_text()  # reconstruction table
    evaluation = json.loads((repo / "data/eval/details.json").read_text())
    assert evaluation["truth"]["warp_error_time"] < evaluation["soft_free"]["warp_error_time"]
    assert "4Real (optimisation + SDS)" in table1 and evaluation["4real"]["psnr"] > 5  # the baseline's row
    assert load_grid(repo / "data/baseline_4real/4real" / generated[0].name).shape == (3, 3, 16, 32)
    scene = load_grid(repo / "data/video_to_4d/grid.grid.npz")
    assert scene.shape == (3, 3, 16, 32) and scene.depth.shape == (3, 3, 16, 32) and scene.meta["source"] == str(source)
    assert (repo / "data/video_to_4d/reconstruction/canonical.ply").is_file()
    assert json.loads((repo / "data/video_to_4d/details.json").read_text())["gaussians"] > 0
    details = json.loads((repo / "data/videos/details.json").read_text())
    assert details["videos_used"] == 2 and details["videos_skipped"] == 1 and details["clips"] == 4
    for path in (repo / "data").rglob("metrics.json"):  # a few headline numbers, in the shared names
        headline = json.loads(path.read_text())
        assert set(headline) <= set(HEADLINE_KEYS) and len(headline) <= 6, path
        assert (path.parent / "details.json").is_file(), path
    grids = list_grids(repo / "data/pseudo4d/grids")
    assert len(grids) == 4 and list_grids(repo / "data/pseudo4d/test_grids") == []
    grid = load_grid(grids[0])
    assert grid.shape == (3, 4, 16, 32) and grid.meta["kind"] == "pseudo4d"
    previews = sorted(p.name for p in (repo / "data/pseudo4d/previews").iterdir())
    assert len(previews) == 3 and any(p.endswith(".html") for p in previews)

    assert set(pipeline(repo=str(repo)).values()) == {"skipped"}  # nothing changed: nothing runs
    # A second run of every stage, assets included: identical assets, grids and weights on the
    # CPU, the same dvc.lock, and tracked metrics and details without a timing that could differ.
    before = content_digests(repo / "data")
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    tracked = [p for name in ("metrics.json", "details.json") for p in (repo / "data").rglob(name)]
    results = {p: p.read_bytes() for p in tracked}
    again = subprocess.run([sys.executable, "-m", "dvc", "repro", "--force", "--single-item", *stages], cwd=repo,
                           env=_env(), capture_output=True, text=True)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert content_digests(repo / "data") == before
    relocked = yaml.safe_load((repo / "dvc.lock").read_text())
    assert {n: s for n, s in relocked["stages"].items() if s != lock["stages"][n]} == {}
    assert {p: p.read_bytes() for p in tracked} == results
    assert json.loads((repo / "data/train_base/run.json").read_text())["seconds"] > 0  # timings: untracked

    set_params(repo, pseudo4d={"seed": 1})
    rerun = pipeline(repo=str(repo))
    assert rerun["check_params"] == "ran"  # the params changed: checked again
    assert rerun["videos"] == rerun["assets"] == rerun["render"] == "skipped"
    assert rerun["pseudo4d"] == rerun["train_base"] == rerun["train_4d@soft"] == rerun["sample_4d"] == "ran"
    assert rerun["train_depth"] == "skipped" and rerun["evaluate"] == "ran"  # the training-free variants changed
    assert not (load_grid(grids[0]).rgb == grid.rgb).all()

    assert stage("pseudo4d", force=True, repo=str(repo)) == "ran"
    with pytest.raises(ValueError, match="unknown stage 'nope'"):
        stage("nope", repo=str(repo))
    from flows.pipeline import video_to_4d

    out = video_to_4d(str(video_dir / "b.avi"), repo=str(repo))  # a user's own file, outside DVC
    assert out.startswith("data/video_to_4d_runs/") and (repo / out / "reconstruction/deformation.safetensors").is_file()
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        video_to_4d(str(tmp_path / "missing.mp4"), repo=str(repo))
    status = subprocess.run(["dvc", "status"], cwd=repo, capture_output=True, text=True)
    assert "up to date" in status.stdout


def test_failing_stage_raises_with_its_output(tmp_path, prefect_harness):
    from flows.pipeline import pipeline

    repo = copy_repo(tmp_path / "repo")
    empty = tmp_path / "empty"
    empty.mkdir()
    set_params(repo, videos={"input_dir": str(empty)})
    with pytest.raises(RuntimeError, match="stage videos failed"):
        pipeline(repo=str(repo))
    assert not (repo / "data/videos/clips").exists()  # nothing half-written


def test_bad_params_fail_every_flow_with_one_line_before_any_stage(tmp_path, prefect_harness):
    from prefect.exceptions import FailedRun

    from flows.pipeline import pipeline, stage, video_to_4d

    repo = copy_repo(tmp_path / "repo")
    set_params(repo, render={"samples": 0})
    before = {p: p.read_bytes() for p in (repo / "data").rglob("*") if p.is_file()}
    line = r"^params.yaml: render.samples = 0: must be >= 1$"
    with pytest.raises(FailedRun, match=line):
        pipeline(repo=str(repo))
    with pytest.raises(FailedRun, match=line):
        stage("videos", force=True, repo=str(repo))
    with pytest.raises(FailedRun, match=line):
        video_to_4d(str(repo / "README.md"), repo=str(repo))
    state = pipeline(repo=str(repo), return_state=True)
    assert state.is_failed() and state.message == "params.yaml: render.samples = 0: must be >= 1"
    assert {p: p.read_bytes() for p in (repo / "data").rglob("*") if p.is_file()} == before
