"""4D sampling speed at the paper size: one two-stream denoising step of an 8x8 grid, next to
the plain-PyTorch anchor measured in the same run.

    python benchmarks/sample_4d_speed.py --architecture soft --compile
    python benchmarks/sample_4d_speed.py --architecture soft --compile --attention cudnn --heads 8
    python benchmarks/sample_4d_speed.py --architecture soft --compile --precision fp8

Random weights (timing only), bf16 weights and activations, 24 blocks x 1024 channels (paper
preset), 8x8 grid of 72x128 frames, patch 4. The anchor (:mod:`anchors`) runs the same
number of plain blocks on the same rows and columns (no sync layers, rotary embeddings,
embedding or head), compiled when the model is. Model FLOPs come from :mod:`fourreal.training.flops`;
the bf16 matmul ceiling is measured in the same run. Prints one JSON line.

``--precision fp8`` runs the 4D model's block and sync linear layers in FP8 with per-row
scales (:mod:`fourreal.models.fp8`; compute capability 8.9+), attention and the rest in bf16;
the anchor stays bf16. The record's ``precision`` says which ran; its ``fraction_of_ceiling``
is still against the bf16 matmul ceiling.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import torch

from anchors import ATTENTION_KERNELS, PlainStack, attention_kernel, cuda_time, plain_flops, to_fp8_or_exit
from fourreal.models.dit import PRESETS, DiT, count_parameters
from fourreal.models.model4d import Model4D
from fourreal.training.flops import matmul_ceiling, model4d_forward_flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architecture", default="soft")
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--heads", type=int, default=0, help="attention heads (default: the preset's)")
    parser.add_argument("--attention", default="default", choices=ATTENTION_KERNELS,
                        help="scaled-dot-product attention kernel (default: PyTorch's choice)")
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--times", type=int, default=8)
    parser.add_argument("--height", type=int, default=72)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--precision", choices=["bf16", "fp8"], default="bf16",
                        help="the 4D model's linear layers in bf16 or in FP8 (the anchor stays bf16)")
    args = parser.parse_args()
    cfg = PRESETS[args.preset]
    cfg = dataclasses.replace(cfg, heads=args.heads or cfg.heads)
    v, t, h, w = args.views, args.times, args.height, args.width
    dev, bf16 = torch.device("cuda"), torch.bfloat16

    model = Model4D(DiT(cfg), args.architecture).to(dev).eval().to(bf16)
    parameters = count_parameters(model)  # before FP8 layers turn weights into buffers
    if args.precision == "fp8":
        to_fp8_or_exit(model, dev)
    net = torch.compile(model) if args.compile else model
    x = torch.randn(1, v, t, 3, h, w, device=dev, dtype=bf16)
    mask = torch.zeros(1, v, t, device=dev)
    mask[:, 0], mask[:, :, 0] = 1, 1
    sigma = torch.full((1,), 0.5, device=dev)

    anchor = PlainStack(cfg.dim, cfg.depth, cfg.heads).to(dev).eval().to(bf16)
    anchor_net = torch.compile(anchor) if args.compile else anchor
    n = (h // cfg.patch) * (w // cfg.patch)
    streams = torch.randn(v + t, max(v, t) * n, cfg.dim, device=dev, dtype=bf16)  # rows and columns (v == t)
    c = torch.randn(v + t, cfg.dim, device=dev, dtype=bf16)
    if v != t:
        raise SystemExit("the anchor batches rows and columns together: use --views equal to --times")

    with torch.no_grad(), attention_kernel(args.attention):
        seconds = cuda_time(lambda: net(x, sigma, x, mask), args.steps)
        anchor_seconds = cuda_time(lambda: anchor_net(streams, c), args.steps)
    ceiling = matmul_ceiling(dev)
    flops = model4d_forward_flops(args.architecture, cfg, 1, v, t, h, w)
    anchor_flops = plain_flops(cfg.dim, cfg.depth, v + t, t * n)
    print(json.dumps({
        "device": torch.cuda.get_device_name(), "architecture": args.architecture, "parameters": parameters,
        "heads": cfg.heads, "attention": args.attention, "precision": args.precision, "grid": f"{v}x{t}",
        "size": f"{h}x{w}", "compile": args.compile,
        "ms_per_step": round(seconds * 1000, 1), "step_tflop": round(flops / 1e12, 2),
        "achieved_tflops": round(flops / seconds / 1e12, 1), "matmul_ceiling_tflops": round(ceiling, 1),
        "fraction_of_ceiling": round(flops / seconds / 1e12 / ceiling, 3),
        "seconds_for_50_steps": round(50 * seconds, 2),
        "anchor_ms_per_step": round(anchor_seconds * 1000, 1), "anchor_step_tflop": round(anchor_flops / 1e12, 2),
        "anchor_fraction_of_ceiling": round(anchor_flops / anchor_seconds / 1e12 / ceiling, 3),
        "time_ratio_to_anchor": round(seconds / anchor_seconds, 3),
    }))


if __name__ == "__main__":
    main()
