"""Stage `videos`: cut the videos of ``videos.input_dir`` into clips.

Outputs under ``data/videos/``: ``clips/*.clip.npz`` (mode ``dynamic``),
``previews/clips.png`` (one row per clip) and ``metrics.json``.
"""

from __future__ import annotations

import logging

import numpy as np
from tqdm import tqdm

from fourreal.clip import Clip, save_clip
from fourreal.config import load_section
from fourreal.files import atomic_dir
from fourreal.preview import contact_sheet, write_png
from fourreal.stage import run_stage, stage_args, write_metrics
from fourreal.videos import VideosConfig, ingest_directory

log = logging.getLogger("stages.videos")


def main() -> None:
    args = stage_args("videos", __doc__, "data/videos")
    cfg = load_section(VideosConfig, "videos", args.params)
    report = ingest_directory(cfg)
    if len(report.clips) < cfg.min_clips:
        raise SystemExit(
            f"videos: {len(report.clips)} usable clips from {cfg.input_dir} (need videos.min_clips={cfg.min_clips}); "
            f"skipped: {report.skipped or 'none'}. Add readable videos there or lower videos.clip_frames."
        )
    out = f"{args.out}/clips"
    with atomic_dir(out) as tmp:
        for stem, start, frames in tqdm(report.clips, desc="writing clips", unit="clip"):
            meta = {"source": stem, "start_frame": start, "fps": cfg.fps}
            save_clip(tmp / f"{stem}_{start:05d}.clip.npz", Clip(rgb=frames, mode="dynamic", meta=meta))
    shown = [frames for _, _, frames in report.clips[: cfg.preview.max_items]]
    if shown:
        write_png(f"{args.out}/previews/clips.png", contact_sheet(np.stack(shown), cfg.preview.cell_height, labels=("c", "f")))
    write_metrics(args.out, {
        "videos_found": len(report.videos_used) + len(report.skipped),
        "videos_used": len(report.videos_used),
        "videos_skipped": len(report.skipped),
        "clips": len(report.clips),
        "frames": int(sum(len(f) for _, _, f in report.clips)),
    })
    for name, reason in report.skipped.items():
        log.warning("skipped %s: %s", name, reason)


if __name__ == "__main__":
    run_stage(main)
