"""Stage `video_to_4d`: one video (or image) in, a 4D scene out (4Real-Video's full path):
the fixed-view row from the input, the freeze-time column from its first frame (base model,
autoregressive chunks), the 4D grid (4D model), deformable 3D Gaussians fitted to it.

    python -m stages.video_to_4d                          # the input in params.yaml
    python -m stages.video_to_4d --input my.mp4 --out runs/my   # any video or image

Outputs under ``data/video_to_4d/``: ``grid.grid.npz`` (with depth and intrinsics),
``reconstruction/`` (``canonical.ply``, ``deformation.safetensors``, ``renders.grid.npz``,
``loss.csv``; open it with ``fourreal view``), ``previews/`` (input row and generated
column, the grid's contact sheet, HTML viewer and mp4s, the reconstruction's renders, a
novel view-and-time sweep and the canonical cloud), ``metrics.json`` (fit and held-out
PSNR/SSIM of the reconstruction) and ``run.json`` (untracked: timings).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from fourreal.config import load_section
from fourreal.bundle import bundle_paths
from fourreal.files import atomic_dir
from fourreal.grid import Grid, save_grid
from fourreal.preview import PreviewConfig, contact_sheet, write_grid_previews, write_mp4, write_png
from fourreal.reconstruction.config import ReconstructConfig
from fourreal.reconstruction.output import write_reconstruction
from fourreal.stage import run_stage, setup_logging, write_metrics, write_run
from fourreal.video_to_4d import VideoTo4DConfig, video_to_4d


def main() -> None:
    parser = argparse.ArgumentParser(prog="stages.video_to_4d", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--out", default="", help="output directory (default: data/video_to_4d for the input in "
                        "params.yaml, data/video_to_4d_runs/<input name> for --input)")
    parser.add_argument("--input", default="", help="video or image file (default: video_to_4d.input in params)")
    parser.add_argument("--models", default="", help="a model bundle (models/<name>): its base, 4D and depth "
                        "models replace those of params.yaml")
    args = parser.parse_args()
    setup_logging()
    cfg = load_section(VideoTo4DConfig, "video_to_4d", args.params)
    if args.input:
        cfg = dataclasses.replace(cfg, input=args.input)
    if args.models:
        parts = bundle_paths(args.models)
        cfg = dataclasses.replace(cfg, base_model=str(parts["base"]), model_4d=str(parts["model_4d"]),
                                  depth_model=str(parts["depth"]))
    recon_cfg = load_section(ReconstructConfig, "reconstruct", args.params)
    out = Path(args.out or (f"data/video_to_4d_runs/{Path(args.input).stem}" if args.input else "data/video_to_4d"))
    result = video_to_4d(cfg, recon_cfg)
    rgb, Ks = result["grid"], result["intrinsics"]
    name = Path(cfg.input).stem
    grid = Grid(rgb=rgb, depth=result["depth"], intrinsics=Ks, meta={
        "kind": "generated", "source": str(cfg.input), "seed": cfg.seed, "fps": cfg.fps,
        "model": cfg.model_4d, "row_from_image": bool(result["is_image"])})
    out.mkdir(parents=True, exist_ok=True)
    save_grid(out / "grid.grid.npz", grid)
    with atomic_dir(out / "reconstruction") as rec, atomic_dir(out / "previews") as prev:
        write_reconstruction(result["reconstruction"], rgb, Ks, rec, prev, "reconstruction", recon_cfg, cfg.fps, cfg.mp4)
        inputs = np.zeros((2, max(cfg.views, cfg.times), *rgb.shape[2:]), np.uint8)
        inputs[0, : cfg.times], inputs[1, : cfg.views] = result["row"], result["column"]
        write_png(prev / "inputs.png", contact_sheet(inputs, 96))
        if cfg.mp4:
            write_mp4(prev / "freeze_time.mp4", result["column"].repeat(4, axis=1).repeat(4, axis=2), fps=cfg.fps)
        write_grid_previews(grid, prev, name, PreviewConfig(cell_height=96, mp4=cfg.mp4))
    rec = result["reconstruction"]
    write_metrics(out, {"input": str(cfg.input), "views": cfg.views, "times": cfg.times,
                        **rec["scores"], "gaussians": rec["stats"]["final_points"]})
    write_run(out, result["timings"])
    print(f"wrote {out}; look at it with: fourreal view {out}/reconstruction")


if __name__ == "__main__":
    run_stage(main)
