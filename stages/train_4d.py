"""Stages `train_4d` and `finetune_4d`: train one 4D variant, phase 1 or phase 2.

    python -m stages.train_4d --variant soft --phase pseudo   # from the base model, on pseudo-4D grids
    python -m stages.train_4d --variant soft --phase render   # from phase 1, on rendered grids

Outputs under ``data/train_4d/<variant>/`` (phase 1) or ``data/finetune_4d/<variant>/``
(phase 2): ``model/``, ``checkpoints/``, ``loss.csv``, ``tensorboard/``, ``metrics.json``
(headline: steps, final training loss), ``details.json`` (also what trained, the trainable
parameter count and a check that frozen weights did not change) and ``run.json`` (untracked:
speed, MFU, memory).
"""

from __future__ import annotations

from pathlib import Path

import torch

from fourreal.models.model4d import build_model4d
from fourreal.running.config import load_section
from fourreal.running.errors import UserError
from fourreal.running.layout import PSEUDO_GRIDS, RENDER_TRAIN, model_4d, variant_dir
from fourreal.running.provenance import run_key
from fourreal.running.stage import run_stage, setup_logging, stage_parser, write_metrics, write_run
from fourreal.training.data import GridSet
from fourreal.training.flops import model4d_forward_flops
from fourreal.training.losses import grid_loss
from fourreal.training.model_files import export_model, load_model, load_model4d, model4d_config
from fourreal.training.train import train
from fourreal.training.train_configs import Train4DConfig

SOURCES = {"pseudo": [PSEUDO_GRIDS], "render": [RENDER_TRAIN]}


def headline(details: dict) -> dict:
    """The stage's metrics from its details: steps and final training loss."""
    return {"steps": details["steps"], "loss": details["final_train_loss"]}


def main() -> None:
    parser = stage_parser("train_4d", __doc__)
    parser.add_argument("--variant", required=True, help="a variant of train_4d.variants in the params, e.g. soft")
    parser.add_argument("--phase", choices=["pseudo", "render"], required=True, help="pseudo: phase 1 on pseudo-4D "
                        "grids (train_4d); render: phase 2 on rendered grids (finetune_4d)")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    args = parser.parse_args()
    setup_logging()
    cfg = load_section(Train4DConfig, "train_4d", args.params)
    if args.variant not in cfg.variants:
        raise UserError(f"train_4d.variants has no {args.variant!r}; known: {sorted(cfg.variants)}")
    variant = cfg.variants[args.variant]
    optim = cfg.pseudo if args.phase == "pseudo" else cfg.render
    out = Path(variant_dir(args.phase, args.variant))
    start = cfg.base_model if args.phase == "pseudo" else model_4d(args.variant, "pseudo")
    if args.phase == "pseudo":
        model = build_model4d(load_model(start), variant.architecture, variant.seq_attention)
    else:
        model = load_model4d(start)
    trainable = variant.pseudo_trainable if args.phase == "pseudo" else variant.render_trainable
    params = model.set_trainable(trainable)
    frozen_before = {k: v.clone() for k, v in model.named_parameters() if not v.requires_grad}
    grids = GridSet()
    for src in SOURCES[args.phase]:
        if not grids.add_grids(src):
            raise UserError(f"train_4d: no grids in {src}; run the stage that makes them first")

    def make_batch(phase, rng, device):
        return grids.to(device).batch(phase.batch_size, phase.frames, phase.frames, phase.height, phase.width, rng, cfg.extra_known)

    def loss_fn(net, batch, gen):
        return grid_loss(net, batch, gen, optim)

    def flops(batch):  # forward + backward (no weight gradients of frozen blocks: 2x forward)
        b, v, t, _, h, w = batch.x0.shape
        return (3 if trainable == "all" else 2) * model4d_forward_flops(model.architecture, model.base.cfg, b, v, t, h, w)

    key = run_key(__file__, [cfg, args.variant, args.phase], [start, *SOURCES[args.phase]])  # configs, weights, data, code
    summary = train(model, optim, out, make_batch, loss_fn, None, key, flops)
    if summary.rank != 0:  # under torchrun, rank 0 alone writes the outputs
        return
    final = summary.ema or model
    export_model(out / "model", final, model4d_config(model, optim), optim.max_shard_mb)
    unchanged = all(torch.equal(frozen_before[k], v.detach().to(frozen_before[k].device))
                    for k, v in model.named_parameters() if k in frozen_before)
    details = {
        "trainable": trainable,
        "trainable_parameters": sum(p.numel() for p in params),
        "frozen_parameters_unchanged": unchanged,
        "steps": summary.steps,
        "final_train_loss": None if summary.final_loss is None else round(summary.final_loss, 5),
        "device": summary.device,
    }
    write_metrics(out, headline(details), details)
    tokens = optim.tokens_done(summary.steps, model.base.cfg.patch, grid=True,  # by this run, all ranks
                               start=summary.resumed_from) * summary.world_size
    write_run(out, {
        "seconds": round(summary.seconds, 2),
        "seconds_all_runs": round(summary.seconds_all_runs, 2),
        "resumed_from_step": summary.resumed_from,
        "tokens_per_s": round(tokens / max(summary.seconds, 1e-9)),
        "model_tflops_per_s": summary.model_tflops_per_s,
        "mfu": "n/a (no GPU)" if summary.mfu is None else summary.mfu,
        "peak_gpu_memory_gib": summary.peak_gpu_memory_gib,
    })


if __name__ == "__main__":
    run_stage(main)
