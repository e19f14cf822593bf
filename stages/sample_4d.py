"""Stage `sample_4d`: every 4D variant generates grids for the held-out rendered assets from
their first row (fixed-view video) and first column (freeze-time video).

Outputs under ``data/sample_4d/``: ``<variant>/<asset>.grid.npz``, ``previews/`` (each
variant's first grid), ``scores.json`` (per variant and asset) and ``metrics.json`` (mean
PSNR/SSIM of generated cells per variant and of the two copy baselines, whole frames and
over the truth's foreground: ``<name>_psnr``, ``<name>_ssim``, ``<name>_fg_psnr``,
``<name>_fg_ssim``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from tqdm import tqdm

from fourreal.config import load_section
from fourreal.data import to_uint8
from fourreal.files import atomic_dir, write_json
from fourreal.grid import Grid, list_grids, load_grid, save_grid
from fourreal.preview import write_grid_previews
from fourreal.sampling4d import (BASELINES, Sample4DConfig, foreground_score, foreground_window, generate, mean_score,
                                 model_replicas, score, truth_window, variant_model, variant_window, window_intrinsics)
from fourreal.stage import run_stage, stage_args, write_metrics

log = logging.getLogger("stages.sample_4d")


def main() -> None:
    args = stage_args("sample_4d", __doc__, "data/sample_4d")
    cfg = load_section(Sample4DConfig, "sample_4d", args.params)
    out = Path(args.out)
    windows = {name: variant_window(cfg, variant) for name, variant in cfg.variants.items()}  # refused before any work
    tests = list_grids(cfg.test_grids)
    if not tests:
        raise SystemExit(f"sample_4d: no test grids in {cfg.test_grids}; run `dvc repro render` first")
    truths, foregrounds, intrinsics = {}, {}, {}
    for p in tests:
        test = load_grid(p)
        asset = p.name.removesuffix(".grid.npz")
        truths[asset] = truth_window(test.rgb, cfg)
        foregrounds[asset] = foreground_window(test.depth, cfg)
        intrinsics[asset] = window_intrinsics(test.intrinsics, test.rgb.shape[2:4], cfg)

    def scored(grid: torch.Tensor, asset: str) -> dict[str, float | str]:
        return {**score(grid, truths[asset]), **foreground_score(grid, truths[asset], foregrounds[asset])}

    scores: dict[str, dict[str, dict[str, float | str]]] = {
        name: {a: scored(baseline(t), a) for a, t in truths.items()} for name, baseline in BASELINES.items()}
    torch.manual_seed(cfg.seed)
    for name, variant in cfg.variants.items():
        replicas = model_replicas(variant_model(cfg, variant), cfg.gpus, bf16=True)
        log.info("%s: %dx%d windows", name, windows[name], windows[name])
        scores[name] = {}
        with atomic_dir(out / name) as tmp:
            for asset, truth in tqdm(truths.items(), desc=f"sampling {name}", unit="grid"):
                grid = generate(replicas, truth, cfg, windows[name])
                scores[name][asset] = scored(grid, asset)
                save_grid(tmp / f"{asset}.grid.npz", Grid(rgb=to_uint8(grid), intrinsics=intrinsics[asset], meta={
                    "kind": "generated", "variant": name, "source": asset, "seed": cfg.seed, "fps": 8.0}))
    with atomic_dir(out / "previews") as tmp:
        for name in cfg.variants:
            first = sorted((out / name).glob("*.grid.npz"))[: cfg.preview.max_items]
            for path in first:
                write_grid_previews(load_grid(path), tmp, f"{name}_{path.name.removesuffix('.grid.npz')}", cfg.preview)
    write_json(out / "scores.json", scores)
    metrics = {}
    for name, per_asset in scores.items():
        for key, digits in (("psnr", 3), ("ssim", 4), ("fg_psnr", 3), ("fg_ssim", 4)):
            metrics[f"{name}_{key}"] = mean_score([s[key] for s in per_asset.values()], digits)
    write_metrics(out, metrics)


if __name__ == "__main__":
    run_stage(main)
