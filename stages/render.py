"""Stage `render`: render every asset of `assets` into a 4D grid with BlenderProc.

Outputs under ``data/render/``: ``grids/{train,test}/<asset>.grid.npz`` (RGB, depth,
cameras; kept between runs so an interrupted render resumes), ``clips/`` (rows, columns and
the diagonal of training grids, for the base video model), ``previews/``,
``failures.json``, ``metrics.json`` (headline: grids, held-out grids, failed assets) and
``details.json`` (assets rendered, per split, failed).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from tqdm import tqdm

from fourreal.data_making.render import RenderConfig, RenderJob, render_assets
from fourreal.formats.clip import grid_clips, save_clip
from fourreal.formats.files import atomic_dir, write_json
from fourreal.formats.grid import list_grids, load_grid
from fourreal.formats.preview import write_grid_previews
from fourreal.running.config import load_section
from fourreal.running.layout import ASSET_FILES, ASSET_MANIFEST
from fourreal.running.stage import run_stage, stage_args, write_metrics, write_run

log = logging.getLogger("stages.render")


def headline(details: dict) -> dict:
    """The stage's metrics from its details: grids (one per asset rendered), held-out grids,
    assets that failed to render."""
    return {"grids": details["assets"], "held_out": details["test"], "skipped": details["failed"]}


def main() -> None:
    args = stage_args("render", __doc__)
    cfg = load_section(RenderConfig, "render", args.params)
    manifest = json.loads(Path(ASSET_MANIFEST).read_text())["assets"]
    out = Path(args.out)
    jobs = [RenderJob(name=a["name"], asset=Path(ASSET_FILES) / a["file"], out=out / "grids" / a["split"] / f"{a['name']}.grid.npz",
                      split=a["split"], allow_static=not a["animated"]) for a in manifest]
    wanted = {j.out for j in jobs}
    for stale in list_grids(out / "grids" / "train") + list_grids(out / "grids" / "test"):
        if stale not in wanted:
            log.info("removing grid of an asset no longer listed: %s", stale)
            stale.unlink()
    start = time.time()
    rendered, reused, failed = render_assets(jobs, cfg)
    seconds = time.time() - start
    write_json(out / "failures.json", failed)
    done = [j for j in jobs if j.name in set(rendered) | set(reused)]
    if not done:
        raise SystemExit(f"render: no asset rendered; failures: {failed}")
    with atomic_dir(out / "clips") as tmp:
        for job in tqdm([j for j in done if j.split == "train"], desc="clips", unit="grid"):
            for name, clip in grid_clips(load_grid(job.out), job.name, cfg.clip_rows, cfg.clip_cols):
                save_clip(tmp / f"{name}.clip.npz", clip)
    with atomic_dir(out / "previews") as tmp:
        for job in done[: cfg.preview.max_items]:
            write_grid_previews(load_grid(job.out), tmp, job.name, cfg.preview)
    images = len(rendered) * cfg.num_views * cfg.num_times
    details = {
        "assets": len(done),
        "train": sum(j.split == "train" for j in done),
        "test": sum(j.split == "test" for j in done),
        "failed": len(failed),
    }
    write_metrics(out, headline(details), details)
    write_run(out, {"rendered_now": len(rendered), "reused": len(reused), "seconds": round(seconds, 2),
                    "seconds_per_image": round(seconds / images, 4) if images else None})


if __name__ == "__main__":
    run_stage(main)
