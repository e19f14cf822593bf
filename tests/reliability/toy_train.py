"""A small CPU training run (the library's `train` on toy videos) for the kill -9 tests:
``python tests/reliability/toy_train.py OUT_DIR``; writes ``OUT_DIR/final.safetensors``."""

import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from fourreal.models.dit import DiT, DiTConfig
from fourreal.training.data import VideoSet
from fourreal.training.losses import video_loss
from fourreal.training.optim import OptimConfig, Phase
from fourreal.training.train import train


def main(out: Path) -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    videos = VideoSet()
    base = rng.integers(0, 255, (8, 16, 3), dtype=np.uint8)
    for i in range(6):
        videos.add(np.stack([np.roll(base, k * (i % 3 + 1), axis=1) for k in range(6)]), "dynamic", f"dyn{i}")
        videos.add(np.stack([base] * 6), "freeze_time", f"ft{i}")
    cfg = OptimConfig(phases=[Phase(20, 8, 8, 3, 4), Phase(20, 8, 16, 4, 4)], lr=3e-3, warmup=2, checkpoint_every=4,
                      log_every=1, ema_decay=0.9)
    torch.manual_seed(0)
    model = DiT(DiTConfig(patch=4, dim=24, depth=2, heads=2))

    def make_batch(phase, generator, device):
        return videos.batch(phase.batch_size, phase.frames, phase.height, phase.width, generator)

    summary = train(model, cfg, out, make_batch, lambda m, b, g: video_loss(m, b, g, cfg), run_key="toy")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "final.safetensors"))
    print(f"steps {summary.steps}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
