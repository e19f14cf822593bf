"""What `dvc metrics show` lists: every stage's metrics.json holds a few headline numbers named
from one small vocabulary (fourreal.running.stage.HEADLINE_KEYS), every number the stage
computed goes to details.json beside it (a plain output tracked by git, not a DVC metric),
and neither holds a timing."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from fourreal.running.stage import HEADLINE_KEYS, versus_baseline, write_metrics
from fourreal.sampling import video_to_4d
from stages import (assets, baseline_4real, evaluate, pseudo4d, reconstruct, render, sample_4d, train_4d, train_base,
                    train_depth, train_upsampler, videos)

from conftest import REPO

STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
# Words of the keys run.json holds (how a run went), which no tracked file may hold.
TIMING_WORDS = ("second", "per_s", "mfu", "flops", "memory", "reused", "rendered_now")


def tracked(name: str) -> dict[str, dict]:
    """The git-tracked files called ``name`` under ``data/``, parsed, by path."""
    paths = subprocess.run(["git", "ls-files", "data"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    return {p: json.loads((REPO / p).read_text()) for p in paths if p.rsplit("/", 1)[-1] == name}


def headline(path: str, details: dict) -> dict:
    """What the writer of the tracked ``path`` makes of ``details``, under the repository's params."""
    stage = path.split("/")[1]
    if stage == "sample_4d":
        return sample_4d.headline(details, list(PARAMS["sample_4d"]["variants"]))
    if stage == "eval":
        baselines = [name for d in PARAMS["evaluate"]["baselines"] for name in tracked("scores.json")[f"{d}/scores.json"]]
        return evaluate.headline(details, PARAMS["evaluate"]["variants"], baselines)
    modules = {"videos": videos, "pseudo4d": pseudo4d, "assets": assets, "render": render, "train_base": train_base,
               "train_upsampler": train_upsampler, "train_4d": train_4d, "finetune_4d": train_4d,
               "train_depth": train_depth, "reconstruct": reconstruct, "baseline_4real": baseline_4real,
               "video_to_4d": video_to_4d}
    return modules[stage].headline(details)


def keys(value) -> list[str]:
    """Every key of a parsed JSON value, at any depth."""
    if not isinstance(value, dict):
        return []
    return [*value, *(k for v in value.values() for k in keys(v))]


def test_the_vocabulary_is_small_and_documented():
    assert len(HEADLINE_KEYS) <= 16
    assert all(isinstance(meaning, str) and meaning for meaning in HEADLINE_KEYS.values())
    assert not [k for k in HEADLINE_KEYS if any(word in k for word in TIMING_WORDS)]


def test_a_key_outside_the_vocabulary_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="soft_psnr not among HEADLINE_KEYS"):
        write_metrics(tmp_path, {"psnr": 20.0, "soft_psnr": 20.0}, {"soft_psnr": 20.0})
    assert list(tmp_path.iterdir()) == []


def test_the_headline_goes_to_metrics_and_everything_to_details(tmp_path):
    details = {"soft_psnr": 20.0, "copy_row_baseline_psnr": 21.5, "pseudo_grids": 0}
    path = write_metrics(tmp_path, {"psnr": 20.0, **versus_baseline(20.0, [21.5, 18.0])}, details)
    assert path == tmp_path / "metrics.json"
    assert json.loads(path.read_text()) == {"psnr": 20.0, "baseline_psnr": 21.5, "margin_db": -1.5}
    assert json.loads((tmp_path / "details.json").read_text()) == details
    assert versus_baseline(20.0, []) == {}  # nothing to compare with: no baseline columns


def test_every_stage_with_metrics_writes_details_as_a_plain_output():
    with_metrics = 0
    for name, stage in STAGES.items():
        body = stage.get("do", stage)
        outs = {next(iter(o)): next(iter(o.values())) for o in body.get("outs", []) if isinstance(o, dict)}
        for entry in body.get("metrics", []):
            metrics = next(iter(entry))
            assert outs.get(metrics.replace("metrics.json", "details.json")) == {"cache": False}, name
            with_metrics += 1
    assert with_metrics == 14


def test_the_tracked_metrics_are_a_few_headline_numbers_of_the_details():
    metrics, details = tracked("metrics.json"), tracked("details.json")
    assert metrics and set(details) == {p.replace("metrics.json", "details.json") for p in metrics}
    for path, numbers in metrics.items():
        assert set(numbers) <= set(HEADLINE_KEYS) and 0 < len(numbers) <= 6, path
        assert headline(path, details[path.replace("metrics.json", "details.json")]) == numbers, path


def test_no_tracked_metrics_or_details_holds_a_timing():
    files = {**tracked("metrics.json"), **tracked("details.json")}
    assert files
    for path, content in files.items():
        assert not [k for k in keys(content) if k.endswith("_s") or any(w in k for w in TIMING_WORDS)], path
