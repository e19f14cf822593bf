"""The training loop under torchrun with two CPU processes (gloo): the code paths of multi-GPU
DDP and FSDP."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fourreal.formats.checkpoint import list_checkpoints, load_tensors

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent


def run_torchrun(out: Path, mode: str, *args: str, procs: int = 2) -> str:
    """``tests/ddp_train.py OUT MODE ARGS`` under torchrun with ``procs`` CPU processes; its output."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={procs}", "--standalone",
           str(HERE / "ddp_train.py"), str(out), mode, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=HERE,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)]),
                               "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_ddp_and_fsdp_train_the_same_weights(tmp_path):
    ddp = run_torchrun(tmp_path / "ddp", "ddp")
    assert "WORLD=2 RESUMED=0 STEPS=4 REPLICAS_EQUAL=True SHARDED=False EXPORT=DiT" in ddp
    fsdp = run_torchrun(tmp_path / "fsdp", "fsdp")
    assert "WORLD=2 RESUMED=0 STEPS=4" in fsdp and "SHARDED=True EXPORT=DiT" in fsdp
    for mode in ("ddp", "fsdp"):
        assert [p.name for p in list_checkpoints(tmp_path / mode / "checkpoints")] == ["step_0000002", "step_0000004"]
    a, b = (tmp_path / m / "checkpoints" / "step_0000004" for m in ("ddp", "fsdp"))
    for prefix in ("model", "ema", "optimizer"):  # full (unsharded) tensors, equal up to reduction order
        ta, tb = load_tensors(a, prefix), load_tensors(b, prefix)
        assert ta.keys() == tb.keys() and len(ta) > 0
        for k in ta:
            assert ta[k].shape == tb[k].shape, k
            torch.testing.assert_close(ta[k], tb[k], rtol=1e-4, atol=1e-5, msg=k)


def test_a_run_resumes_on_another_number_of_processes(tmp_path):
    """1 process (DDP) -> 2 (FSDP) -> 1: each call resumes the previous one's checkpoint (full
    tensors, whatever the number of processes that wrote it) and stops at its next one; the
    last ends the 6 steps, and every call moved the weights."""
    out = tmp_path / "resumed"
    assert "WORLD=1 RESUMED=0 STEPS=2" in run_torchrun(out, "ddp", "6", "stop", procs=1)
    assert "WORLD=2 RESUMED=2 STEPS=4 REPLICAS_EQUAL=True SHARDED=True" in run_torchrun(out, "fsdp", "6", "stop")
    assert "WORLD=1 RESUMED=4 STEPS=6" in run_torchrun(out, "ddp", "6", procs=1)
    names = [p.name for p in list_checkpoints(out / "checkpoints")]
    assert names[-1] == "step_0000006", names
    weights = {n: load_tensors(out / "checkpoints" / n, "model") for n in names}
    for before, after in zip(names, names[1:]):
        a, b = weights[before], weights[after]
        assert a.keys() == b.keys() and len(a) > 0
        assert all(torch.isfinite(b[k]).all() for k in b)
        assert any(not torch.equal(a[k], b[k]) for k in a), f"{after} did not train past {before}"
