"""Stage `train_upsampler`: train the diffusion upsampler (x``scale``) on every video source
stored at least at the output size (smaller ones are left out: their truth would be upscaled).

Outputs under ``data/train_upsampler/``: ``model/`` (EMA weights + config.json),
``checkpoints/`` (resume), ``loss.csv``, ``tensorboard/``, ``samples/`` (low-res input,
bilinear, upsampled, truth), ``metrics.json`` (headline: steps, final training loss, held-out
PSNR against bilinear upsampling as the baseline), ``details.json`` (also parameters,
device) and ``run.json`` (untracked: timings, memory).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from fourreal.formats.preview import contact_sheet, write_png
from fourreal.models.dit import DiT, count_parameters
from fourreal.running.config import load_section
from fourreal.running.provenance import run_key
from fourreal.running.stage import run_stage, stage_args, versus_baseline, write_metrics, write_run
from fourreal.sampling.video_sampling import heldout_upsampling
from fourreal.training.losses import upsampler_loss
from fourreal.training.model_files import export_model, upsampler_model_config
from fourreal.training.train import train
from fourreal.training.train_configs import TrainUpsamplerConfig
from fourreal.training.video_data import prepare_video_data

log = logging.getLogger("stages.train_upsampler")


def headline(details: dict) -> dict:
    """The stage's metrics from its details: steps, final training loss, the upsampler's
    held-out PSNR and bilinear upsampling's as the baseline."""
    psnr = details["heldout_psnr_upsampler"]
    return {"steps": details["steps"], "loss": details["final_train_loss"], "psnr": psnr,
            **versus_baseline(psnr, [details["heldout_psnr_bilinear"]])}


def main() -> None:
    args = stage_args("train_upsampler", __doc__)
    cfg = load_section(TrainUpsamplerConfig, "train_upsampler", args.params)
    out = Path(args.out)
    data = prepare_video_data(cfg.sources, cfg.holdout_fraction, cfg.optim, cfg.eval_batches, cfg.eval_batch_size,
                              native_only=True)
    videos, eval_batches = data.train, data.eval_batches

    torch.manual_seed(cfg.optim.seed)
    model = DiT(cfg.model_config())

    def make_batch(phase, rng, device):
        return videos.to(device).batch(phase.batch_size, phase.frames, phase.height, phase.width, rng)

    def loss_fn(net, batch, gen):
        return upsampler_loss(net, batch, gen, cfg)

    def previews(ema, step):
        sheet = heldout_upsampling(ema, eval_batches, cfg).sheet
        write_png(out / "samples" / f"step_{step:07d}.png", contact_sheet(sheet, 72, labels=None))

    key = run_key(__file__, [cfg], cfg.sources)
    summary = train(model, cfg.optim, out, make_batch, loss_fn, previews, key)
    if summary.rank != 0:  # under torchrun, rank 0 alone writes the outputs
        return
    ema = summary.ema or model
    export_model(out / "model", ema, upsampler_model_config(cfg), cfg.optim.max_shard_mb)
    scores = heldout_upsampling(ema, eval_batches, cfg)
    details = {
        "parameters": count_parameters(model),
        "steps": summary.steps,
        "final_train_loss": None if summary.final_loss is None else round(summary.final_loss, 5),
        "heldout_psnr_upsampler": round(scores.upsampler, 3),
        "heldout_psnr_bilinear": round(scores.bilinear, 3),
        "device": summary.device,
    }
    write_metrics(out, headline(details), details)
    write_run(out, {"seconds": round(summary.seconds, 2), "seconds_all_runs": round(summary.seconds_all_runs, 2),
                    "peak_gpu_memory_gib": summary.peak_gpu_memory_gib})


if __name__ == "__main__":
    run_stage(main)
