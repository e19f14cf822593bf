"""Run under torchrun by tests/test_distributed.py: a tiny DDP training on CPU (gloo)."""

import sys

import torch
import torch.distributed as dist

from fourreal.dit import DiT, DiTConfig
from fourreal.train import OptimConfig, Phase, train
from fourreal.video_model import video_loss
from test_train import toy_videos

out = sys.argv[1]
videos = toy_videos()
cfg = OptimConfig(phases=[Phase(4, 8, 8, 3, 2)], checkpoint_every=2, ema_decay=0.0, lr=1e-3)
torch.manual_seed(0)
model = DiT(DiTConfig(patch=4, dim=24, depth=1, heads=2))
summary = train(model, cfg, out, lambda p, r: videos.batch(2, 3, 8, 8, r), lambda m, b, g: video_loss(m, b, g, cfg))
flat = torch.cat([p.detach().flatten() for p in model.parameters()])
gathered = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
dist.all_gather(gathered, flat)
if summary["rank"] == 0:
    same = all(torch.equal(gathered[0], g) for g in gathered)
    print(f"WORLD={summary['world_size']} STEPS={summary['steps']} REPLICAS_EQUAL={same}", flush=True)
dist.destroy_process_group()
