"""The profiles in profiles/: each merges onto params.yaml the way `fourreal profile apply` does
and validates; the paper profile covers every stage section at the paper's scale (Sec. 3.3,
4.1, 4.2 of 4Real-Video), the small profile has the paper's 4D training shape."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from fourreal.running.cli import _deep_merge
from fourreal.running.cli import main as cli_main
from fourreal.running.config import read_params
from fourreal.running.params import SECTIONS, SHARED, validate_params

from conftest import REPO

PROFILES = sorted(p.stem for p in (REPO / "profiles").glob("*.yaml"))


def _load(path: Path):
    return YAML().load(path.read_text())


def merged(profile: str, tmp_path: Path) -> dict:
    """``{section: config}`` of params.yaml with ``profile`` merged in (the CLI's merge), validated."""
    params = _load(REPO / "params.yaml")
    _deep_merge(params, _load(REPO / "profiles" / f"{profile}.yaml") or {}, profile)
    path = tmp_path / "params.yaml"
    with open(path, "w") as f:
        YAML().dump(params, f)
    return validate_params(path)


def test_profiles_exist():
    assert {"paper", "small"} <= set(PROFILES)


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_merges_and_validates(tmp_path, profile):
    cfg = merged(profile, tmp_path)
    assert set(cfg) == set(SECTIONS) | set(SHARED)


@pytest.mark.parametrize("profile", PROFILES)
def test_merge_matches_profile_apply(tmp_path, profile):
    """The merge used here is the command's: same params either way."""
    cli_dir = tmp_path / "cli"
    cli_dir.mkdir()
    cli_params = cli_dir / "params.yaml"
    cli_params.write_text((REPO / "params.yaml").read_text())
    assert cli_main(["profile", "apply", profile, "--params", str(cli_params), "--profiles", str(REPO / "profiles")]) == 0
    params = _load(REPO / "params.yaml")
    _deep_merge(params, _load(REPO / "profiles" / f"{profile}.yaml") or {}, profile)
    ours = tmp_path / "params.yaml"
    with open(ours, "w") as f:
        YAML().dump(params, f)
    assert read_params(ours) == read_params(cli_params)


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_grids_hold_the_training_windows(tmp_path, profile):
    """Rendered and pseudo-4D grids are at least as large as the 4D model's windows, and the
    sampled grids are crops of the rendered and of the pseudo-4D test grids."""
    cfg = merged(profile, tmp_path)
    t4, render = cfg["train_4d"], cfg["render"]
    for phase in t4.render.phases:
        assert phase.frames <= min(render.num_views, render.num_times)
    for phase in t4.pseudo.phases:
        assert phase.frames <= min(cfg["pseudo4d"].num_views, cfg["videos"].clip_frames)
    assert cfg["sample_4d"].views <= render.num_views and cfg["sample_4d"].times <= render.num_times
    assert cfg["sample_4d"].views <= cfg["pseudo4d"].num_views and cfg["sample_4d"].times <= cfg["videos"].clip_frames


def _progressive(phases) -> None:
    heights = [p.height for p in phases]
    widths = [p.width for p in phases]
    assert heights == sorted(heights) and widths == sorted(widths)
    assert heights[0] < heights[-1] and widths[0] < widths[-1]


def test_paper_profile_has_every_section():
    """Every stage section (the shared optimizer defaults need not: its blocks set their own)."""
    sections = set(read_params(REPO / "params.yaml"))
    paper = set(_load(REPO / "profiles" / "paper.yaml"))
    assert sections == set(SECTIONS) | set(SHARED)
    assert sorted(set(SECTIONS) - paper) == []


def test_paper_train_4d_schedule(tmp_path):
    t4 = merged("paper", tmp_path)["train_4d"]
    # Sec. 4.1: progressive, "20k iterations" on pseudo-4D grids, "3k iterations" on Objaverse
    assert t4.pseudo.total_steps == 20000
    assert t4.render.total_steps == 3000
    # Sec. 3.3: "an 8x8 frame grid in each step"
    assert all(p.frames == 8 for p in t4.pseudo.phases + t4.render.phases)
    _progressive(t4.pseudo.phases)
    assert (t4.pseudo.phases[0].height, t4.pseudo.phases[0].width) == (36, 64)
    assert (t4.pseudo.phases[-1].height, t4.pseudo.phases[-1].width) == (72, 128)
    assert [(p.height, p.width) for p in t4.render.phases] == [(72, 128)]
    # the lead owns the variants: the profile must not redefine them
    assert "variants" not in _load(REPO / "profiles" / "paper.yaml")["train_4d"]


def test_paper_base_and_upsampler(tmp_path):
    cfg = merged("paper", tmp_path)
    base = cfg["train_base"]
    # Sec. 4.1: 24 DiT blocks of 1024 channels, 36x64 -> 72x128
    assert base.preset == "paper"
    assert (base.model_config().depth, base.model_config().dim) == (24, 1024)
    _progressive(base.optim.phases)
    assert (base.optim.phases[0].height, base.optim.phases[0].width) == (36, 64)
    assert (base.optim.phases[-1].height, base.optim.phases[-1].width) == (72, 128)
    # Sec. 4.1: the upsampler brings 72x128 to 288x512
    up = cfg["train_upsampler"]
    assert up.scale == 4
    assert (up.optim.phases[-1].height, up.optim.phases[-1].width) == (288, 512)
    assert (cfg["videos"].height, cfg["videos"].width) == (288, 512)


def test_paper_grids_and_sampling(tmp_path):
    cfg = merged("paper", tmp_path)
    s4 = cfg["sample_4d"]
    assert (s4.views, s4.times, s4.height, s4.width) == (8, 8, 72, 128)
    assert s4.gpus == 0
    render = cfg["render"]
    assert render.num_views >= 8 and render.num_times >= 8
    assert (render.height, render.width) == (72, 128)
    assert cfg["pseudo4d"].num_views == 8
    # Sec. 3.3: ~15,000 animated Objaverse assets
    assets = cfg["assets"]
    assert "objaverse" in assets.sources and assets.objaverse_limit == 15000
    # Sec. 4.2: 2-second test videos of 16 frames
    v4 = cfg["video_to_4d"]
    assert (v4.views, v4.times, v4.fps) == (16, 16, 8.0)
    assert v4.window in (0, 8)  # 0: the 4D model's training window (8 above)
    assert (v4.height, v4.width) == (72, 128)
    assert cfg["videos"].fps == 8.0


def test_paper_downstream_scale(tmp_path):
    """Reconstruction, 4Real baseline and evaluation run on the paper-size grids."""
    cfg = merged("paper", tmp_path)
    rec, base4r = cfg["reconstruct"], cfg["baseline_4real"]
    assert rec.fit_steps >= 2000 and rec.prune_steps >= 200
    assert base4r.max_grids == 0  # the same held-out grids as sample_4d
    assert base4r.sds_frames == 8
    assert "data/baseline_4real" in cfg["evaluate"].baselines
    assert cfg["train_depth"].steps >= 10000


def test_small_train_4d_shape(tmp_path):
    cfg = merged("small", tmp_path)
    t4 = cfg["train_4d"]
    assert all(p.frames == 8 for p in t4.pseudo.phases + t4.render.phases)
    assert len(t4.pseudo.phases) == 2
    _progressive(t4.pseudo.phases)
    assert (t4.pseudo.phases[-1].height, t4.pseudo.phases[-1].width) == (72, 128)
    assert [(p.height, p.width) for p in t4.render.phases] == [(72, 128)]
    # a smaller run than the paper's
    paper_dir = tmp_path / "paper"
    paper_dir.mkdir()
    paper = merged("paper", paper_dir)["train_4d"]
    assert t4.pseudo.total_steps < paper.pseudo.total_steps
    assert t4.render.total_steps < paper.render.total_steps
    s4 = cfg["sample_4d"]
    assert (s4.views, s4.times, s4.height, s4.width) == (8, 8, 72, 128)
    assert cfg["render"].num_views >= 8 and cfg["render"].num_times >= 8

