"""Stage `pseudo4d`: pseudo-4D grids from the clips of `videos` by smooth 2D affine motions.

Outputs under ``data/pseudo4d/``: ``grids/*.grid.npz`` (from the training clips),
``test_grids/*.grid.npz`` (from the clips of the held-out videos, the same way; empty when
none are held out), ``previews/`` (contact sheet, viewer and row/column mp4s of the first
training grids), ``metrics.json`` (headline: training and held-out grids) and
``details.json`` (grid counts and shape, motion scale statistics).
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from fourreal.data_making.pseudo4d import Pseudo4DConfig, write_pseudo4d_grids
from fourreal.formats.clip import list_clips
from fourreal.formats.files import atomic_dir
from fourreal.formats.preview import write_grid_previews
from fourreal.running.config import load_section
from fourreal.running.errors import UserError
from fourreal.running.layout import CLIPS, TEST_CLIPS
from fourreal.running.stage import run_stage, stage_args, write_metrics


def headline(details: dict) -> dict:
    """The stage's metrics from its details: training and held-out grids."""
    return {"grids": details["grids"], "held_out": details["test_grids"]}


def main() -> None:
    args = stage_args("pseudo4d", __doc__)
    cfg = load_section(Pseudo4DConfig, "pseudo4d", args.params)
    clips = list_clips(CLIPS)
    if not clips:
        raise UserError(f"pseudo4d: no clips in {CLIPS}; run `dvc repro videos` first")
    scales, shown = [], []
    for name, grid in write_pseudo4d_grids(clips, cfg.grids_per_clip, f"{args.out}/grids", cfg, "pseudo-4D grids"):
        scales.append(grid.meta["motion_scale"])
        times = grid.shape[1]
        if len(shown) < cfg.preview.max_items:
            shown.append((name, grid))
    tests = sum(1 for _ in write_pseudo4d_grids(list_clips(TEST_CLIPS), cfg.test_grids_per_clip, f"{args.out}/test_grids", cfg,
                                         "held-out pseudo-4D grids"))
    with atomic_dir(f"{args.out}/previews") as tmp:
        for name, grid in tqdm(shown, desc="previews", unit="grid"):
            write_grid_previews(grid, tmp, name, cfg.preview)
    details = {
        "grids": len(scales),
        "test_grids": tests,
        "views": cfg.num_views,
        "times": times,
        "motion_scale_mean": float(np.mean(scales)),
        "motion_scale_min": float(np.min(scales)),
    }
    write_metrics(args.out, headline(details), details)


if __name__ == "__main__":
    run_stage(main)
