"""The window a model was trained on travels with it: exported in its config.json, and the
one rule (``fourreal.sampling.sample_4d.resolve_window``) every sampler applies to it."""

import json
import logging
import sys
from dataclasses import asdict

import numpy as np
import pytest
import torch
import yaml

from fourreal.models.dit import DiT, DiTConfig
from fourreal.models.model4d import build_model4d
from fourreal.running.cli import main as cli_main
from fourreal.running.config import ConfigError
from fourreal.sampling.sample_4d import Sample4DConfig, SampleVariant, resolve_window, variant_window
from fourreal.sampling.video_to_4d import VideoTo4DConfig
from fourreal.training.model_files import export_model, load_model4d, model4d_config, training_frames, training_window
from fourreal.training.optim import OptimConfig, Phase

from conftest import moving_square_frames, write_video

TINY = DiTConfig(patch=4, dim=24, depth=1, heads=2)


def export_4d(directory, frames: int | None):
    """A tiny soft 4D model exported as train_4d does, last trained on ``frames x frames``
    windows (after a first phase of 8), or (None) as it was exported before the record."""
    torch.manual_seed(0)
    model = build_model4d(DiT(TINY), "soft")
    config = model4d_config(model, OptimConfig(phases=[Phase(2, 16, 32, 8, 2), Phase(1, 20, 32, frames or 4, 1)]))
    if frames is None:
        del config["training_window"]
    export_model(directory, model, config, 15.0)
    return directory


def export_base(directory, frames: int | None):
    """A tiny base model exported as train_base does, trained on ``frames``-frame videos."""
    config = {"preset": "tiny", "dit": asdict(TINY)} | ({} if frames is None else {"training_frames": frames})
    export_model(directory, DiT(TINY), config, 15.0)
    return directory


def test_the_exported_config_records_the_last_phase_window(tmp_path):
    directory = export_4d(tmp_path / "model", 4)
    record = json.loads((directory / "config.json").read_text())["training_window"]
    assert record == {"views": 4, "times": 4, "height": 20, "width": 32}
    assert training_window(directory) == 4
    assert load_model4d(directory).architecture == "soft"  # the loader ignores the record
    assert training_window(export_4d(tmp_path / "old", None)) is None
    assert training_frames(export_base(tmp_path / "base", 6)) == 6
    assert training_frames(export_base(tmp_path / "old_base", None)) is None


def test_a_trained_4d_model_is_sampled_with_its_own_window(tmp_path, caplog):
    directory = export_4d(tmp_path / "model", 4)
    assert resolve_window(0, directory) == 4
    assert resolve_window(4, directory) == 4
    for other in (2, 8):
        with pytest.raises(ConfigError) as exc:
            resolve_window(other, directory, key="sample_4d.window", force_key="sample_4d.force_window")
        assert str(exc.value) == (f"sample_4d.window = {other} but {directory} was trained on 4x4 windows; "
                                  "set window: 0 (use the model's) or force_window: true")
    with pytest.raises(ConfigError, match=r"^--window 8 but .* set --window 0 \(use the model's\) or --force-window$"):
        resolve_window(8, directory, key="--window", force_key="--force-window")
    with caplog.at_level(logging.WARNING):
        assert resolve_window(8, directory, force=True, key="video_to_4d.window") == 8
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "video_to_4d.window = 8 but" in caplog.text and "4x4 windows; sampling with 8x8 windows anyway" in caplog.text
    caplog.clear()
    assert resolve_window(4, directory, force=True) == 4 and not caplog.records  # nothing forced: no warning


def test_a_model_without_the_record_needs_an_explicit_window(tmp_path):
    directory = export_4d(tmp_path / "old", None)
    with pytest.raises(ConfigError, match=r"^sample_4d.window = 0 \(the model's window\) but .*old records no training "
                                          r"window .*set the window explicitly \(window: N"):
        resolve_window(0, directory, key="sample_4d.window")
    assert resolve_window(3, directory) == 3
    with pytest.raises(ConfigError, match="records no training frames"):
        resolve_window(0, export_base(tmp_path / "old_base", None), base=True)


def test_the_base_model_allows_windows_up_to_its_training_frames(tmp_path, caplog):
    base = export_base(tmp_path / "base", 6)
    assert resolve_window(0, base, base=True) == 6
    assert resolve_window(4, base, base=True) == resolve_window(4, base, base=True, force=True) == 4
    assert not caplog.records
    with pytest.raises(ConfigError) as exc:
        resolve_window(8, base, base=True, key="sample_4d.window", force_key="sample_4d.force_window")
    assert str(exc.value) == (f"sample_4d.window = 8 but {base} was trained on 6-frame videos (windows up to 6x6); "
                              "set window: 0 (use the model's) or force_window: true")
    with caplog.at_level(logging.WARNING):
        assert resolve_window(8, base, base=True, force=True) == 8
    assert "anyway" in caplog.text


def test_each_sample_4d_variant_gets_its_models_window(tmp_path):
    trained, base = export_4d(tmp_path / "model", 4), export_base(tmp_path / "base", 6)
    cfg = Sample4DConfig(base_model=str(base), window=0)
    assert variant_window(cfg, SampleVariant(model=str(trained))) == 4
    assert variant_window(cfg, SampleVariant(architecture="soft_free")) == 6
    with pytest.raises(ConfigError, match=r"^sample_4d.window = 6 but .* 4x4 windows; set window: 0 \(use the model's\) or force_window: true$"):
        variant_window(Sample4DConfig(base_model=str(base), window=6), SampleVariant(model=str(trained)))


@pytest.mark.parametrize("cls", [Sample4DConfig, VideoTo4DConfig])
def test_configs_take_zero_for_the_models_window(cls):
    assert cls(window=0).window == 0 and cls(window=9, force_window=True).window == 9
    with pytest.raises(ConfigError, match="window"):
        cls(window=1)


def test_the_sample_4d_stage_refuses_a_mismatch_in_one_line(tmp_path, monkeypatch, capsys):
    from fourreal.running.stage import run_stage
    from stages import sample_4d

    trained = export_4d(tmp_path / "model", 4)
    section = {"base_model": str(export_base(tmp_path / "base", 6)), "test_grids": str(tmp_path / "none"), "window": 8,
               "variants": {"soft": {"model": str(trained), "architecture": ""}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"sample_4d": section}))
    monkeypatch.setattr(sys, "argv", ["stages.sample_4d", "--params", str(tmp_path / "params.yaml"),
                                      "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exc:
        run_stage(sample_4d.main)
    assert exc.value.code == 2
    assert capsys.readouterr().err == (f"error: sample_4d.window = 8 but {trained} was trained on 4x4 windows; "
                                       "set window: 0 (use the model's) or force_window: true\n")
    assert not (tmp_path / "out").exists()


def test_the_grid_command_uses_the_models_window_by_default(tmp_path, monkeypatch, capsys):
    import fourreal.sampling.grid_windows

    directory = export_4d(tmp_path / "model", 3)
    frames = moving_square_frames(6, 48, 80)
    write_video(tmp_path / "row.mp4", frames, fps=8)
    write_video(tmp_path / "col.mp4", np.stack([np.roll(frames[0], i, axis=1) for i in range(6)]), fps=8)
    windows = []
    real = fourreal.sampling.grid_windows.sample_grid

    def spy(velocity, row, col, window, *args, **kwargs):
        windows.append(window)
        return real(velocity, row, col, window, *args, **kwargs)

    monkeypatch.setattr(fourreal.sampling.grid_windows, "sample_grid", spy)
    args = ["grid", "--row", str(tmp_path / "row.mp4"), "--column", str(tmp_path / "col.mp4"), "--model", str(directory),
            "--out", str(tmp_path / "out"), "--views", "4", "--times", "4", "--height", "16", "--width", "32",
            "--steps", "1"]
    assert cli_main(args) == 0 and windows == [(3, 3)]
    assert cli_main(args + ["--window", "4"]) == 2 and windows == [(3, 3)]  # refused before sampling
    err = " ".join(capsys.readouterr().err.split())  # rich wraps lines
    assert f"--window 4 but {directory} was trained on 3x3 windows" in err and "--force-window" in err
    assert cli_main(args + ["--window", "4", "--force-window"]) == 0 and windows[-1] == (4, 4)
