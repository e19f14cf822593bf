"""4D sampling of a large grid with its windows shared out between GPUs, against the same
grid on one GPU (the anchor, in the same run).

    python benchmarks/sample_4d_split.py --size 24 --window 8 --steps 4

Random weights (timing only), the paper-size soft-sync model in bf16, a ``size x size`` grid
of 72x128 frames sampled with ``window x window`` sliding windows. The windows of a level of
:func:`fourreal.sampling.grid_windows.window_levels` never overlap; each GPU takes a share of every
level. The ideal speedup is windows / sum over levels of ceil(level size / GPUs). Prints one
JSON line, with the largest difference between the one-GPU and the shared grid.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

from fourreal.models.dit import PRESETS, DiT
from fourreal.models.model4d import Model4D
from fourreal.sampling.grid_windows import sample_grid, window_levels, window_starts
from fourreal.sampling.sample_4d import model_replicas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--architecture", default="soft")
    parser.add_argument("--size", type=int, default=24, help="grid side (views = times)")
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--gpus", type=int, default=0, help="GPUs to share out between (0: all visible)")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = Model4D(DiT(PRESETS[args.preset]), args.architecture).cuda().eval().to(torch.bfloat16)
    n, h, w = args.size, 72, 128
    row = torch.rand(n, 3, h, w, device="cuda") * 2 - 1
    col = torch.rand(n, 3, h, w, device="cuda") * 2 - 1
    col[0] = row[0]
    one = model_replicas(model, 1, bf16=True)
    many = model_replicas(model, args.gpus, bf16=True)

    def timed(replicas):
        sample_grid(replicas, row[: args.window], col[: args.window], (args.window, args.window), 1, progress=False)  # warm-up
        for _, device in replicas:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        grid = sample_grid(replicas, row, col, (args.window, args.window), args.steps, progress=False)
        for _, device in replicas:
            torch.cuda.synchronize(device)
        return grid, time.perf_counter() - start

    grid_one, seconds_one = timed(one)
    grid_many, seconds_many = timed(many)
    plan = [(a, b) for a in window_starts(n, args.window) for b in window_starts(n, args.window)]
    levels = window_levels(plan, (args.window, args.window))
    ideal = len(plan) / sum(math.ceil(len(level) / len(many)) for level in levels)
    print(json.dumps({
        "device": torch.cuda.get_device_name(), "gpus": len(many), "grid": f"{n}x{n}", "window": args.window,
        "windows": len(plan), "levels": len(levels), "steps": args.steps, "seconds_one_gpu": round(seconds_one, 2),
        "seconds_shared": round(seconds_many, 2), "speedup": round(seconds_one / seconds_many, 3),
        "ideal_speedup": round(ideal, 3), "efficiency_vs_ideal": round(seconds_one / seconds_many / ideal, 3),
        "max_abs_difference": float((grid_one - grid_many).abs().max()),
    }))


if __name__ == "__main__":
    main()
