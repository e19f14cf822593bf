"""kill -9 at named fault points (`fourreal.training.faults`), then rerun: work resumes and ends
complete and identical.

Every kill is deterministic: the run dies at an exact point of the code (the N-th checkpoint,
just before an output is renamed into place, ...), and each kill is checked: the process
died by SIGKILL, its output carries the marker of the intended point, and the files on disk
are the ones that point leaves behind.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from conftest import REPO
from fourreal.formats.checkpoint import list_checkpoints
from fourreal.training.faults import ENV, parse

pytestmark = pytest.mark.slow
TOY = Path(__file__).with_name("toy_train.py")


def start(cmd: list[str], fault: str | None = None, cwd: Path = REPO, env: dict | None = None,
          new_session: bool = False) -> subprocess.Popen:
    """Start ``cmd`` with its output (stdout and stderr together) piped, armed with fault spec
    ``fault`` (none: ``FOURREAL_FAULT`` unset)."""
    env = env or {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env = {k: v for k, v in env.items() if k != ENV}
    if fault is not None:
        env[ENV] = fault
    return subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=new_session, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> str:
    """Wait for ``proc``, assert it succeeded, return its output."""
    output = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, output[-3000:]
    return output


def killed_at(proc: subprocess.Popen, fault: str) -> str:
    """Wait for ``proc`` (every holder of its output pipe, so with ``:group`` the whole
    group), assert SIGKILL ended it at fault point ``fault``, return its output."""
    output = proc.communicate(timeout=600)[0]
    spec = parse(fault)
    assert proc.returncode == -9, f"expected a kill at {fault}, got exit {proc.returncode}:\n{output[-3000:]}"
    assert f"fault point {spec}: SIGKILL {spec.scope}\n" in output, output[-3000:]
    return output


def newest_step(checkpoints: Path) -> int:
    return int(list_checkpoints(checkpoints)[-1].name.removeprefix("step_"))


def logged_steps(loss_csv: Path) -> list[int]:
    with open(loss_csv) as f:
        return [int(r["step"]) for r in csv.DictReader(f)]


def test_training_killed_at_checkpoints_and_between_them_resumes_to_bit_identical_weights(tmp_path):
    """40 steps, a checkpoint every 4: killed right after a checkpoint, then between two (the
    steps since the last checkpoint are logged but lost), then after a later checkpoint."""
    ref = tmp_path / "ref"
    finish(start([sys.executable, str(TOY), str(ref)]))
    cut = tmp_path / "cut"
    # (fault, newest checkpoint after the kill, last step in loss.csv after the kill)
    rounds = [("checkpoint_saved@2", 8, 8),  # from scratch: checkpoints 4, 8
              ("train_step@6", 12, 14),  # resumed at 8: steps 9-14, checkpoint 12
              ("checkpoint_saved@3", 24, 24)]  # resumed at 12 (loss.csv cut back to 12): checkpoints 16, 20, 24
    for fault, checkpoint, logged in rounds:
        killed_at(start([sys.executable, str(TOY), str(cut)], fault), fault)
        assert newest_step(cut / "checkpoints") == checkpoint
        assert logged_steps(cut / "loss.csv") == list(range(1, logged + 1))
    assert "steps 40" in finish(start([sys.executable, str(TOY), str(cut)]))
    a, b = load_file(str(ref / "final.safetensors")), load_file(str(cut / "final.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    assert logged_steps(cut / "loss.csv") == list(range(1, 41))  # every step logged once, none lost or repeated
    assert not list(cut.rglob("*.tmp*"))  # no half-written files left behind


def synthetic_grid(path: Path) -> None:
    """A 4x3 grid of a cloud of Gaussians seen from an orbiting camera, moving over time,
    with depth and intrinsics (what `reconstruct` needs), written to ``path``."""
    import numpy as np
    import torch

    from fourreal.formats.grid import Grid, save_grid
    from fourreal.reconstruction.gaussians import render

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


def test_reconstruct_stage_killed_while_writing_reruns_to_the_same_complete_outputs(tmp_path):
    """Killed before the second grid's renders are renamed into the temporary output
    directory, then before that directory is renamed onto ``grids``: neither leaves anything
    that passes for complete, and the rerun equals an uninterrupted run."""
    import json

    import numpy as np
    import yaml

    from fourreal.formats.grid import load_grid

    grids = tmp_path / "grids"
    for name in ("a", "b"):
        synthetic_grid(grids / f"{name}.grid.npz")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["reconstruct"].update({"sources": [str(grids)], "max_grids": 0, "depth": "grid", "keyframes": 1,
                                  "prune_steps": 10, "fit_steps": 60, "holdout_every": 2})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))

    def stage(out: Path, fault: str | None = None) -> subprocess.Popen:
        return start([sys.executable, "-m", "stages.reconstruct", "--params", str(tmp_path / "params.yaml"),
                      "--out", str(out)], fault)

    finish(stage(tmp_path / "ref"))
    out = tmp_path / "cut"
    fault = "before_rename=renders.grid.npz@2"  # grid a's outputs are in the temporary directory, b's not yet
    killed_at(stage(out, fault), fault)
    [tmp] = out.glob(".grids.*.tmp")
    assert (tmp / "grids/a/renders.grid.npz").is_file() and not (tmp / "grids/b/renders.grid.npz").exists()
    assert not (out / "grids").exists() and not (out / "metrics.json").exists()  # nothing passes for complete
    fault = "before_rename=grids"  # every grid's outputs written, the directory not yet in place
    killed_at(stage(out, fault), fault)
    [tmp] = out.glob(".grids.*.tmp")  # the first kill's temporary is gone, this one is whole
    assert all((tmp / f"grids/{name}/renders.grid.npz").is_file() for name in ("a", "b"))
    assert not (out / "grids").exists() and not (out / "scores.json").exists() and not (out / "metrics.json").exists()
    finish(stage(out))
    assert not list(out.glob(".*.tmp*")) and not list(out.glob(".*.old"))  # the killed runs' leftovers are gone
    for name in ("a", "b"):
        ref = load_grid(tmp_path / f"ref/grids/grids/{name}/renders.grid.npz")  # grids/<source dir>/<grid>
        again = load_grid(out / f"grids/grids/{name}/renders.grid.npz")
        assert np.array_equal(ref.rgb, again.rgb)  # bit-identical on the CPU
    drop = ("track_init_s", "prune_s", "fit_s")
    scores = [{g: {k: v for k, v in s.items() if k not in drop} for g, s in json.loads((d / "scores.json").read_text()).items()}
              for d in (tmp_path / "ref", out)]
    assert scores[0] == scores[1]


def test_dvc_stages_killed_during_work_and_writing_rerun_to_a_clean_status(tmp_path, video_dir):
    """`dvc repro` of train_4d@soft, train_base and render killed with SIGKILL (with the stage
    and its workers: the whole process group, like a crashed machine) twice each: once
    during the work (persisted work removed first, so there is work to do) and once just
    before the first output directory is renamed into place. Then rerun: the stages end
    with the same outputs as an uninterrupted run and `dvc status` is clean.

    Downstream stages are killed first, so each kill leaves broken only outputs that no
    later kill round's stage reads."""
    import shutil

    import yaml

    from conftest import content_digests, copy_repo
    from fourreal.formats.grid import list_grids

    repo = copy_repo(tmp_path / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["videos"].update({"input_dir": str(video_dir), "height": 16, "width": 32, "clip_frames": 4, "clip_stride": 4,
                             "max_clips_per_video": 2, "exclude": []})
    params["pseudo4d"].update({"num_views": 3, "preview": {"max_items": 1, "cell_height": 16, "mp4": False, "html": False}})
    params["assets"].update({"sources": ["local"], "test_fraction": 0.5})
    params["render"].update({"num_views": 3, "num_times": 3, "height": 16, "width": 24, "samples": 2, "workers": 1,
                             "preview": {"max_items": 1, "cell_height": 16, "mp4": False, "html": False}})
    tiny = {"phases": [{"steps": 40, "height": 16, "width": 32, "frames": 2, "batch_size": 2}], "checkpoint_every": 5}
    params["train_base"].update({"eval_batches": 1, "sample_steps": 2})
    params["train_base"]["optim"].update(tiny)
    params["train_4d"]["pseudo"].update({**tiny, "phases": [{**tiny["phases"][0], "steps": 20}]})
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    data = repo / "data"

    def repro(*args: str, fault: str | None = None) -> subprocess.Popen:
        return start([sys.executable, "-m", "dvc", "repro", *args], fault, cwd=repo, env=env, new_session=True)

    targets = ["render", "train_base", "train_4d@soft"]
    finish(repro(*targets))
    before = content_digests(data)

    def grids() -> list[Path]:
        return list_grids(data / "render/grids/train") + list_grids(data / "render/grids/test")

    # per target: the persisted work removed first, the fault during the work and what it leaves
    # behind, then the output directory whose rename the writing kill precedes
    rounds = [
        ("train_4d@soft", data / "train_4d/soft/checkpoints", "checkpoint_saved@2:group",
         lambda: newest_step(data / "train_4d/soft/checkpoints") == 10, data / "train_4d/soft/model"),
        ("train_base", data / "train_base/checkpoints", "checkpoint_saved@3:group",
         lambda: newest_step(data / "train_base/checkpoints") == 15, data / "train_base/model"),
        ("render", data / "render/grids", "grid_rendered@1:group",
         lambda: len(grids()) == 1, data / "render/clips"),  # one worker: the second asset's render dies with it
    ]
    assets = len(grids())
    assert assets == 2
    for target, work, fault, left, written in rounds:
        shutil.rmtree(work)
        killed_at(repro("--force", "--single-item", target, fault=fault), fault)
        assert left(), f"{target}: killed at {fault} but the work done differs"
        fault = f"before_rename={written.name}:group"  # the work is done, the first output in a temporary
        killed_at(repro("--force", "--single-item", target, fault=fault), fault)
        assert not written.exists() and len(list(written.parent.glob(f".{written.name}.*.tmp"))) == 1
    assert len(grids()) == assets  # the writing kill's run rendered the asset the first kill cut short
    finish(repro(*targets))
    status = subprocess.run([sys.executable, "-m", "dvc", "status", *targets], cwd=repo, env=env, capture_output=True,
                            text=True)
    assert "up to date" in status.stdout, status.stdout
    after = content_digests(data)
    assert {k: v for k, v in after.items() if "/checkpoints/" not in k} == \
        {k: v for k, v in before.items() if "/checkpoints/" not in k}
