"""Stage `videos`: cut the videos of ``videos.input_dir`` into clips.

Outputs under ``data/videos/``: ``clips/*.clip.npz`` (mode ``dynamic``; the training
clips), ``test_clips/*.clip.npz`` (the clips of the whole videos held out by
``videos.test_videos``; empty by default), ``previews/clips.png`` (one row per training
clip), ``metrics.json`` (headline: training and held-out clips, skipped videos) and
``details.json`` (videos found, used and skipped, clips and frames, also of the held-out videos).
"""

from __future__ import annotations

import logging

import numpy as np
from tqdm import tqdm

from fourreal.data_making.videos import VideosConfig, ingest_directory
from fourreal.formats.clip import Clip, save_clip
from fourreal.formats.files import atomic_dir
from fourreal.formats.preview import contact_sheet, write_png
from fourreal.running.config import load_section
from fourreal.running.errors import UserError
from fourreal.running.stage import run_stage, stage_args, write_metrics

log = logging.getLogger("stages.videos")


def headline(details: dict) -> dict:
    """The stage's metrics from its details: training clips, held-out clips, skipped videos."""
    return {"clips": details["clips"], "held_out": details["test_clips"], "skipped": details["videos_skipped"]}


def main() -> None:
    args = stage_args("videos", __doc__)
    cfg = load_section(VideosConfig, "videos", args.params)
    report = ingest_directory(cfg)
    if len(report.clips) < cfg.min_clips:
        raise UserError(
            f"videos: {len(report.clips)} usable training clips from {cfg.input_dir} (need videos.min_clips={cfg.min_clips}; "
            f"{len(report.test_clips)} more from videos.test_videos); "
            f"skipped: {report.skipped or 'none'}. Add readable videos there or lower videos.clip_frames."
        )
    # both directories are replaced together at the end, or neither on an error
    with atomic_dir(f"{args.out}/clips") as tmp, atomic_dir(f"{args.out}/test_clips") as test_tmp:
        for folder, clips, what in ((tmp, report.clips, "clips"), (test_tmp, report.test_clips, "test clips")):
            for stem, start, frames in tqdm(clips, desc=f"writing {what}", unit="clip", disable=not clips):
                meta = {"source": stem, "start_frame": start, "fps": cfg.fps}
                save_clip(folder / f"{stem}_{start:05d}.clip.npz", Clip(rgb=frames, mode="dynamic", meta=meta))
    shown = [frames for _, _, frames in report.clips[: cfg.preview.max_items]]
    if shown:
        write_png(f"{args.out}/previews/clips.png", contact_sheet(np.stack(shown), cfg.preview.cell_height, labels=("c", "f")))
    details = {
        "videos_found": len(report.videos_used) + len(report.skipped),
        "videos_used": len(report.videos_used),
        "videos_skipped": len(report.skipped),
        "clips": len(report.clips),
        "frames": int(sum(len(f) for _, _, f in report.clips)),
        "test_videos": len(report.test_videos_used),
        "test_clips": len(report.test_clips),
        "test_frames": int(sum(len(f) for _, _, f in report.test_clips)),
    }
    write_metrics(args.out, headline(details), details)
    for name, reason in report.skipped.items():
        log.warning("skipped %s: %s", name, reason)


if __name__ == "__main__":
    run_stage(main)
