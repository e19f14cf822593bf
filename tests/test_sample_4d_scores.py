"""sample_4d's scoring: the two copy baselines, PSNR/SSIM over the truth's foreground
(depth > 0), whose mask follows the truth window's crop and resize, and the scores on the
pseudo-4D grids of held-out real videos."""

import json
import math
import sys

import numpy as np
import pytest
import torch
import yaml

from fourreal.data_making.pseudo4d import Pseudo4DConfig, make_pseudo4d_grid
from fourreal.evaluation.metrics import masked_psnr, masked_ssim
from fourreal.formats.grid import Grid, list_grids, load_grid, save_grid
from fourreal.models.dit import DiT, DiTConfig
from fourreal.models.model4d import build_model4d
from fourreal.running.config import ConfigError
from fourreal.sampling.sample_4d import (BASELINES, NO_DEPTH, NO_FOREGROUND, Sample4DConfig, SampleVariant,
                                 copy_column_baseline, copy_row_baseline, foreground_score, foreground_window,
                                 held_out_truths, mean_score, pseudo_test_paths, score, truth_window)
from fourreal.training.data import to_uint8
from fourreal.training.model_files import export_model, model4d_config
from fourreal.training.optim import OptimConfig, Phase

from conftest import moving_square_frames

V, T, H, W = 3, 4, 64, 64
SQUARE = (slice(16, 48), slice(16, 48))  # the foreground: a 32x32 square of a 64x64 frame


def synthetic_truth(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A truth grid ``[V, T, 3, H, W]`` in [-1, 1]: a flat gray background and a textured
    square whose texture differs per cell, with its foreground mask ``[V, T, H, W]``."""
    g = torch.Generator().manual_seed(seed)
    truth = torch.full((V, T, 3, H, W), -0.2)
    truth[..., SQUARE[0], SQUARE[1]] = torch.rand(V, T, 3, 32, 32, generator=g) * 2 - 1
    mask = torch.zeros(V, T, H, W, dtype=torch.bool)
    mask[..., SQUARE[0], SQUARE[1]] = True
    return truth, mask


def noise_like(x: torch.Tensor, seed: int = 1) -> torch.Tensor:
    return torch.rand(x.shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_copy_baselines_repeat_the_first_frame_of_each_row_or_column():
    truth = torch.rand(V, T, 3, 5, 6)
    row, column = copy_row_baseline(truth), copy_column_baseline(truth)
    assert row.shape == column.shape == truth.shape
    for v in range(V):
        for t in range(T):
            assert torch.equal(row[v, t], truth[v, 0])  # the view without motion
            assert torch.equal(column[v, t], truth[0, t])  # the first view at every time
    assert not torch.equal(row, column)
    row[0, 1] += 1  # fresh tensors, not views of the truth
    assert torch.equal(copy_row_baseline(truth), truth[:, :1].expand_as(truth))
    assert set(BASELINES) == {"copy_row_baseline", "copy_column_baseline"}


def test_foreground_psnr_sees_only_the_foreground():
    truth, mask = synthetic_truth()
    outside = torch.where(mask[:, :, None], truth, noise_like(truth))  # right inside, wrong outside
    inside = torch.where(mask[:, :, None], noise_like(truth), truth)  # wrong inside, right outside
    whole_out, fg_out = score(outside, truth), foreground_score(outside, truth, mask)
    whole_in, fg_in = score(inside, truth), foreground_score(inside, truth, mask)
    assert fg_out["fg_psnr"] == math.inf  # exact match on the foreground: inf, as psnr() reports it
    assert whole_out["psnr"] < 15
    assert fg_in["fg_psnr"] < 10 and whole_in["psnr"] > fg_in["fg_psnr"] + 4
    # the MSE over all 3 channels of the foreground pixels, pooled over the generated cells
    err = ((inside - truth) / 2)[1:, 1:].pow(2).movedim(2, -1)[mask[1:, 1:]]
    assert fg_in["fg_psnr"] == pytest.approx(10 * math.log10(1 / err.mean().item()), abs=1e-3)


def test_foreground_ssim_sees_only_the_foreground():
    truth, mask = synthetic_truth()
    outside = torch.where(mask[:, :, None], truth, noise_like(truth))
    inside = torch.where(mask[:, :, None], noise_like(truth), truth)
    whole_out, fg_out = score(outside, truth), foreground_score(outside, truth, mask)
    whole_in, fg_in = score(inside, truth), foreground_score(inside, truth, mask)
    assert fg_out["fg_ssim"] > 0.9 and whole_out["ssim"] < 0.5  # windows at the square's edge see some noise
    assert fg_in["fg_ssim"] < 0.1 and whole_in["ssim"] > 0.4  # the background (2/3 of the SSIM windows) is right
    assert foreground_score(truth, truth, mask)["fg_ssim"] == pytest.approx(1.0, abs=1e-5)


def test_masked_ssim_averages_the_map_over_the_window_centres_in_the_mask():
    a = torch.rand(2, 3, 24, 24) * 2 - 1
    b = a.clone()
    b[:, :, :, 12:] = noise_like(b[:, :, :, 12:])  # the right half is wrong
    left = torch.zeros(2, 24, 24, dtype=torch.bool)
    left[:, :, :6] = True  # no window (11 wide) centred here reaches the right half
    assert masked_ssim(a, b, left) == pytest.approx(1.0, abs=1e-5)
    assert masked_ssim(a, b, ~left) < 0.9
    border = torch.zeros(2, 24, 24, dtype=torch.bool)
    border[:, :5] = True  # within half a window of the border: no window is centred there
    assert masked_ssim(a, b, border) is None
    assert masked_psnr(a, b, torch.zeros(2, 24, 24, dtype=torch.bool)) is None


def test_the_given_row_and_column_and_empty_cells_do_not_count():
    truth, mask = synthetic_truth()
    wrong = truth.clone()
    wrong[0] = noise_like(truth[0])  # the given first row and column are not scored
    wrong[:, 0] = noise_like(truth[:, 0], seed=2)
    assert foreground_score(wrong, truth, mask) == {"fg_psnr": math.inf, "fg_ssim": pytest.approx(1.0, abs=1e-5)}
    only_given = mask.clone()
    only_given[1:, 1:] = False
    assert foreground_score(wrong, truth, only_given) == {"fg_psnr": NO_FOREGROUND, "fg_ssim": NO_FOREGROUND}
    assert foreground_score(wrong, truth, None) == {"fg_psnr": NO_DEPTH, "fg_ssim": NO_DEPTH}
    # a generated cell without foreground adds nothing: the same score as without that cell
    pred = (truth + 0.1 * noise_like(truth)).clamp(-1, 1)
    some_empty = mask.clone()
    some_empty[1, 2] = False
    pixels = (((pred - truth) / 2)[1:, 1:].pow(2).movedim(2, -1))[some_empty[1:, 1:]]
    assert foreground_score(pred, truth, some_empty)["fg_psnr"] == pytest.approx(10 * math.log10(1 / pixels.mean().item()),
                                                                                  abs=1e-3)


def test_mean_score_skips_assets_without_a_number():
    assert mean_score([20.0, NO_FOREGROUND, 22.0], 3) == 21.0
    assert mean_score([NO_FOREGROUND, NO_FOREGROUND], 3) == NO_FOREGROUND
    assert mean_score([NO_DEPTH], 4) == NO_DEPTH
    assert mean_score([0.12345, 0.2], 4) == 0.1617


def test_the_mask_follows_the_truth_windows_crop_and_resize():
    # 6x5 cells of 36x64, sampled as 3x4 cells of 16x32: first 3 views and 4 times, rows 2..34
    # (centre crop to the 1:2 aspect), then halved
    cfg = Sample4DConfig(views=3, times=4, height=16, width=32)
    depth = np.zeros((6, 5, 36, 64), np.float32)
    depth[:, :, 10:18, 20:40] = 2.0  # crop rows 8..16 -> sampled rows 4..8, columns 10..20
    depth[:, :, 0:2] = 1.0  # cropped away
    depth[:, :, 34:36] = 1.0  # cropped away
    depth[:, :, 26:28, 50] = 3.0  # half of a 2x2 block: foreground (>= 0.5 of its area)
    depth[:, :, 26, 60] = 3.0  # a quarter of one: background
    depth[1, 2, 10:18, 20:40] = 0.0  # one cell without the square
    depth[0, 3, 30:32, 2:4] = np.inf  # not finite: background (a whole 2x2 block, sampled pixel (14, 1))
    mask = foreground_window(depth, cfg)
    expected = torch.zeros(3, 4, 16, 32, dtype=torch.bool)
    expected[:, :, 4:8, 10:20] = True
    expected[:, :, 12, 25] = True
    expected[1, 2] = False
    expected[1, 2, 12, 25] = True
    assert mask.shape == (3, 4, 16, 32) and mask.dtype == torch.bool
    assert torch.equal(mask, expected)
    assert foreground_window(None, cfg) is None


@pytest.mark.parametrize("size", [(37, 61), (9, 20)])  # shrunk (area) and enlarged (bilinear), odd factors
def test_the_mask_matches_the_rgb_of_the_truth_window(size):
    """A white-on-black render: the mask is where the truth window's frames are brighter than
    mid-gray, pixel for pixel, for any crop and scale."""
    cfg = Sample4DConfig(views=2, times=2, height=12, width=20)
    rng = np.random.default_rng(0)
    depth = (rng.random((3, 3, *size)) < 0.4).astype(np.float32) * rng.uniform(1, 3, (3, 3, *size)).astype(np.float32)
    rgb = np.where(depth[..., None] > 0, 255, 0).astype(np.uint8).repeat(3, -1)
    truth, mask = truth_window(rgb, cfg), foreground_window(depth, cfg)
    clear = truth[:, :, 0].abs() > 1e-4  # exactly half-covered pixels can round either way
    assert clear.float().mean() > 0.75
    assert torch.equal(mask[clear], (truth[:, :, 0] > 0)[clear])


def test_the_stage_writes_both_baselines_and_foreground_keys(tmp_path, monkeypatch):
    """sample_4d without variants: the copy baselines' scores and details, with and without
    depth; no headline metrics without a variant to report."""
    from stages import sample_4d

    truth, mask = synthetic_truth()
    rgb = ((truth.clamp(-1, 1) + 1) * 127.5).round().byte().movedim(2, -1).numpy()
    grids = tmp_path / "test"
    save_grid(grids / "a.grid.npz", Grid(rgb=rgb, depth=mask.numpy().astype(np.float32) * 2, meta={"source": "a"}))
    save_grid(grids / "b.grid.npz", Grid(rgb=rgb, meta={"source": "b"}))  # no depth
    section = {"test_grids": str(grids), "pseudo_test_grids": "", "views": V, "times": T, "height": H, "width": W,
               "variants": {}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"sample_4d": section}))
    monkeypatch.setattr(sys, "argv", ["stages.sample_4d", "--params", str(tmp_path / "params.yaml"),
                                      "--out", str(tmp_path / "out")])
    sample_4d.main()
    details = json.loads((tmp_path / "out/details.json").read_text())
    scores = json.loads((tmp_path / "out/scores.json").read_text())
    assert json.loads((tmp_path / "out/metrics.json").read_text()) == {}
    names = ("copy_row_baseline", "copy_column_baseline")
    keys = ("psnr", "ssim", "fg_psnr", "fg_ssim")
    assert set(details) == {f"{n}_{k}" for n in names for k in keys} | {"pseudo_grids"}
    assert details["pseudo_grids"] == 0 and scores["pseudo"] == {}  # pseudo_test_grids: "" scores none
    assert list((tmp_path / "out/pseudo").iterdir()) == []
    assert set(scores) == {*names, "pseudo"} and set(scores["copy_row_baseline"]) == {"a", "b"}
    assert scores["copy_row_baseline"]["b"]["fg_psnr"] == NO_DEPTH
    fitted = truth_window(rgb, Sample4DConfig(views=V, times=T, height=H, width=W))
    for name in names:
        expected = foreground_score(BASELINES[name](fitted), fitted, mask)
        assert scores[name]["a"]["fg_psnr"] == pytest.approx(expected["fg_psnr"])
        assert details[f"{name}_fg_psnr"] == round(expected["fg_psnr"], 3)  # the asset without depth is skipped
        assert details[f"{name}_fg_ssim"] == round(expected["fg_ssim"], 4)
        assert details[f"{name}_psnr"] == round(score(BASELINES[name](fitted), fitted)["psnr"], 3)
    assert details["copy_row_baseline_fg_psnr"] < details["copy_row_baseline_psnr"]  # the flat background is easy


def export_tiny_4d(directory):
    """A tiny soft 4D model exported as train_4d does, trained on 4x4 windows of 20x32."""
    torch.manual_seed(0)
    model = build_model4d(DiT(DiTConfig(patch=4, dim=24, depth=1, heads=2)), "soft")
    export_model(directory, model, model4d_config(model, OptimConfig(phases=[Phase(1, 20, 32, 4, 1)])), 15.0)
    return directory


def pseudo_grid(seed: int) -> Grid:
    """A pseudo-4D grid of 5 views x 6 times of 36x64 frames, as the pseudo4d stage writes
    its test grids (no depth, no cameras)."""
    clip = moving_square_frames(6, 36, 64, seed=seed)
    grid = make_pseudo4d_grid(clip, Pseudo4DConfig(num_views=5), np.random.default_rng(seed))
    grid.meta.update(kind="pseudo4d", source=f"clip{seed}")
    return grid


def test_variants_and_baselines_are_scored_on_the_pseudo_4d_test_grids(tmp_path, monkeypatch):
    """A trained variant and both copy baselines on 2 of 3 pseudo-4D test grids
    (max_pseudo_tests), besides the rendered test grid: generated grids under pseudo/<variant>/,
    per-grid whole-frame scores under scores.json's pseudo, their means as pseudo_ details."""
    from stages import sample_4d

    rendered = tmp_path / "render"
    truth, mask = synthetic_truth()
    rgb = ((truth.clamp(-1, 1) + 1) * 127.5).round().byte().movedim(2, -1).numpy()
    depth = mask.numpy().astype(np.float32)
    save_grid(rendered / "asset.grid.npz", Grid(rgb=rgb, depth=depth, meta={"source": "asset"}))
    pseudo = tmp_path / "pseudo4d_test"
    grids = {f"clip{k}_g0": pseudo_grid(k) for k in range(3)}
    for name, grid in grids.items():
        save_grid(pseudo / f"{name}.grid.npz", grid)
    model = export_tiny_4d(tmp_path / "model")
    section = {"test_grids": str(rendered), "pseudo_test_grids": str(pseudo), "max_pseudo_tests": 2, "views": 3,
               "times": 4, "height": 16, "width": 32, "steps": 2,
               "variants": {"soft": {"model": str(model), "architecture": ""}},
               "preview": {"max_items": 1, "cell_height": 16, "mp4": False, "html": False}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"sample_4d": section}))
    monkeypatch.setattr(sys, "argv", ["stages.sample_4d", "--params", str(tmp_path / "params.yaml"),
                                      "--out", str(tmp_path / "out")])
    sample_4d.main()
    out = tmp_path / "out"
    details = json.loads((out / "details.json").read_text())
    scores = json.loads((out / "scores.json").read_text())
    names = ("copy_row_baseline", "copy_column_baseline", "soft")
    scored = ["clip0_g0", "clip1_g0"]  # max_pseudo_tests grids spread over the sorted names
    assert details["pseudo_grids"] == 2
    # whole frames only on the pseudo-4D grids (no depth); the rendered grid's keys as before
    assert {k for k in details if k.startswith("pseudo_")} == {f"pseudo_{n}_{k}" for n in names
                                                               for k in ("psnr", "ssim")} | {"pseudo_grids"}
    assert {f"{n}_{k}" for n in names for k in ("psnr", "ssim", "fg_psnr", "fg_ssim")} <= set(details)
    assert set(scores["pseudo"]) == set(names)
    cfg = Sample4DConfig(views=3, times=4, height=16, width=32)
    fitted = {g: truth_window(grids[g].rgb, cfg) for g in scored}
    for name in names:
        per_grid = scores["pseudo"][name]
        assert sorted(per_grid) == scored and all(set(s) == {"psnr", "ssim"} for s in per_grid.values())
        for s in per_grid.values():
            assert 5 < s["psnr"] < 60 and -1 <= s["ssim"] <= 1
        assert details[f"pseudo_{name}_psnr"] == round(float(np.mean([s["psnr"] for s in per_grid.values()])), 3)
        assert details[f"pseudo_{name}_ssim"] == round(float(np.mean([s["ssim"] for s in per_grid.values()])), 4)
    for name, baseline in BASELINES.items():  # the baselines exactly as on the rendered grids
        for g in scored:
            assert scores["pseudo"][name][g] == pytest.approx(score(baseline(fitted[g]), fitted[g]))
    assert scores["pseudo"]["copy_row_baseline"] != scores["pseudo"]["copy_column_baseline"]
    generated = list_grids(out / "pseudo/soft")
    assert [p.name for p in generated] == [f"{g}.grid.npz" for g in scored]
    assert sorted(p.name for p in (out / "pseudo").iterdir()) == ["soft"]
    for path, g in zip(generated, scored):
        grid = load_grid(path)
        assert grid.shape == (3, 4, 16, 32) and grid.meta["kind"] == "generated" and grid.meta["source"] == g
        assert grid.meta["variant"] == "soft" and grid.depth is None and grid.intrinsics is None
        np.testing.assert_array_equal(grid.rgb[0], to_uint8(fitted[g][0]))  # the given fixed-view video
    assert [p.name for p in list_grids(out / "soft")] == ["asset.grid.npz"]  # the rendered one, where it was
    assert set(scores["soft"]) == {"asset"} and scores["soft"]["asset"]["fg_psnr"] > 0
    # the headline: the variant against the better copy baseline
    best = max(details[f"{name}_psnr"] for name in BASELINES)
    assert json.loads((out / "metrics.json").read_text()) == {
        "psnr": details["soft_psnr"], "ssim": details["soft_ssim"], "fg_psnr": details["soft_fg_psnr"],
        "baseline_psnr": best, "margin_db": round(details["soft_psnr"] - best, 3)}


def test_pseudo_test_settings_are_checked(tmp_path):
    assert pseudo_test_paths(Sample4DConfig(pseudo_test_grids="")) == []
    for k in range(10):
        save_grid(tmp_path / f"v{k // 5}_{k % 5}.grid.npz", pseudo_grid(k))
    picked = [p.name for p in pseudo_test_paths(Sample4DConfig(pseudo_test_grids=str(tmp_path), max_pseudo_tests=4))]
    assert picked == ["v0_0.grid.npz", "v0_2.grid.npz", "v1_0.grid.npz", "v1_2.grid.npz"]  # both videos
    assert len(pseudo_test_paths(Sample4DConfig(pseudo_test_grids=str(tmp_path), max_pseudo_tests=0))) == 10
    with pytest.raises(ConfigError) as exc:
        Sample4DConfig(max_pseudo_tests=-1)
    assert exc.value.key == "max_pseudo_tests"
    for reserved in ("pseudo", "pseudo_soft", "previews", "copy_row_baseline"):
        with pytest.raises(ConfigError, match="pseudo_\\*") as exc:
            Sample4DConfig(variants={reserved: SampleVariant(architecture="soft")})
        assert exc.value.key == "variants"
    allowed = Sample4DConfig(variants={"soft_pseudo_only": SampleVariant(architecture="soft")})
    assert list(allowed.variants) == ["soft_pseudo_only"]


def test_a_batch_of_test_grids_gives_the_grids_and_scores_of_one_at_a_time(tmp_path):
    """sample_4d.batch is a speed setting: 3 pseudo-4D grids sampled by a real (tiny) 4D model
    in batches of 2 give the same grids (uint8) and scores as one at a time."""
    from fourreal.sampling.sample_4d import load_truths, model_replicas, pseudo_scores, sample_truths, variant_model

    for k in range(3):
        save_grid(tmp_path / "tests" / f"clip{k}_g0.grid.npz", pseudo_grid(k))
    variant = SampleVariant(model=str(export_tiny_4d(tmp_path / "model")))
    results = {}
    for batch in (1, 2):
        cfg = Sample4DConfig(views=3, times=4, height=16, width=32, steps=2, batch=batch)
        truths = load_truths(list_grids(tmp_path / "tests"), cfg)
        out = tmp_path / f"batch{batch}"
        out.mkdir()
        torch.manual_seed(0)
        scores = sample_truths(model_replicas(variant_model(cfg, variant), 1), truths, cfg, 4, "soft", out, pseudo_scores)
        results[batch] = scores, [load_grid(p).rgb for p in list_grids(out)]
    (one, grids_one), (two, grids_two) = results[1], results[2]
    assert list(one) == ["clip0_g0", "clip1_g0", "clip2_g0"] and list(two) == list(one)
    for a, b in zip(grids_one, grids_two):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # float rounding of a batched matmul at most
    for name in one:
        assert two[name]["psnr"] == pytest.approx(one[name]["psnr"], abs=0.05)
    with pytest.raises(ConfigError) as exc:
        Sample4DConfig(batch=0)
    assert exc.value.key == "batch"


def test_held_out_truths_are_the_first_test_grids_at_the_sampling_window(tmp_path):
    """What sample_4d, baseline_4real and evaluate are all given and scored against."""
    cfg = Sample4DConfig(test_grids=str(tmp_path), views=2, times=3, height=16, width=32)
    rgbs = {name: moving_square_frames(12, 36, 64, seed=k).reshape(3, 4, 36, 64, 3) for k, name in enumerate("bca")}
    for name, rgb in rgbs.items():
        save_grid(tmp_path / f"{name}.grid.npz", Grid(rgb=rgb))
    truths = held_out_truths(cfg, limit=2)
    assert list(truths) == ["a", "b"] and list(held_out_truths(cfg)) == ["a", "b", "c"]
    assert truths["a"].intrinsics is None and truths["a"].foreground is None
    np.testing.assert_array_equal(truths["b"].frames(), to_uint8(truth_window(rgbs["b"], cfg)))
    assert truths["b"].frames().shape == (2, 3, 16, 32, 3)
    assert held_out_truths(Sample4DConfig(test_grids=str(tmp_path / "none"))) == {}
