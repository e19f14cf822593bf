"""Run under torchrun by tests/test_distributed.py: a tiny DDP or FSDP training on CPU (gloo).

Usage: ddp_train.py OUT_DIR {ddp,fsdp} [STEPS [STOP]]

STEPS: the run's length (default 4); STOP=stop: end at the first checkpoint after resuming (a
time limit that has already passed), so that the next call resumes there, maybe on another
number of processes.
"""

import sys

import torch
import torch.distributed as dist

from fourreal.models.dit import DiT, DiTConfig
from fourreal.training.losses import video_loss
from fourreal.training.optim import OptimConfig, Phase
from fourreal.training.parallel import model_state
from fourreal.training.train import train
from test_train import toy_videos

out, mode = sys.argv[1], sys.argv[2]
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 4
time_limit = 1e-6 if sys.argv[4:] == ["stop"] else 0.0
videos = toy_videos()
cfg = OptimConfig(phases=[Phase(steps, 8, 8, 3, 2)], checkpoint_every=2, ema_decay=0.9, lr=1e-3, parallel=mode,
                  time_limit_s=time_limit)
torch.manual_seed(0)
model = DiT(DiTConfig(patch=4, dim=24, depth=2, heads=2))
summary = train(model, cfg, out, lambda p, r, d: videos.batch(2, 3, 8, 8, r), lambda m, b, g: video_loss(m, b, g, cfg))
flat = torch.cat([v.flatten() for v in model_state(model).values()]) if mode == "ddp" else torch.zeros(1)
gathered = [flat]
if dist.is_initialized():  # one process runs without a process group
    gathered = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, flat)
if summary.rank == 0:
    same = all(torch.equal(gathered[0], g) for g in gathered)
    sharded = any(type(p).__name__ == "DTensor" for p in model.parameters())
    print(f"WORLD={summary.world_size} RESUMED={summary.resumed_from} STEPS={summary.steps} "
          f"REPLICAS_EQUAL={same} SHARDED={sharded} "
          f"EXPORT={type(summary.ema).__name__}", flush=True)
if dist.is_initialized():
    dist.destroy_process_group()
