"""scripts/timed_job.py: stages run in a workspace under a budget, resumed state, parts sent back."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "timed_job.py"


def _job(tmp_path: Path, out: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(SCRIPT), "--workspace", str(tmp_path / "ws"), "--params", str(ROOT / "params.yaml"),
           "--budget", "300", "--out", str(tmp_path / out), *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)


def test_a_finished_stage_is_not_run_again_and_its_outputs_come_back(tmp_path):
    first = _job(tmp_path, "out1", "--stage", "check_params", "--collect", "data/params.ok", "--part-mb", "0.001")
    assert first.returncode == 0, first.stderr
    status = json.loads((tmp_path / "out1" / "status.json").read_text())
    assert status["check_params"]["done"] is True and len(status["check_params"]["runs"]) == 1
    parts = sorted((tmp_path / "out1").glob("back.tar.*"))
    assert len(parts) >= 2  # a 1 KiB part size splits the tar
    (tmp_path / "back.tar").write_bytes(b"".join(p.read_bytes() for p in parts))
    with tarfile.open(tmp_path / "back.tar") as tar:
        assert tar.getnames() == ["data/params.ok"]
    second = _job(tmp_path, "out2", "--stage", "check_params")
    assert second.returncode == 0, second.stderr
    status = json.loads((tmp_path / "out2" / "status.json").read_text())
    assert len(status["check_params"]["runs"]) == 1  # done in the first job: not run again
    assert "$ " not in second.stdout


def test_a_job_with_nothing_to_run_still_reports_its_status(tmp_path):
    result = _job(tmp_path, "out")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "out" / "status.json").read_text()) == {}


def test_a_failing_stage_stops_the_job_and_is_recorded(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "params.yaml").read_text().replace("clip_frames: 8", "clip_frames: -8", 1))
    cmd = [sys.executable, str(SCRIPT), "--workspace", str(tmp_path / "ws"), "--params", str(bad), "--budget", "300",
           "--out", str(tmp_path / "out"), "--stage", "check_params", "--stage", "videos"]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    status = json.loads((tmp_path / "out" / "status.json").read_text())
    assert status["check_params"]["done"] is False and status["check_params"]["runs"][0]["returncode"] == 2
    assert "videos" not in status
    assert "clip_frames" in (tmp_path / "out" / "logs" / "check_params.log").read_text()


def test_training_stages_get_their_own_optim_section():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import timed_job
    finally:
        sys.path.remove(str(SCRIPT.parent))
    assert timed_job._optim_section(["train_base"]) == ("train_base", "optim")
    assert timed_job._optim_section(["train_4d", "--variant", "soft", "--phase", "render"]) == ("train_4d", "render")
    assert timed_job._optim_section(["sample_4d"]) is None
    with pytest.raises(ValueError):
        timed_job._optim_section(["train_4d", "--variant", "soft"])


def test_models_stored_in_bf16_and_4d_over_its_base(tmp_path):
    """``@bf16`` leaves the base's weights rounded to bf16; a 4D model built on that base and
    rewritten by ``@over-base`` holds only its sync layers and loads back the same model."""
    from test_bundle import CFG, OPTIM

    from dataclasses import asdict

    import torch

    from fourreal.formats.checkpoint import load_tensors
    from fourreal.models.dit import DiT
    from fourreal.models.model4d import build_model4d
    from fourreal.training.model_files import export_model, load_model, load_model4d, model4d_config

    ws = tmp_path / "ws"
    torch.manual_seed(0)
    base = DiT(CFG)
    export_model(ws / "data/base", base, {"preset": "tiny", "dit": asdict(CFG), "training_frames": 4}, 15.0)
    assert _job(tmp_path, "out1", "--stage", "@bf16 data/base").returncode == 0
    stored = load_tensors(ws / "data/base", "model")
    assert all(v.dtype == torch.bfloat16 for v in stored.values())
    assert all(torch.equal(stored[k], v.to(torch.bfloat16)) for k, v in base.state_dict().items())

    model = build_model4d(load_model(ws / "data/base"), "soft")
    with torch.no_grad():
        for p in model.syncs.parameters():
            p.add_(0.1 * torch.randn_like(p))
    export_model(ws / "data/soft/model", model, model4d_config(model, OPTIM), 15.0)
    done = _job(tmp_path, "out2", "--stage", "@over-base data/soft/model data/base")
    assert done.returncode == 0, done.stderr
    own = load_tensors(ws / "data/soft/model", "model")
    assert own and not any(k.startswith("base.") for k in own)
    assert json.loads((ws / "data/soft/model/config.json").read_text())["base"] == "../../base"
    loaded = load_model4d(ws / "data/soft/model")
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v if k.startswith("base.") else v.to(torch.bfloat16).float()), k
