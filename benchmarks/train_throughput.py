"""Training throughput of the video DiT: tokens/s and model FLOPs utilisation, on one GPU or
several under torchrun (DDP or FSDP, as the training loop wraps the model).

    python benchmarks/train_throughput.py --preset paper --height 72 --width 128 --frames 8 --batch 2
    torchrun --nproc_per_node=2 benchmarks/train_throughput.py --preset paper --batch 2 --parallel fsdp

Times forward + backward + AdamW steps of the base model in bf16 autocast (fp32 master
weights) on random videos, counts the model's FLOPs analytically (matmuls and attention,
x3 for the backward pass; :mod:`fourreal.training.flops`), and measures the card's bf16 matmul ceiling
in the same run. On one GPU the plain-PyTorch anchor (:mod:`anchors`: the same number of
textbook blocks on the same tokens, compiled when the model is, no checkpointing) trains in
the same run. ``--batch`` is per GPU. Prints one JSON line (rank 0) with the throughput
summed over GPUs.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.distributed as dist

from anchors import PlainStack, cuda_time, plain_flops
from fourreal.models.dit import PRESETS, DiT, count_parameters
from fourreal.training import parallel
from fourreal.training.flops import dit_forward_flops, matmul_ceiling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="paper", choices=sorted(PRESETS))
    parser.add_argument("--height", type=int, default=72)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--parallel", default="ddp", choices=["ddp", "fsdp"], help="wrapping under torchrun")
    parser.add_argument("--checkpointing", action="store_true", help="activation checkpointing of every block")
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = True
    rank, world, device = parallel.setup()
    model = DiT(PRESETS[args.preset]).to(device)
    model.checkpointing = args.checkpointing
    parameters = count_parameters(model)
    flops = 3 * dit_forward_flops(model.cfg, args.batch, args.frames, args.height, args.width) * world  # fwd + bwd
    net = parallel.wrap(model, args.parallel, world, device, bf16=True)
    net = torch.compile(net) if args.compile else net
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=world == 1 or args.parallel == "ddp")
    x = torch.randn(args.batch, args.frames, 3, args.height, args.width, device=device)
    sigma = torch.rand(args.batch, device=device)
    ctx = torch.zeros(args.batch, dtype=torch.long, device=device)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = net(x, sigma, ctx).float().pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / args.steps
    peak = torch.cuda.max_memory_allocated() / 2**30
    ceiling = matmul_ceiling(device) * world
    tokens = world * args.batch * args.frames * (args.height // model.cfg.patch) * (args.width // model.cfg.patch)
    achieved = flops / seconds / 1e12
    anchor = {}
    if world == 1:
        anchor = anchor_training(model.cfg, args, device, tokens // args.batch)
        anchor["anchor_mfu"] = round(anchor.pop("flops") / anchor["anchor_seconds_per_step"] / 1e12 / ceiling, 3)
        anchor["time_ratio_to_anchor"] = round(seconds / anchor["anchor_seconds_per_step"], 3)
    if world > 1:
        dist.destroy_process_group()
    if rank != 0:
        return
    print(json.dumps({
        "device": torch.cuda.get_device_name(), "gpus": world, "parallel": args.parallel if world > 1 else "none",
        "preset": args.preset, "parameters": parameters,
        "batch_per_gpu": args.batch, "frames": args.frames, "size": f"{args.height}x{args.width}", "compile": args.compile,
        "activation_checkpointing": args.checkpointing,
        "tokens_per_step": tokens, "seconds_per_step": round(seconds, 4), "tokens_per_s": round(tokens / seconds),
        "model_tflop_per_step": round(flops / 1e12, 2), "achieved_tflops": round(achieved, 1),
        "matmul_ceiling_tflops": round(ceiling, 1), "mfu_vs_measured_ceiling": round(achieved / ceiling, 3),
        "peak_memory_gib": round(peak, 2), **anchor,
    }))


def anchor_training(cfg, args, device: torch.device, length: int) -> dict[str, float]:
    """Seconds a training step of the plain anchor takes on the same tokens (bf16 autocast,
    fused AdamW), its forward+backward FLOPs, and its peak memory."""
    stack = PlainStack(cfg.dim, cfg.depth, cfg.heads).to(device)
    net = torch.compile(stack) if args.compile else stack
    opt = torch.optim.AdamW(stack.parameters(), lr=1e-4, fused=True)
    x = torch.randn(args.batch, length, cfg.dim, device=device)
    c = torch.randn(args.batch, cfg.dim, device=device)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = net(x, c).float().pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    torch.cuda.reset_peak_memory_stats()
    seconds = cuda_time(step, args.steps)
    return {"anchor_seconds_per_step": round(seconds, 4), "flops": 3 * plain_flops(cfg.dim, cfg.depth, args.batch, length),
            "anchor_peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}


if __name__ == "__main__":
    main()
