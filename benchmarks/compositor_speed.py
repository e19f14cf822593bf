"""The CPU compositor (``render(..., backend="torch")``, the fit's renderer without a GPU):
seconds of one fit step's rendering, forward and backward, on this machine.

    python benchmarks/compositor_speed.py [--gaussians 4000 --large 20 --cells 4 --reps 3]

A synthetic scene like a fitted cloud: ``--gaussians`` isotropic Gaussians, most of them
about a pixel wide at 72x128 (log-normal scales), ``--large`` of them tens of pixels wide,
seen by ``--cells`` cameras. Prints one JSON line: the median seconds of ``--reps`` forward +
backward passes after one warm-up.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from datetime import date

import torch

from fourreal.reconstruction.gaussians import render


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gaussians", type=int, default=4000)
    parser.add_argument("--large", type=int, default=20, help="Gaussians tens of pixels wide")
    parser.add_argument("--cells", type=int, default=4)
    parser.add_argument("--height", type=int, default=72)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(0)
    n, h, w = args.gaussians, args.height, args.width
    means = torch.cat([torch.rand(n, 2, generator=gen) * 1.2 - 0.6, torch.rand(n, 1, generator=gen) + 1.5], 1)
    scales = torch.exp(torch.randn(n, generator=gen) * 0.5 - 4.5) * (128 / w)
    scales[:args.large] = 0.08
    colors, opacities = torch.rand(n, 3, generator=gen), torch.rand(n, generator=gen) * 0.5 + 0.4
    Ks = torch.tensor([[100.0 * w / 128, 0, w / 2], [0, 100.0 * w / 128, h / 2], [0, 0, 1]]).expand(args.cells, 3, 3)
    means = means[None].expand(args.cells, n, 3).clone().requires_grad_(True)
    scales.requires_grad_(True)
    seconds = []
    for rep in range(args.reps + 1):
        start = time.perf_counter()
        rgb, _ = render(means, scales, colors, opacities, Ks, h, w, torch.zeros(3), backend="torch")
        rgb.sum().backward()
        if rep:
            seconds.append(time.perf_counter() - start)
    print(json.dumps({"date": date.today().isoformat(), "cpu": platform.processor() or platform.machine(),
                      "threads": torch.get_num_threads(), "gaussians": n, "large": args.large, "cells": args.cells,
                      "size": [h, w], "seconds": round(statistics.median(seconds), 3)}))


if __name__ == "__main__":
    main()
