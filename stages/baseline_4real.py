"""Stage `baseline_4real`: 4Real's optimisation pipeline (the baseline the 4D model
replaces) on the held-out rendered assets, from the same inputs the 4D model gets: each test
grid's first row (reference video) and first column (freeze-time video), at sample_4d's size.

Outputs under ``data/baseline_4real/``: ``4real/<asset>.grid.npz`` (every cell rendered from
the optimised deformable Gaussians, laid out like a sample_4d variant so that `evaluate`
tabulates it), ``previews/`` (truth above the renders), ``scores.json`` (PSNR/SSIM of the
generated cells against the truth, per asset), ``metrics.json`` and ``details.json`` (both:
their means and the number of grids; details also the device) and ``run.json`` (untracked:
seconds per grid).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from fourreal.baseline.baseline_4real import Baseline4RealConfig, optimize_4real
from fourreal.formats.files import atomic_dir, write_json
from fourreal.formats.grid import Grid, save_grid
from fourreal.formats.preview import contact_sheet, write_png
from fourreal.models.depth import load_depth_model, predict_depth
from fourreal.reconstruction.config import ReconstructConfig
from fourreal.running.config import load_section
from fourreal.running.errors import UserError
from fourreal.running.stage import run_stage, stage_args, write_metrics, write_run
from fourreal.sampling.sample_4d import Sample4DConfig, held_out_truths, score
from fourreal.training.data import to_unit
from fourreal.training.model_files import load_model

VARIANT = "4real"


def headline(details: dict) -> dict:
    """The stage's metrics from its details: mean PSNR and SSIM, and the number of grids."""
    return {"grids": details["grids"], "psnr": details["psnr"], "ssim": details["ssim"]}


def main() -> None:
    args = stage_args("baseline_4real", __doc__)
    cfg = load_section(Baseline4RealConfig, "baseline_4real", args.params)
    sample_cfg = load_section(Sample4DConfig, "sample_4d", args.params)
    recon_cfg = load_section(ReconstructConfig, "reconstruct", args.params)
    out = Path(args.out)
    truths = held_out_truths(sample_cfg, cfg.max_grids)
    if not truths:
        raise UserError(f"baseline_4real: no test grids in {sample_cfg.test_grids}; run `dvc repro render` first")
    base, depth_net = load_model(cfg.base_model), load_depth_model(cfg.depth_model)
    scores, seconds = {}, []
    with atomic_dir(out / VARIANT) as tmp, atomic_dir(out / "previews") as prev:
        for asset, test in tqdm(truths.items(), desc="4Real", unit="grid"):
            truth, Ks = test.frames(), test.intrinsics
            if Ks is None:
                raise UserError(f"baseline_4real: test grid {asset} has no intrinsics; 4Real needs the column's cameras")
            depth = predict_depth(depth_net, truth[:, 0])
            result = optimize_4real(truth[0], truth[:, 0], depth, Ks, base, cfg, recon_cfg, progress=False)
            renders = result["renders"]
            scores[asset] = score(to_unit(renders), to_unit(truth))
            seconds.append(sum(result["timings"].values()))
            tqdm.write(f"4Real {asset}: PSNR {scores[asset]['psnr']:.2f} dB, " +
                       ", ".join(f"{k} {v:.1f} s" for k, v in result["timings"].items()))
            save_grid(tmp / f"{asset}.grid.npz", Grid(rgb=renders, intrinsics=Ks, meta={
                "kind": "generated", "variant": VARIANT, "source": asset, "seed": cfg.seed, "fps": 8.0}))
            write_png(prev / f"{asset}.png", contact_sheet(np.concatenate([truth, renders]), 48))
    write_json(out / "scores.json", {VARIANT: scores})
    details = {"psnr": round(float(np.mean([s["psnr"] for s in scores.values()])), 3),
               "ssim": round(float(np.mean([s["ssim"] for s in scores.values()])), 4),
               "grids": len(scores), "device": "cuda" if torch.cuda.is_available() else "cpu"}
    write_metrics(out, headline(details), details)
    write_run(out, {"seconds_per_grid": round(float(np.mean(seconds)), 2)})


if __name__ == "__main__":
    run_stage(main)
