"""Stage `video_to_4d`: one video (or image) in, a 4D scene out (4Real-Video's full path):
the fixed-view row from the input, the freeze-time column from its first frame (base model,
autoregressive chunks), the 4D grid (4D model), deformable 3D Gaussians fitted to it.

    python -m stages.video_to_4d                          # the input in params.yaml
    python -m stages.video_to_4d --input my.mp4 --out runs/my   # any video or image

Outputs under ``data/video_to_4d/``: ``grid.grid.npz`` (with depth and intrinsics),
``reconstruction/`` (``canonical.ply``, ``deformation.safetensors``, ``renders.grid.npz``,
``loss.csv``; open it with ``fourreal view``), ``previews/`` (input row and generated
column, the grid's contact sheet, HTML viewer and mp4s, the reconstruction's renders, a
novel view-and-time sweep and the canonical cloud), ``metrics.json`` (headline: held-out
PSNR/SSIM of the reconstruction), ``details.json`` (also the fit PSNR/SSIM, Gaussians, input
and grid size) and ``run.json`` (untracked: timings).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from fourreal.reconstruction.config import ReconstructConfig
from fourreal.running.config import load_section
from fourreal.running.layout import VIDEO_TO_4D
from fourreal.running.stage import run_stage, setup_logging, stage_parser
from fourreal.sampling.video_to_4d import VideoTo4DConfig, run_video_to_4d, runs_dir, with_bundle


def main() -> None:
    parser = stage_parser("video_to_4d", __doc__)
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
        cfg = with_bundle(cfg, args.models)
    recon_cfg = load_section(ReconstructConfig, "reconstruct", args.params)
    out = Path(args.out) if args.out else (runs_dir(args.input) if args.input else Path(VIDEO_TO_4D))
    run_video_to_4d(cfg, recon_cfg, out)
    print(f"wrote {out}; look at it with: fourreal view {out}/reconstruction")


if __name__ == "__main__":
    run_stage(main)
