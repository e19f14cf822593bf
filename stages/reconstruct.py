"""Stage `reconstruct`: deformable isotropic 3D Gaussians fitted to 4D grids (the held-out
renders, with their depth; generated grids, with the depth network's), initialised by
dense tracking of the freeze-time column.

Outputs under ``data/reconstruct/``: ``grids/<source>/<name>/`` per grid with ``canonical.ply`` (canonical
Gaussians), ``deformation.safetensors`` (temporal MLP, per-view offsets, Gaussian
parameters), ``renders.grid.npz`` (every cell re-rendered), ``loss.csv``; ``previews/``
(truth above renders, held-out cells marked; a sweep over interpolated views and times;
the canonical cloud turned around its centre; the sweep as mp4); with ``reconstruct.export``
also ``grids/<source>/<name>/export/`` (per time step a 3DGS PLY, a point cloud and a fused
mesh, a sweep mp4: ``fourreal.reconstruction.export``);
``scores.json`` (per grid), ``details.json`` (``grids`` reconstructed, ``failed``, and
``sources``: per source tag the means of its grids' scores), ``metrics.json`` (headline:
grids, failed grids, held-out PSNR/SSIM of the first source) and ``run.json`` (untracked:
timings).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from fourreal.formats.files import atomic_dir, write_json
from fourreal.formats.grid import load_grid
from fourreal.reconstruction.config import ReconstructConfig
from fourreal.reconstruction.export import export_frames
from fourreal.reconstruction.output import write_reconstruction
from fourreal.reconstruction.pipeline import reconstruct
from fourreal.reconstruction.sources import GridDepth, grid_jobs, source_means
from fourreal.running.config import load_section
from fourreal.running.errors import UserError
from fourreal.running.stage import run_stage, stage_args, write_metrics, write_run

log = logging.getLogger("stages.reconstruct")


def headline(details: dict) -> dict:
    """The stage's metrics from its details: grids reconstructed and failed, and the held-out
    PSNR/SSIM of the first source with a reconstructed grid (by default the rendered test grids)."""
    means = list(details["sources"].values())
    held_out = {"psnr": means[0]["heldout_psnr"], "ssim": means[0]["heldout_ssim"]} if means else {}
    return {"grids": details["grids"], "skipped": details["failed"], **held_out}


def main() -> None:
    args = stage_args("reconstruct", __doc__)
    cfg = load_section(ReconstructConfig, "reconstruct", args.params)
    out = Path(args.out)
    jobs = grid_jobs(cfg)
    depth_of = GridDepth(cfg)
    scores, timings, failures = {}, [], {}
    with atomic_dir(out / "grids") as tmp, atomic_dir(out / "previews") as prev:
        for name, path in tqdm(jobs, desc="reconstructing", unit="grid"):
            grid = load_grid(path)
            if grid.intrinsics is None:
                raise UserError(f"reconstruct: {path} has no intrinsics; only grids with cameras can be reconstructed")
            depth = depth_of(grid, path)
            try:
                result = reconstruct(grid.rgb, depth, grid.intrinsics, cfg, progress=len(jobs) == 1)
            except ValueError as exc:  # e.g. nothing trackable: counted, the other grids go on
                log.warning("reconstruct: %s skipped: %s", path, exc)
                failures[name] = str(exc)
                continue
            write_reconstruction(result, grid.rgb, grid.intrinsics, tmp / name, prev, name.replace("/", "__"), cfg,
                                 grid.meta.get("fps", 8.0))
            if cfg.export:
                export_frames(result["model"], grid.intrinsics, *grid.shape[2:4], result["background"],
                              tmp / name / "export", backend=cfg.backend, fps=grid.meta.get("fps", 8.0), where=str(path))
            scores[name] = {**result["scores"], **result["stats"]}
            timings.append(result["timings"])
    if not scores:
        raise SystemExit(f"reconstruct: every grid failed: {failures}")
    write_json(out / "scores.json", {**scores, **{n: {"failed": why} for n, why in failures.items()}})
    details = {"grids": len(scores), "failed": len(failures), "sources": source_means(scores, [name for name, _ in jobs])}
    write_metrics(out, headline(details), details)
    write_run(out, {k: round(float(np.mean([t[k] for t in timings])), 2) for k in timings[0]})


if __name__ == "__main__":
    run_stage(main)
