"""The training loop under torchrun with two CPU processes (gloo): the code path of multi-GPU DDP."""

import subprocess
import sys
from pathlib import Path

import pytest

from fourreal.checkpoint import list_checkpoints

pytestmark = pytest.mark.slow


def test_ddp_two_processes_keep_replicas_equal(tmp_path):
    here = Path(__file__).parent
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
           str(here / "ddp_train.py"), str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=here,
                          env={**__import__("os").environ, "PYTHONPATH": str(here), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "WORLD=2 STEPS=4 REPLICAS_EQUAL=True" in proc.stdout
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["step_0000002", "step_0000004"]
