"""Rendering throughput on this machine's CPU: seconds per image and assets per hour.

    python benchmarks/render_speed.py                       # default and small-profile sizes
    python benchmarks/render_speed.py --sizes 36x64 --assets 8 --workers 1,2 --executor dask

Generates procedural assets, renders each into a V x T grid with the real worker processes
(Blender start-up and asset import included), and prints a Markdown table. With several
worker counts, the first is the anchor of the scale-out columns, measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from fourreal.data_making.assets import AssetsConfig, generate_procedural
from fourreal.data_making.render import RenderConfig, RenderJob, render_assets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="36x64,72x128", help="comma-separated HxW")
    parser.add_argument("--assets", type=int, default=8)
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--times", type=int, default=8)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--workers", default=str(os.cpu_count() or 1), help="comma-separated worker counts")
    parser.add_argument("--executor", default="processes", choices=["processes", "dask"],
                        help="worker processes, or Prefect tasks on a local Dask cluster")
    parser.add_argument("--batch-size", type=int, default=1, help="assets per Prefect task (dask)")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.time()
        assets = generate_procedural(tmp / "glb", AssetsConfig(procedural_count=args.assets))
        gen = time.time() - start
        rows = []
        for size in args.sizes.split(","):
            h, w = map(int, size.split("x"))
            anchor = None
            for workers in counts:
                cfg = RenderConfig(num_views=args.views, num_times=args.times, height=h, width=w, samples=args.samples,
                                   workers=workers, executor=args.executor, batch_size=args.batch_size)
                out = tmp / f"{size}_{workers}"
                jobs = [RenderJob(p.stem, p, out / f"{p.stem}.grid.npz", "train", False) for p in assets]
                start = time.time()
                rendered, _, failed = render_assets(jobs, cfg)
                seconds = time.time() - start
                images = len(rendered) * args.views * args.times
                anchor = anchor or (workers, images / seconds)
                speedup = images / seconds / anchor[1]
                rows.append((size, workers, len(rendered), len(failed), seconds, images / seconds, speedup,
                             speedup / (workers / anchor[0]), 3600 * len(rendered) / seconds))
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{args.views}x{args.times} grids, {args.samples} samples, executor {args.executor}; "
          f"procedural generation {gen / args.assets:.2f} s/asset\n")
    print("| size (HxW) | workers | assets | failed | wall s | images/s | speed-up | efficiency | assets/hour |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size, workers, n, nf, s, rate, speedup, eff, per_hour in rows:
        print(f"| {size} | {workers} | {n} | {nf} | {s:.1f} | {rate:.1f} | {speedup:.2f} | {eff:.0%} | {per_hour:.0f} |")


if __name__ == "__main__":
    main()
