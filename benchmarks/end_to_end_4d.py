"""End-to-end 4D generation time: input videos -> 8x8 grid at 72x128 -> upsampled -> on disk.

    python benchmarks/end_to_end_4d.py --steps 30 --compile [--precision fp8]

Random weights (timing only): the paper-size soft-sync 4D model (24 blocks x 1024 channels)
samples the grid from a given first row and column (bf16, or with ``--precision fp8`` its
block and sync linear layers in FP8; one 8x8 window), the upsampler
(``--upsampler-preset``, x``--scale``) upsamples every cell row by row, and the uint8 grid is
written as a ``.grid.npz``. Prints one JSON line with the time of each part. Run
``--warmup 1`` (default) so compilation is not counted. Anchor, in the same run: the
plain-PyTorch blocks of :mod:`anchors` on the grid's rows and columns for the same number
of steps (compiled when the model is): the floor of the 4D grid's time.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from anchors import PlainStack, cuda_time, to_fp8_or_exit
from fourreal.formats.grid import Grid, save_grid
from fourreal.models.dit import PRESETS, DiT
from fourreal.models.model4d import Model4D
from fourreal.sampling.grid_windows import sample_grid
from fourreal.sampling.video_sampling import UPSAMPLE_PIECES_CUDA, upsample_grid
from fourreal.training.data import to_uint8
from fourreal.training.train_configs import TrainUpsamplerConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architecture", default="soft")
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--upsampler-preset", default="small")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--upsampler-steps", type=int, default=10)
    parser.add_argument("--chunk", type=int, default=2, help="frames per upsampled piece")
    parser.add_argument("--pieces", type=int, default=UPSAMPLE_PIECES_CUDA, help="pieces per upsampler call")
    parser.add_argument("--size", type=int, default=8, help="grid side (views = times)")
    parser.add_argument("--steps", type=int, default=30, help="4D denoising steps")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--precision", choices=["bf16", "fp8"], default="bf16",
                        help="the 4D model's linear layers in bf16 or in FP8 (the upsampler and anchor stay bf16)")
    args = parser.parse_args()
    dev = torch.device("cuda")
    model = Model4D(DiT(PRESETS[args.preset]), args.architecture).to(dev).eval().to(torch.bfloat16)
    if args.precision == "fp8":
        to_fp8_or_exit(model, dev)
    up_cfg = TrainUpsamplerConfig(preset=args.upsampler_preset, scale=args.scale, sample_steps=args.upsampler_steps)
    upsampler = DiT(up_cfg.model_config()).to(dev).eval().to(torch.bfloat16)
    net4d = torch.compile(model) if args.compile else model
    up_net = torch.compile(upsampler) if args.compile else upsampler
    n, h, w = args.size, 72, 128
    row = torch.rand(n, 3, h, w, device=dev) * 2 - 1
    col = torch.rand(n, 3, h, w, device=dev) * 2 - 1
    col[0] = row[0]

    def velocity(x, s, cond, mask):
        return net4d(x.bfloat16(), s, cond=cond.bfloat16(), mask=mask).float()

    def run() -> dict[str, float]:
        times = {}
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        grid = sample_grid(velocity, row, col, (n, n), args.steps, "euler", seed=0, progress=False)
        torch.cuda.synchronize()
        t1 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            big = upsample_grid(up_net, grid, up_cfg, chunk=args.chunk, batch=args.pieces)
        torch.cuda.synchronize()
        t2 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            save_grid(Path(tmp) / "bench.grid.npz", Grid(rgb=to_uint8(big.float().clamp(-1, 1)), meta={"kind": "benchmark"}))
        t3 = time.perf_counter()
        times.update(grid_s=t1 - t0, upsample_s=t2 - t1, write_s=t3 - t2, total_s=t3 - t0)
        times["output"] = list(big.shape)
        return times

    with torch.no_grad():
        for _ in range(args.warmup):
            run()
        times = run()
        peak = torch.cuda.max_memory_allocated() / 2**30
        cfg = PRESETS[args.preset]
        anchor = PlainStack(cfg.dim, cfg.depth, cfg.heads).to(dev).eval().to(torch.bfloat16)
        anchor_net = torch.compile(anchor) if args.compile else anchor
        streams = torch.randn(2 * n, n * (h // cfg.patch) * (w // cfg.patch), cfg.dim, device=dev, dtype=torch.bfloat16)
        c = torch.randn(2 * n, cfg.dim, device=dev, dtype=torch.bfloat16)
        anchor_grid_s = args.steps * cuda_time(lambda: anchor_net(streams, c), 5)
    print(json.dumps({
        "device": torch.cuda.get_device_name(), "architecture": args.architecture, "preset": args.preset,
        "precision": args.precision, "grid": f"{n}x{n}", "steps": args.steps, "compile": args.compile,
        "upsampler": f"{args.upsampler_preset} x{args.scale}, {args.upsampler_steps} steps, {args.chunk} frames a piece, "
                     f"{args.pieces} pieces a call",
        **{k: (round(v, 2) if isinstance(v, float) else v) for k, v in times.items()},
        "peak_memory_gib": round(peak, 2),
        "anchor_grid_s": round(anchor_grid_s, 2), "grid_time_ratio_to_anchor": round(times["grid_s"] / anchor_grid_s, 3),
    }))


if __name__ == "__main__":
    main()
