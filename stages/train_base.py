"""Stage `train_base`: train the base video DiT with rectified flow on every video source.

Outputs under ``data/train_base/``: ``model/`` (EMA weights as safetensors + config.json),
``checkpoints/`` (kept between runs: a killed run resumes), ``loss.csv`` (DVC plot),
``tensorboard/`` (untracked), ``samples/`` (dynamic and freeze-time previews), ``metrics.json``
(headline: steps, final training loss, held-out loss, and the held-out PSNR of continuing each
video's first frame against copying it), ``details.json`` (also the held-out loss of the
untrained and step-0 models, parameters, settings) and ``run.json`` (untracked: speed,
MFU, memory).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from fourreal.formats.checkpoint import list_checkpoints, load_checkpoint
from fourreal.formats.clip import MODES
from fourreal.formats.preview import contact_sheet, write_png
from fourreal.models.dit import DiT, count_parameters
from fourreal.running.config import load_section
from fourreal.running.provenance import run_key
from fourreal.running.stage import run_stage, stage_args, write_metrics, write_run
from fourreal.sampling.video_sampling import heldout_continuation, sample_from_first_frame
from fourreal.training.data import to_uint8
from fourreal.training.flops import dit_forward_flops
from fourreal.training.losses import heldout_loss, video_loss
from fourreal.training.model_files import base_model_config, export_model
from fourreal.training.train import train
from fourreal.training.train_configs import TrainBaseConfig
from fourreal.training.video_data import prepare_video_data

log = logging.getLogger("stages.train_base")


def headline(details: dict) -> dict:
    """The stage's metrics from its details: steps, final training loss, the EMA model's held-out
    loss and its held-out continuation PSNR against copying the first frame."""
    return {"steps": details["steps"], "loss": details["final_train_loss"], "heldout_loss": details["heldout_loss_ema"],
            "psnr": details["heldout_continuation_psnr"], "baseline_psnr": details["heldout_copy_psnr"]}


def main() -> None:
    args = stage_args("train_base", __doc__)
    cfg = load_section(TrainBaseConfig, "train_base", args.params)
    out = Path(args.out)
    data = prepare_video_data(cfg.sources, cfg.holdout_fraction, cfg.optim, cfg.eval_batches, cfg.eval_batch_size,
                              cfg.freeze_time_share)
    videos, held, eval_batches = data.train, data.held, data.eval_batches
    log.info("training videos %s, held out %s", videos.counts(), held.counts())
    last = cfg.optim.phases[-1]
    firsts = torch.stack([b.x0[0] for b in eval_batches[:2]])  # [2, F, 3, H, W]

    torch.manual_seed(cfg.optim.seed)
    model = DiT(cfg.model_config())

    def make_batch(phase, rng, device):
        return videos.to(device).batch(phase.batch_size, phase.frames, phase.height, phase.width, rng, cfg.freeze_time_share)

    def loss_fn(net, batch, gen):
        return video_loss(net, batch, gen, cfg.optim)

    def previews(ema, step):
        rows = [to_uint8(firsts)]
        for mode in MODES:
            video = sample_from_first_frame(ema, firsts[:, 0], last.frames, mode, cfg.sample_steps, cfg.sampler, cfg.guidance)
            rows.append(to_uint8(video))
        sheet = np.stack([r[i] for i in range(len(firsts)) for r in rows])  # per example: truth, dynamic, freeze-time
        write_png(out / "samples" / f"step_{step:07d}.png", contact_sheet(sheet, 72, labels=None))

    key = run_key(__file__, [cfg], cfg.sources)

    def flops(batch):  # forward + backward
        b, f, _, h, w = batch.x0.shape
        return 3 * dit_forward_flops(model.cfg, b, f, h, w)

    summary = train(model, cfg.optim, out, make_batch, loss_fn, previews, key, flops)
    if summary.rank != 0:  # under torchrun, rank 0 alone writes the outputs
        return
    ema = summary.ema or model
    export_model(out / "model", ema, base_model_config(cfg), cfg.optim.max_shard_mb)

    device = next(ema.parameters()).device  # evaluate where training ran
    untrained = DiT(cfg.model_config())
    torch.manual_seed(cfg.optim.seed + 1)
    step0 = DiT(cfg.model_config())
    load_checkpoint(list_checkpoints(out / "checkpoints" / "init")[-1], step0)
    untrained, step0 = untrained.to(device), step0.to(device)
    continuation = heldout_continuation(ema, eval_batches, cfg.sample_steps, cfg.sampler, cfg.guidance)
    done = summary.steps - summary.resumed_from  # by this run (seconds count only it)
    tokens = cfg.optim.tokens_done(summary.steps, model.cfg.patch, start=summary.resumed_from) * summary.world_size
    details = {
        "parameters": count_parameters(model),
        "steps": summary.steps,
        "final_train_loss": None if summary.final_loss is None else round(summary.final_loss, 5),
        "heldout_loss_ema": round(heldout_loss(ema, eval_batches), 5),
        "heldout_loss_step0": round(heldout_loss(step0, eval_batches), 5),
        "heldout_loss_untrained": round(heldout_loss(untrained, eval_batches), 5),
        "heldout_continuation_psnr": round(continuation.model, 3),
        "heldout_copy_psnr": round(continuation.copy, 3),
        "compile": cfg.optim.compile,
        "activation_checkpointing": cfg.optim.activation_checkpointing,
        "device": summary.device,
        "world_size": summary.world_size,
    }
    write_metrics(out, headline(details), details)
    write_run(out, {
        "seconds": round(summary.seconds, 2),
        "seconds_all_runs": round(summary.seconds_all_runs, 2),
        "resumed_from_step": summary.resumed_from,
        "steps_per_s": round(done / max(summary.seconds, 1e-9), 3),
        "tokens_per_s": round(tokens / max(summary.seconds, 1e-9)),
        "model_tflops_per_s": summary.model_tflops_per_s,
        "mfu": "n/a (no GPU)" if summary.mfu is None else summary.mfu,
        "peak_gpu_memory_gib": summary.peak_gpu_memory_gib,
    })


if __name__ == "__main__":
    run_stage(main)
