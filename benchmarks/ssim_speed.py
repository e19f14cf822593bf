"""SSIM forward + backward at the deformable fit's size: ways to run its Gaussian blur.

    python benchmarks/ssim_speed.py [--cells 4 --height 288 --width 512 --steps 50]

The fit's loss takes the SSIM of ``--cells`` rendered cells against the truth each step
(:func:`fourreal.reconstruction.loss.reconstruction_loss`); its cost is the separable 11-tap
Gaussian blur of the five local statistics. Each candidate computes the same SSIM (fp32); printed:
seconds per forward + backward (mean over ``--steps`` after warm-up) and the largest gradient
difference from the anchor, one JSON line per candidate.

Anchor, in the same run: the textbook blur, ``conv2d`` of every statistic map (groups = maps)
with the 1D window along H, then along W, as most SSIM code writes it.
"""

from __future__ import annotations

import argparse
import json
from datetime import date

import torch
import torch.nn.functional as F

from anchors import cuda_time
from fourreal.evaluation.metrics import ssim_from_means, ssim_tensor, ssim_weights, ssim_window

def blur_conv(stats: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``[N, K, H, W]`` -> ``[N, K, H - 10, W - 10]``: depthwise conv2d, H then W (the anchor)."""
    k, size = stats.shape[1], len(g)
    out = F.conv2d(stats, g.view(1, 1, size, 1).expand(k, 1, size, 1), groups=k)
    return F.conv2d(out, g.view(1, 1, 1, size).expand(k, 1, 1, size), groups=k)


def blur_shift(stats: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The same blur as a weighted sum of 11 shifted slices per axis."""
    size = len(g)
    h, w = stats.shape[-2] - size + 1, stats.shape[-1] - size + 1
    out = sum(g[i] * stats[..., i:i + h, :] for i in range(size))
    return sum(g[i] * out[..., i:i + w] for i in range(size))


def blur_matmul(stats: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The same blur as two matmuls with banded matrices (fp32, no TF32)."""
    n_h, n_w, size = stats.shape[-2], stats.shape[-1], len(g)
    band_h = torch.zeros(n_h - size + 1, n_h, device=stats.device)
    band_w = torch.zeros(n_w, n_w - size + 1, device=stats.device)
    rows_h, cols_w = torch.arange(n_h - size + 1), torch.arange(n_w - size + 1)
    for i in range(size):
        band_h[rows_h, rows_h + i] = g[i]
        band_w[cols_w + i, cols_w] = g[i]
    return band_h @ stats @ band_w


def ssim_with(blur, split: bool):
    """An SSIM loss using ``blur``; ``split``: the truth's statistics blurred apart, without grad."""
    def fn(x: torch.Tensor, y: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if split:
            mx, mxx, mxy = blur(torch.cat([x, x * x, x * y], 1), g).split(c, 1)
            with torch.no_grad():
                my, myy = blur(torch.cat([y, y * y], 1), g).split(c, 1)
        else:
            mx, my, mxx, myy, mxy = blur(torch.cat([x, y, x * x, y * y, x * y], 1), g).split(c, 1)
        return ssim_from_means(mx, my, mxx, myy, mxy).mean()
    return fn


def renders_layout(fn):
    """``fn`` given its frames as a renderer gives them: ``[N, H, W, 3]`` memory, permuted to
    ``[N, 3, H, W]`` (channels last), as the fit's loss does."""
    def channels_last(frames: torch.Tensor) -> torch.Tensor:
        return frames.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    return lambda x, y, g: fn(channels_last(x), channels_last(y), g)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=4)
    parser.add_argument("--height", type=int, default=288)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    device = torch.device("cuda")
    gen = torch.Generator(device=device).manual_seed(0)
    shape = (args.cells, 3, args.height, args.width)
    y = torch.rand(shape, device=device, generator=gen)
    x0 = (y + 0.1 * torch.randn(shape, device=device, generator=gen)).clamp(0, 1)
    g = ssim_weights(ssim_window(args.height, args.width), device)
    candidates = {
        "conv (anchor)": ssim_with(blur_conv, False),
        "conv, renders' layout": renders_layout(ssim_with(blur_conv, False)),
        "library": lambda x, y, g: ssim_tensor(x * 2 - 1, y * 2 - 1),
        "library, renders' layout": renders_layout(lambda x, y, g: ssim_tensor(x * 2 - 1, y * 2 - 1)),
        "conv, truth apart": ssim_with(blur_conv, True),
        "shift": ssim_with(blur_shift, False),
        "shift, truth apart": ssim_with(blur_shift, True),
        "shift, compiled": torch.compile(ssim_with(blur_shift, True)),
        "conv, compiled": torch.compile(ssim_with(blur_conv, True)),
        "matmul, truth apart": ssim_with(blur_matmul, True),
    }
    reference = None
    for name, fn in candidates.items():
        for benchmark in ([False, True] if name == "conv (anchor)" else [False]):
            torch.backends.cudnn.benchmark = benchmark
            x = x0.clone().requires_grad_(True)

            def step():
                x.grad = None
                fn(x, y, g).backward()
            seconds = cuda_time(step, args.steps, warmup=5)
            grad = x.grad.clone()
            reference = grad if reference is None else reference
            label = name + (", cudnn.benchmark" if benchmark else "")
            print(json.dumps({"date": date.today().isoformat(), "device": torch.cuda.get_device_name(),
                              "shape": list(shape), "precision": "fp32", "variant": label, "ms": round(seconds * 1e3, 3),
                              "max_grad_diff": float((grad - reference).abs().max())}), flush=True)
    torch.backends.cudnn.benchmark = False


if __name__ == "__main__":
    main()
