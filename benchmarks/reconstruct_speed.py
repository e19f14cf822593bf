"""Reconstruction on the GPU: gsplat against the CPU compositor, and the time of a full fit.

    python benchmarks/reconstruct_speed.py --grid data/render/grids/test/NAME.grid.npz --fit-steps 2000 [--compile]

1. Renders a small random scene with gsplat and with the pure-torch compositor (the CPU
   path) and reports their largest difference.
2. Reconstructs the grid (tracking + canonical init, floater pruning, deformable fit) with
   gsplat, optionally upsampling the grid by ``--scale`` first (to time the paper's
   288x512), and prints timings and PSNRs as one JSON line. ``--compile`` sets
   ``reconstruct.compile: true`` (the compiled cell positions and loss).
   Then the same reconstruction again in the same process (``warm_fit_s``): the fit with
   its compiled code (``--compile``) and every kernel already loaded, what each further grid
   of a run costs.
3. Anchor, in the same run: plain gsplat fitting as many static Gaussians to the same
   cells (same count, frame size, cells a step, steps; Adam on means, scales, colours and
   opacities, L1 loss) with nothing else: the floor the deformable fit's time compares to.
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np
import torch

from anchors import cuda_time
from fourreal.formats.grid import load_grid
from fourreal.reconstruction.config import ReconstructConfig
from fourreal.reconstruction.gaussians import render
from fourreal.reconstruction.pipeline import reconstruct


def backends_agree() -> float:
    """Largest per-pixel difference between gsplat and the torch compositor on 300 Gaussians."""
    g = torch.Generator().manual_seed(0)
    n = 300
    means = torch.cat([torch.rand(n, 2, generator=g) * 0.8 - 0.4, torch.rand(n, 1, generator=g) * 2 + 1.5], 1)
    scales, colors, opac = torch.rand(n, generator=g) * 0.05 + 0.02, torch.rand(n, 3, generator=g), torch.rand(n, generator=g) * 0.5 + 0.4
    K = torch.tensor([[[60.0, 0, 32], [0, 60.0, 18], [0, 0, 1]]])
    bg = torch.tensor([0.3, 0.5, 0.7])
    ref, _ = render(means[None], scales, colors, opac, K, 36, 64, bg, backend="torch")
    cu = [t.cuda() for t in (means[None], scales, colors, opac, K)]
    out, _ = render(*cu, 36, 64, bg.cuda(), backend="gsplat")
    return float((out.cpu() - ref).abs().max())


def plain_gsplat_fit(rgb: np.ndarray, Ks: np.ndarray, points: int, steps: int, cells_per_step: int) -> float:
    """Seconds of ``steps`` Adam steps of plain gsplat on ``points`` static isotropic Gaussians,
    ``cells_per_step`` cells of ``rgb [V, T, H, W, 3]`` a step."""
    from gsplat import rasterization

    dev = torch.device("cuda")
    v, t, h, w = rgb.shape[:4]
    frames = torch.as_tensor(rgb.reshape(v * t, h, w, 3), device=dev).float() / 255
    cams = torch.as_tensor(np.repeat(Ks, t, axis=0), device=dev, dtype=torch.float32)
    g = torch.Generator(device="cpu").manual_seed(0)
    means = (torch.rand(points, 3, generator=g) - 0.5).mul(torch.tensor([1.0, 0.6, 0.5])).add(torch.tensor([0, 0, 2.0]))
    params = [p.to(dev).requires_grad_() for p in (means, torch.full((points, 1), -4.0), torch.rand(points, 3, generator=g),
                                                   torch.zeros(points))]
    opt = torch.optim.Adam(params, lr=0.01)
    quats = torch.zeros(points, 4, device=dev)
    quats[:, 0] = 1
    rng = np.random.default_rng(0)

    def step():
        idx = torch.as_tensor(rng.choice(v * t, cells_per_step, replace=False), device=dev)
        means, log_scale, colors, logit = params
        out, _, _ = rasterization(means, quats, log_scale.exp().expand(-1, 3), logit.sigmoid(), colors,
                                  torch.eye(4, device=dev).expand(len(idx), 4, 4), cams[idx], w, h, packed=False)
        loss = (out - frames[idx]).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return steps * cuda_time(step, steps, warmup=5)


def load_scene(path: str, scale: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The benchmark's scene: the grid at ``path`` as ``rgb [V, T, H, W, 3]`` uint8, ``depth
    [V, T, H, W]`` and intrinsics ``[V, 3, 3]``, upsampled by ``scale`` (frames bicubic, depth
    nearest, intrinsics scaled) when ``scale > 1``."""
    grid = load_grid(path)
    rgb, depth, Ks = grid.rgb, grid.depth, grid.intrinsics.copy()
    if scale > 1:
        v, t, h, w = rgb.shape[:4]
        size = (w * scale, h * scale)
        rgb = np.stack([[cv2.resize(rgb[i, j], size, interpolation=cv2.INTER_CUBIC) for j in range(t)] for i in range(v)])
        depth = np.stack([[cv2.resize(depth[i, j], size, interpolation=cv2.INTER_NEAREST) for j in range(t)] for i in range(v)])
        Ks[:, :2] *= scale
    return rgb, depth, Ks


def benchmark_config(fit_steps: int, stride: int, **overrides) -> ReconstructConfig:
    """The benchmark's reconstruction settings: ``fit_steps`` fit steps, seeds every ``stride``
    pixels, 200 pruning steps, gsplat; ``overrides`` replace any field."""
    return ReconstructConfig(**{"fit_steps": fit_steps, "prune_steps": 200, "stride": stride, "backend": "gsplat",
                                **overrides})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", required=True)
    parser.add_argument("--scale", type=int, default=1, help="upsample frames, depth and intrinsics by this factor")
    parser.add_argument("--fit-steps", type=int, default=2000)
    parser.add_argument("--stride", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="reconstruct.compile: true")
    args = parser.parse_args()
    diff = backends_agree()
    rgb, depth, Ks = load_scene(args.grid, args.scale)
    cfg = benchmark_config(args.fit_steps, args.stride, compile=args.compile)
    torch.cuda.synchronize()
    start = time.perf_counter()
    result = reconstruct(rgb, depth, Ks, cfg, progress=False)
    torch.cuda.synchronize()
    total = time.perf_counter() - start
    # the same reconstruction again in this process: its fit without compilation or first-call costs
    warm_fit_s = reconstruct(rgb, depth, Ks, cfg, progress=False)["timings"]["fit_s"]
    anchor = plain_gsplat_fit(rgb, Ks, int(result["stats"]["final_points"]), args.fit_steps, cfg.batch_cells)
    fit_s = result["timings"].get("fit_s")
    print(json.dumps({"device": torch.cuda.get_device_name(), "grid": args.grid, "size": list(rgb.shape[:4]), "compile": args.compile,
                      "gsplat_vs_torch_max_abs_diff": float(f"{diff:.3g}"), "fit_steps": args.fit_steps,
                      "total_s": round(total, 2), **result["timings"], **result["scores"], **result["stats"],
                      "anchor_plain_gsplat_fit_s": round(anchor, 2),
                      "fit_time_ratio_to_anchor": round(fit_s / anchor, 2) if fit_s else None,
                      "warm_fit_s": round(warm_fit_s, 2), "warm_fit_time_ratio_to_anchor": round(warm_fit_s / anchor, 2),
                      "precision": "fp32"}))


if __name__ == "__main__":
    main()
