"""Stage `pseudo4d`: pseudo-4D grids from the clips of `videos` by smooth 2D affine motions.

Outputs under ``data/pseudo4d/``: ``grids/*.grid.npz``, ``previews/`` (contact sheet, viewer
and row/column mp4s of the first grids) and ``metrics.json``.
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from fourreal.clip import list_clips, load_clip
from fourreal.config import load_section
from fourreal.files import atomic_dir
from fourreal.grid import save_grid
from fourreal.preview import write_grid_previews
from fourreal.pseudo4d import Pseudo4DConfig, grid_seed, make_pseudo4d_grid
from fourreal.stage import run_stage, stage_args, write_metrics

CLIPS = "data/videos/clips"


def main() -> None:
    args = stage_args("pseudo4d", __doc__, "data/pseudo4d")
    cfg = load_section(Pseudo4DConfig, "pseudo4d", args.params)
    clips = list_clips(CLIPS)
    if not clips:
        raise SystemExit(f"pseudo4d: no clips in {CLIPS}; run `dvc repro videos` first")
    scales, written, shown = [], [], []
    with atomic_dir(f"{args.out}/grids") as tmp:
        for path in tqdm(clips, desc="pseudo-4D grids", unit="clip"):
            clip = load_clip(path)
            name = path.name.removesuffix(".clip.npz")
            for k in range(cfg.grids_per_clip):
                seed = grid_seed(cfg.seed, name, k)
                grid = make_pseudo4d_grid(clip.rgb, cfg, np.random.default_rng(seed))
                grid.meta.update(source=name, seed=seed, fps=clip.meta.get("fps"), kind="pseudo4d")
                written.append(save_grid(tmp / f"{name}_g{k}.grid.npz", grid))
                scales.append(grid.meta["motion_scale"])
                if len(shown) < cfg.preview.max_items:
                    shown.append((f"{name}_g{k}", grid))
    with atomic_dir(f"{args.out}/previews") as tmp:
        for name, grid in tqdm(shown, desc="previews", unit="grid"):
            write_grid_previews(grid, tmp, name, cfg.preview)
    write_metrics(args.out, {
        "grids": len(written),
        "views": cfg.num_views,
        "times": int(clip.rgb.shape[0]),
        "motion_scale_mean": float(np.mean(scales)),
        "motion_scale_min": float(np.min(scales)),
    })


if __name__ == "__main__":
    run_stage(main)
