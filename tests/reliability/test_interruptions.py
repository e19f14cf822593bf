"""kill -9 at random points, then rerun: work resumes and ends complete and identical."""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from conftest import REPO

pytestmark = pytest.mark.slow
TOY = Path(__file__).with_name("toy_train.py")


def start(cmd: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def kill_after(proc: subprocess.Popen, ready, rng: random.Random, timeout: float = 120.0) -> bool:
    """SIGKILL ``proc`` a random moment (0-0.4 s) after ``ready()`` turns true; False if it
    finished first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 0.4))
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


def test_training_killed_three_times_resumes_to_bit_identical_weights(tmp_path):
    ref = tmp_path / "ref"
    out = start([sys.executable, str(TOY), str(ref)])
    assert out.wait() == 0, out.stdout.read()
    rng = random.Random(0)
    cut = tmp_path / "cut"
    kills = 0
    for round_ in range(3):
        proc = start([sys.executable, str(TOY), str(cut)])
        need = 1 + round_  # a kill after each new checkpoint, somewhere in the following steps
        ready = lambda: len(list((cut / "checkpoints").glob("step_*"))) >= need  # noqa: E731
        kills += kill_after(proc, ready, rng)
    assert kills >= 2
    proc = start([sys.executable, str(TOY), str(cut)])
    assert proc.wait() == 0, proc.stdout.read()
    assert "steps 40" in proc.stdout.read()
    a, b = load_file(str(ref / "final.safetensors")), load_file(str(cut / "final.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    steps = [int(r["step"]) for r in csv.DictReader(open(cut / "loss.csv"))]
    assert steps == list(range(1, 41))  # every step logged once, none lost or repeated
    assert not list(cut.rglob("*.tmp*"))  # no half-written files left behind


def synthetic_grid(path: Path) -> None:
    """A 4x3 grid of a cloud of Gaussians seen from an orbiting camera, moving over time,
    with depth and intrinsics (what `reconstruct` needs), written to ``path``."""
    import numpy as np
    import torch

    from fourreal.gaussians import render
    from fourreal.grid import Grid, save_grid

    rng = np.random.default_rng(0)
    n, views, times, h, w = 400, 4, 3, 24, 32
    points = rng.uniform([-0.6, -0.5, -0.4], [0.6, 0.5, 0.4], (n, 3))
    K = np.array([[36.0, 0, w / 2], [0, 36.0, h / 2], [0, 0, 1]], np.float32)
    rgb = np.zeros((views, times, h, w, 3), np.uint8)
    depth = np.zeros((views, times, h, w), np.float32)
    for i, a in enumerate(np.linspace(-0.2, 0.2, views)):
        R = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
        for j in range(times):
            cam = (points + [0.05 * j, 0, 0]) @ R.T + [0, 0, 3.0]
            f = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32)  # noqa: E731
            img, alpha = render(f(cam)[None], torch.full((n,), 0.05), f(rng.uniform(0, 1, (n, 3))), torch.full((n,), 0.9),
                                f(K)[None], h, w, torch.zeros(3), backend="torch")
            rgb[i, j] = (img[0].clamp(0, 1).numpy() * 255).astype(np.uint8)
            depth[i, j] = np.where(alpha[0].numpy() > 0.5, 3.0, 0.0)
    save_grid(path, Grid(rgb=rgb, depth=depth, intrinsics=np.repeat(K[None], views, 0),
                         meta={"kind": "render", "source": "synthetic", "fps": 8.0}))


def test_reconstruct_stage_killed_mid_run_reruns_to_the_same_complete_outputs(tmp_path):
    import json

    import numpy as np
    import yaml

    from fourreal.grid import load_grid

    grids = tmp_path / "grids"
    for name in ("a", "b"):
        synthetic_grid(grids / f"{name}.grid.npz")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["reconstruct"].update({"sources": [str(grids)], "max_grids": 0, "depth": "grid", "keyframes": 1,
                                  "prune_steps": 10, "fit_steps": 60, "holdout_every": 2})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))

    def stage(out: Path) -> subprocess.Popen:
        return start([sys.executable, "-m", "stages.reconstruct", "--params", str(tmp_path / "params.yaml"), "--out", str(out)])

    assert stage(tmp_path / "ref").wait() == 0
    out = tmp_path / "cut"
    rng = random.Random(1)
    for _ in range(2):  # killed while the per-grid outputs are being written to their temporary directory
        assert kill_after(stage(out), lambda: any(out.glob(".grids.*.tmp/*/*")), rng)
        assert not (out / "grids").exists() and not (out / "metrics.json").exists()  # nothing passes for complete
    proc = stage(out)
    assert proc.wait() == 0, proc.stdout.read()
    assert not list(out.glob(".*.tmp*")) and not list(out.glob(".*.old"))  # the killed runs' leftovers are gone
    for name in ("a", "b"):
        ref = load_grid(tmp_path / f"ref/grids/grids/{name}/renders.grid.npz")  # grids/<source dir>/<grid>
        again = load_grid(out / f"grids/grids/{name}/renders.grid.npz")
        assert np.array_equal(ref.rgb, again.rgb)  # bit-identical on the CPU
    drop = ("track_init_s", "prune_s", "fit_s")
    scores = [{g: {k: v for k, v in s.items() if k not in drop} for g, s in json.loads((d / "scores.json").read_text()).items()}
              for d in (tmp_path / "ref", out)]
    assert scores[0] == scores[1]


def test_dvc_stages_killed_at_random_points_rerun_to_a_clean_status(tmp_path, video_dir):
    """`dvc repro` of render, train_base and train_4d killed with SIGKILL (the stage's whole
    process group) at random moments, twice each, then rerun: the stages end with the same
    outputs as before and `dvc status` is clean."""
    import yaml

    from conftest import content_digests, copy_repo

    repo = copy_repo(tmp_path / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["videos"].update({"input_dir": str(video_dir), "height": 16, "width": 32, "clip_frames": 4, "clip_stride": 4,
                             "max_clips_per_video": 2, "exclude": []})
    params["pseudo4d"].update({"num_views": 3, "preview": {"max_items": 1, "cell_height": 16, "mp4": False, "html": False}})
    params["assets"].update({"sources": ["local"], "test_fraction": 0.5})
    params["render"].update({"num_views": 3, "num_times": 3, "height": 16, "width": 24, "samples": 2,
                             "preview": {"max_items": 1, "cell_height": 16, "mp4": False, "html": False}})
    tiny = {"phases": [{"steps": 40, "height": 16, "width": 32, "frames": 2, "batch_size": 2}], "checkpoint_every": 5}
    params["train_base"].update({"eval_batches": 1, "sample_steps": 2})
    params["train_base"]["optim"].update(tiny)
    params["train_4d"]["pseudo"].update({**tiny, "phases": [{**tiny["phases"][0], "steps": 20}]})
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    def repro(*args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "dvc", "repro", *args], cwd=repo, env=env, start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    targets = ["render", "train_base", "train_4d@soft"]
    first = repro(*targets)
    assert first.wait(timeout=600) == 0, first.stdout.read()[-3000:]
    before = content_digests(repo / "data")
    rng = random.Random(2)
    kills = 0
    for target in targets:
        for _ in range(2):
            proc = repro("--force", "--single-item", target)
            time.sleep(rng.uniform(1.5, 4.0))  # somewhere in start-up, work or writing
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                kills += 1
            proc.wait()
    assert kills >= 3
    rerun = repro(*targets)
    assert rerun.wait(timeout=600) == 0, rerun.stdout.read()[-3000:]
    status = subprocess.run([sys.executable, "-m", "dvc", "status", *targets], cwd=repo, env=env, capture_output=True,
                            text=True)
    assert "up to date" in status.stdout, status.stdout
    after = content_digests(repo / "data")
    assert {k: v for k, v in after.items() if "/checkpoints/" not in k} == \
        {k: v for k, v in before.items() if "/checkpoints/" not in k}
