"""Stage `sample_4d`: every 4D variant generates grids for the held-out rendered assets from
their first row (fixed-view video) and first column (freeze-time video), and the same for
the pseudo-4D grids of held-out real videos.

Outputs under ``data/sample_4d/``: ``<variant>/<asset>.grid.npz``,
``pseudo/<variant>/<grid>.grid.npz`` (from the pseudo-4D test grids; empty without them),
``previews/`` (each variant's first grid), ``scores.json`` (per variant and asset, and under
``pseudo`` per variant and pseudo-4D grid), ``details.json`` (mean PSNR/SSIM of generated
cells per variant and of the two copy baselines, whole frames and over the truth's
foreground: ``<name>_psnr``, ``<name>_ssim``, ``<name>_fg_psnr``, ``<name>_fg_ssim``; on the
pseudo-4D grids, whole frames: ``pseudo_<name>_psnr``, ``pseudo_<name>_ssim``, and their
count ``pseudo_grids``) and ``metrics.json`` (headline: the main variant's ``psnr``, ``ssim``
and ``fg_psnr``, the better copy baseline's PSNR and the margin over it).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from fourreal.formats.files import atomic_dir, write_json
from fourreal.formats.grid import load_grid
from fourreal.formats.preview import write_grid_previews
from fourreal.running.config import load_section
from fourreal.running.errors import UserError
from fourreal.running.stage import run_stage, stage_args, versus_baseline, write_metrics
from fourreal.sampling.sample_4d import (BASELINES, Sample4DConfig, held_out_truths, load_truths, main_variant,
                                         mean_metrics, model_replicas, pseudo_scores, pseudo_test_paths,
                                         rendered_scores, sample_truths, sampling_precision, variant_model,
                                         variant_window)

log = logging.getLogger("stages.sample_4d")


def headline(details: dict, variants: list[str]) -> dict:
    """The stage's metrics from its details: the main variant's (:func:`main_variant` of
    ``variants``) PSNR, SSIM and foreground PSNR on the rendered test grids, and the better
    copy baseline's PSNR with the margin over it; empty without a variant."""
    main = main_variant(variants)
    if main is None:
        return {}
    psnr = details[f"{main}_psnr"]
    return {"psnr": psnr, "ssim": details[f"{main}_ssim"], "fg_psnr": details[f"{main}_fg_psnr"],
            **versus_baseline(psnr, [details[f"{name}_psnr"] for name in BASELINES])}


def main() -> None:
    args = stage_args("sample_4d", __doc__)
    cfg = load_section(Sample4DConfig, "sample_4d", args.params)
    out = Path(args.out)
    windows = {name: variant_window(cfg, variant) for name, variant in cfg.variants.items()}  # refused before any work
    truths, pseudo_truths = held_out_truths(cfg), load_truths(pseudo_test_paths(cfg), cfg)
    if not truths:
        raise UserError(f"sample_4d: no test grids in {cfg.test_grids}; run `dvc repro render` first")
    log.info("%d rendered and %d pseudo-4D test grids (%s)", len(truths), len(pseudo_truths),
             cfg.pseudo_test_grids or "pseudo_test_grids off")
    scores = {name: {a: rendered_scores(baseline(t.rgb), t) for a, t in truths.items()}
              for name, baseline in BASELINES.items()}
    pseudo = {name: {g: pseudo_scores(baseline(t.rgb), t) for g, t in pseudo_truths.items()}
              for name, baseline in BASELINES.items()}
    precision = sampling_precision(cfg)
    log.info("sampling in %s (sample_4d.precision: %s)", precision, cfg.precision)
    torch.manual_seed(cfg.seed)
    with atomic_dir(out / "pseudo") as pseudo_tmp:
        for name, variant in cfg.variants.items():
            replicas = model_replicas(variant_model(cfg, variant, precision), cfg.gpus, precision)
            log.info("%s: %dx%d windows", name, windows[name], windows[name])
            with atomic_dir(out / name) as tmp:
                scores[name] = sample_truths(replicas, truths, cfg, windows[name], name, tmp, rendered_scores)
            if pseudo_truths:
                (pseudo_tmp / name).mkdir()
                pseudo[name] = sample_truths(replicas, pseudo_truths, cfg, windows[name], name, pseudo_tmp / name,
                                             pseudo_scores)
    with atomic_dir(out / "previews") as tmp:
        for name in cfg.variants:
            first = sorted((out / name).glob("*.grid.npz"))[: cfg.preview.max_items]
            for path in first:
                write_grid_previews(load_grid(path), tmp, f"{name}_{path.name.removesuffix('.grid.npz')}", cfg.preview)
    write_json(out / "scores.json", {**scores, "pseudo": pseudo if pseudo_truths else {}})
    details = mean_metrics(scores, ("psnr", "ssim", "fg_psnr", "fg_ssim"))
    if pseudo_truths:
        details.update(mean_metrics(pseudo, ("psnr", "ssim"), prefix="pseudo_"))
    details["pseudo_grids"] = len(pseudo_truths)
    write_metrics(out, headline(details, list(cfg.variants)), details)


if __name__ == "__main__":
    run_stage(main)
