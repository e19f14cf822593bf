from dataclasses import asdict

import numpy as np
import torch

from fourreal.formats.grid import Grid, load_grid, save_grid
from fourreal.models.dit import DiT, DiTConfig
from fourreal.models.model4d import build_model4d
from fourreal.running.cli import main
from fourreal.training.model_files import export_model, model4d_config
from fourreal.training.optim import OptimConfig, Phase

from conftest import moving_square_frames, write_video


def test_show_writes_previews(tmp_path, capsys):
    rgb = np.random.default_rng(0).integers(0, 255, (2, 3, 8, 8, 3), dtype=np.uint8)
    path = save_grid(tmp_path / "g.grid.npz", Grid(rgb=rgb, meta={"source": "unit", "fps": 4}))
    assert main(["show", str(path), "--out", str(tmp_path / "prev"), "--no-mp4"]) == 0
    assert (tmp_path / "prev" / "g.png").is_file() and (tmp_path / "prev" / "g.html").is_file()
    assert "2 x 3" in capsys.readouterr().out


def test_grid_command_from_two_videos(tmp_path, capsys):
    torch.manual_seed(0)
    model = build_model4d(DiT(DiTConfig(patch=4, dim=24, depth=1, heads=2)), "soft")
    export_model(tmp_path / "model", model, model4d_config(model, OptimConfig(phases=[Phase(1, 16, 32, 4, 1)])), 15.0)
    frames = moving_square_frames(24, 48, 80)
    write_video(tmp_path / "row.mp4", frames, fps=8)
    column = frames.copy()
    for i in range(len(column)):  # a "camera" sliding over the first frame
        column[i] = np.roll(frames[0], i, axis=1)
    write_video(tmp_path / "col.mp4", column, fps=8)
    args = ["grid", "--row", str(tmp_path / "row.mp4"), "--column", str(tmp_path / "col.mp4"), "--model",
            str(tmp_path / "model"), "--out", str(tmp_path / "out"), "--views", "5", "--times", "5",
            "--height", "16", "--width", "32", "--window", "4", "--steps", "2"]
    assert main(args) == 0
    grid = load_grid(tmp_path / "out" / "row.grid.npz")
    assert grid.shape == (5, 5, 16, 32) and grid.meta["kind"] == "generated"
    up = DiT(DiTConfig(patch=4, dim=24, depth=1, heads=2, extra_channels=3))
    export_model(tmp_path / "up", up, {"preset": "tiny", "scale": 2, "residual_scale": 0.1, "sample_steps": 2,
                                       "dit": asdict(up.cfg)}, 15.0)
    assert main(args + ["--upsampler", str(tmp_path / "up"), "--out", str(tmp_path / "big")]) == 0
    big = load_grid(tmp_path / "big" / "row.grid.npz")
    assert big.shape == (5, 5, 32, 64)  # every cell upsampled x2
    assert main(args + ["--upsampler", str(tmp_path / "model"), "--out", str(tmp_path / "bad")]) == 2
    assert "not an upsampler" in " ".join(capsys.readouterr().err.split())  # rich wraps lines
    other = moving_square_frames(24, 48, 80, seed=9)
    write_video(tmp_path / "other.mp4", other, fps=8)
    args[4] = str(tmp_path / "other.mp4")
    before = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert main(args[:-1] + ["2"] + ["--out", str(tmp_path / "out2")]) == 2  # first frames differ: an error
    assert not (tmp_path / "out2").exists() and sorted(p.name for p in (tmp_path / "out").iterdir()) == before
