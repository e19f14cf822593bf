"""4D sampling speed at the paper size: one two-stream denoising step of an 8x8 grid.

    python benchmarks/sample_4d_speed.py --architecture soft --compile

Random weights (timing only), bf16 autocast, 24 blocks x 1024 channels (paper preset),
8x8 grid of 72x128 frames, patch 4. Prints one JSON line with ms per step, the step's
model FLOPs and the achieved TFLOP/s next to a bf16 matmul ceiling measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from fourreal.dit import PRESETS, DiT, count_parameters
from fourreal.model4d import Model4D


def step_flops(model: Model4D, views: int, times: int, height: int, width: int) -> float:
    """Forward FLOPs of one two-stream step: every block runs on all rows and all columns."""
    cfg = model.base.cfg
    n = (height // cfg.patch) * (width // cfg.patch)
    cells = views * times
    linear = sum(m.weight.numel() for b in model.base.blocks for m in b.modules() if isinstance(m, torch.nn.Linear))
    per_stream_linear = 2 * cells * n * linear
    attention = cfg.depth * 4 * cfg.dim * (views * (times * n) ** 2 + times * (views * n) ** 2)
    sync = sum(m.weight.numel() for m in model.syncs.modules() if isinstance(m, torch.nn.Linear)) * 2 * cells * n
    return 2 * per_stream_linear + attention + sync


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architecture", default="soft")
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--times", type=int, default=8)
    parser.add_argument("--height", type=int, default=72)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    model = Model4D(DiT(PRESETS[args.preset]), args.architecture).cuda().eval().to(torch.bfloat16)
    net = torch.compile(model) if args.compile else model
    x = torch.randn(1, args.views, args.times, 3, args.height, args.width, device="cuda", dtype=torch.bfloat16)
    cond = x.clone()
    mask = torch.zeros(1, args.views, args.times, device="cuda")
    mask[:, 0], mask[:, :, 0] = 1, 1
    sigma = torch.full((1,), 0.5, device="cuda")
    with torch.no_grad():
        for _ in range(3):
            net(x, sigma, cond, mask)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.steps):
            net(x, sigma, cond, mask)
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / args.steps
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ a
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(10):
        a @ a
    torch.cuda.synchronize()
    ceiling = 2 * 8192**3 * 10 / (time.perf_counter() - t0) / 1e12
    flops = step_flops(model, args.views, args.times, args.height, args.width)
    print(json.dumps({
        "device": torch.cuda.get_device_name(), "architecture": args.architecture, "parameters": count_parameters(model),
        "grid": f"{args.views}x{args.times}", "size": f"{args.height}x{args.width}", "compile": args.compile,
        "ms_per_step": round(seconds * 1000, 1), "step_tflop": round(flops / 1e12, 2),
        "achieved_tflops": round(flops / seconds / 1e12, 1), "matmul_ceiling_tflops": round(ceiling, 1),
        "fraction_of_ceiling": round(flops / seconds / 1e12 / ceiling, 3),
        "seconds_for_50_steps": round(50 * seconds, 2),
    }))


if __name__ == "__main__":
    main()
