"""Rendering throughput on this machine's CPU: seconds per image and assets per hour.

    python benchmarks/render_speed.py                       # default and small-profile sizes
    python benchmarks/render_speed.py --sizes 36x64 --assets 8 --workers 2

Generates procedural assets, renders each into a V x T grid with the real worker processes
(Blender start-up and asset import included), and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from fourreal.assets import AssetsConfig, generate_procedural
from fourreal.render import RenderConfig, RenderJob, render_assets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="36x64,72x128", help="comma-separated HxW")
    parser.add_argument("--assets", type=int, default=8)
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--times", type=int, default=8)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.time()
        assets = generate_procedural(tmp / "glb", AssetsConfig(procedural_count=args.assets))
        gen = time.time() - start
        rows = []
        for size in args.sizes.split(","):
            h, w = map(int, size.split("x"))
            cfg = RenderConfig(num_views=args.views, num_times=args.times, height=h, width=w, samples=args.samples,
                               workers=args.workers)
            jobs = [RenderJob(p.stem, p, tmp / size / f"{p.stem}.grid.npz", "train", False) for p in assets]
            start = time.time()
            rendered, _, failed = render_assets(jobs, cfg)
            seconds = time.time() - start
            images = len(rendered) * args.views * args.times
            rows.append((size, len(rendered), len(failed), seconds, seconds / images * args.workers, seconds / images,
                         3600 * len(rendered) / seconds))
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{args.views}x{args.times} grids, {args.samples} samples, {args.workers} workers; "
          f"procedural generation {gen / args.assets:.2f} s/asset\n")
    print("| size (HxW) | assets | failed | wall s | s/image per worker | s/image (wall) | assets/hour |")
    print("|---|---|---|---|---|---|---|")
    for size, n, nf, s, per_worker, per_image, per_hour in rows:
        print(f"| {size} | {n} | {nf} | {s:.1f} | {per_worker:.3f} | {per_image:.3f} | {per_hour:.0f} |")


if __name__ == "__main__":
    main()
