"""Stage `evaluate`: the paper's Table 1 and Table 2 for the sampled 4D variants, plus the
rendered ground truth as a reference row.

Outputs under ``data/eval/``: ``table1.md``/``.csv`` (FVD, CLIP, VideoScore — n/a without
weights —, flow-warping error along time and views, PSNR/SSIM against the truth),
``table2.md``/``.csv`` (matching share at epipolar thresholds, COLMAP structure from motion),
``table3.md``/``.csv`` (reconstruction PSNR/SSIM on fitted and held-out cells, per source),
``plots/`` (bar charts per metric), ``details.json`` (every number, per variant, and the
reconstruction's per source) and ``metrics.json`` (headline: the main variant's PSNR, SSIM
and warping error along time, and the PSNR of the baseline it beats by the least, 4Real's by
default, with the margin over it, both on the grids that baseline ran on).
"""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from fourreal.evaluation.fvd import load_clip_image_encoder, load_i3d, load_videoscore
from fourreal.evaluation.tables import (TABLE1, TABLE3, EvaluateConfig, bar_charts, psnr_on_grids, table2_columns,
                                        variant_metrics, write_table)
from fourreal.formats.clip import list_clips, load_clip
from fourreal.formats.files import atomic_dir
from fourreal.formats.grid import list_grids, load_grid
from fourreal.running.config import load_section
from fourreal.running.errors import UserError
from fourreal.running.stage import run_stage, stage_args, versus_baseline, write_metrics
from fourreal.sampling.sample_4d import Sample4DConfig, held_out_truths, main_variant


def headline(details: dict, variants: list[str], baselines: list[str]) -> dict:
    """The stage's metrics from its details: the main variant's (:func:`main_variant` of
    ``variants``) PSNR, SSIM and warping error along time, and the baseline it beats by the
    least, with its PSNR and the margin, both over that baseline's grids (a baseline row's
    ``main_psnr_on_these_grids``: the main variant's PSNR on the grids the baseline ran on)."""
    main = details[main_variant(variants)]
    margins = [versus_baseline(details[name].get("main_psnr_on_these_grids", main["psnr"]), [details[name]["psnr"]])
               for name in baselines]
    return {"psnr": main["psnr"], "ssim": main["ssim"], "warp_error_time": main["warp_error_time"],
            **min(margins, key=lambda m: m["margin_db"], default={})}


def main() -> None:
    args = stage_args("evaluate", __doc__)
    cfg = load_section(EvaluateConfig, "evaluate", args.params)
    sample_cfg = load_section(Sample4DConfig, "sample_4d", args.params)
    out = Path(args.out)
    samples = Path(cfg.samples)
    scores_path = samples / "scores.json"
    if not scores_path.is_file():
        raise UserError(f"evaluate: {scores_path} missing; run `dvc repro sample_4d` first")
    scores = json.loads(scores_path.read_text())
    i3d, clip = load_i3d(cfg.i3d_path), load_clip_image_encoder(cfg.clip_path)
    video_scorer = load_videoscore(cfg.videoscore_path)
    held_out = held_out_truths(sample_cfg).values()
    truths, truth_k = [t.frames() for t in held_out], [t.intrinsics for t in held_out]
    inputs = np.concatenate([t[0][None] for t in truths] + [t[:, 0][None] for t in truths])  # the given rows and columns
    real = None
    if i3d is not None:
        clips = [load_clip(p).rgb for p in list_clips(cfg.real_videos)]
        frames = min(c.shape[0] for c in clips)
        real = np.stack([c[:frames] for c in clips])
    rows: dict[str, dict] = {}
    workers = cfg.workers or os.cpu_count() or 1
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) if workers > 1 else None
    sources = {name: samples for name in cfg.variants}
    baselines: list[str] = []
    for directory in map(Path, cfg.baselines):
        if not (directory / "scores.json").is_file():
            raise UserError(f"evaluate: {directory / 'scores.json'} missing; run the stage that writes {directory} "
                             "or remove it from evaluate.baselines")
        extra = json.loads((directory / "scores.json").read_text())
        scores.update(extra)
        sources.update({name: directory for name in extra})
        baselines += list(extra)
    for name in tqdm([*sources, "truth"], desc="evaluating", unit="variant"):
        if name == "truth":
            grids, ks, sc = truths, truth_k, None
        else:
            paths = list_grids(sources[name] / name)
            if not paths:
                raise UserError(f"evaluate: no grids for variant {name} in {sources[name] / name}; "
                                 "is it in sample_4d.variants?")
            loaded = [load_grid(p) for p in paths]
            grids, ks, sc = [g.rgb for g in loaded], [g.intrinsics for g in loaded], scores.get(name)
        if not cfg.sfm:
            ks = [None] * len(grids)  # Table 2's structure-from-motion columns left out
        rows[name] = variant_metrics(grids, ks, cfg.thresholds, sc, i3d, real, inputs, clip, video_scorer, pool)
    if pool:
        pool.shutdown()
    main_scores = scores.get(main_variant(cfg.variants)) or {}
    for name in baselines:  # the main variant on the grids each baseline ran on, for a like-for-like margin
        shared = psnr_on_grids(main_scores, scores[name])
        if shared is not None:
            rows[name]["main_psnr_on_these_grids"] = shared
    out.mkdir(parents=True, exist_ok=True)
    t2 = table2_columns(cfg.thresholds)
    write_table(out / "table1.md", out / "table1.csv", "Table 1: quality and temporal consistency", TABLE1, rows)
    write_table(out / "table2.md", out / "table2.csv", "Table 2: multi-view consistency (columns)", t2, rows)
    recon = {}
    if cfg.reconstruction:
        path = Path(cfg.reconstruction)
        if not path.is_file():
            raise UserError(f"evaluate: {path} missing; run `dvc repro reconstruct` or set evaluate.reconstruction to \"\"")
        recon = json.loads(path.read_text()).get("sources") or {}
        if not recon:
            raise UserError(f"evaluate: {path} holds no per-source reconstruction scores; set evaluate.reconstruction "
                             "to reconstruct's details.json (or \"\" to leave Table 3 out)")
        write_table(out / "table3.md", out / "table3.csv", "Table 3: reconstruction (deformable 3D Gaussians)", TABLE3, recon)
    with atomic_dir(out / "plots") as tmp:
        bar_charts(tmp / "table1.png", TABLE1, rows)
        bar_charts(tmp / "table2.png", t2, rows)
    def clean(v):
        return (round(v, 5) if np.isfinite(v) else None) if isinstance(v, float) else v

    details = {name: {k: clean(v) for k, v in m.items()} for name, m in rows.items()}
    details.update({f"reconstruction/{name}": m for name, m in recon.items()})
    write_metrics(out, headline(details, cfg.variants, baselines), details)


if __name__ == "__main__":
    run_stage(main)
