"""Attention kernels at the 4D model's shapes: every scaled-dot-product backend PyTorch has,
for a few head sizes at the same width.

    python benchmarks/attention_speed.py

bf16 forward of ``F.scaled_dot_product_attention`` on the paper size's row and column
sequences together (16 sequences of 8 frames x 576 tokens = 4,608 tokens, 1,024 channels),
split into 16 heads of 64 or 8 heads of 128. FLOPs: ``4 x L^2 x 1024`` a sequence. The bf16
matmul ceiling is measured in the same run. Prints one JSON line per backend and head size.
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F

from anchors import ATTENTION_KERNELS, attention_kernel, cuda_time
from fourreal.training.flops import matmul_ceiling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences", type=int, default=16)
    parser.add_argument("--length", type=int, default=4608)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--head-dims", default="64,128")
    args = parser.parse_args()
    ceiling = matmul_ceiling("cuda")
    flops = args.sequences * 4.0 * args.length**2 * args.dim
    for head_dim in (int(d) for d in args.head_dims.split(",")):
        heads = args.dim // head_dim
        q, k, v = (torch.randn(args.sequences, heads, args.length, head_dim, device="cuda", dtype=torch.bfloat16)
                   for _ in range(3))
        for name in ATTENTION_KERNELS:
            try:
                with attention_kernel(name):
                    seconds = cuda_time(lambda: F.scaled_dot_product_attention(q, k, v), 10)
            except RuntimeError as err:  # a backend that does not support these shapes
                print(json.dumps({"backend": name, "head_dim": head_dim, "error": str(err).splitlines()[0][:200]}))
                continue
            print(json.dumps({
                "device": torch.cuda.get_device_name(), "backend": name, "heads": heads, "head_dim": head_dim,
                "ms": round(seconds * 1000, 2), "tflops": round(flops / seconds / 1e12, 1),
                "matmul_ceiling_tflops": round(ceiling, 1), "fraction_of_ceiling": round(flops / seconds / 1e12 / ceiling, 3),
            }))


if __name__ == "__main__":
    main()
