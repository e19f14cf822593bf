"""The base model's held-out continuation score: its videos from first frames against copying them."""

import numpy as np
import torch

from fourreal.evaluation.metrics import psnr
from fourreal.models.dit import CONTEXTS, DiT, DiTConfig
from fourreal.sampling.video_sampling import heldout_continuation, sample_from_first_frame
from fourreal.training.data import VideoBatch


def moving_batch(seed: int) -> VideoBatch:
    """Two videos ``[2, 4, 3, 8, 16]`` of a random frame sliding right, one per mode."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(3, 8, 16, generator=g) * 2 - 1
    x0 = torch.stack([torch.stack([base.roll(k * (i + 1), dims=-1) for k in range(4)]) for i in range(2)])
    context = torch.tensor([CONTEXTS["dynamic"], CONTEXTS["freeze_time"]])
    return VideoBatch(x0=x0, context=context, cond_mask=torch.zeros(2, 4))


def test_the_continuation_is_scored_after_the_first_frame_against_copying_it():
    torch.manual_seed(0)
    model = DiT(DiTConfig(patch=4, dim=24, depth=1, heads=2)).eval()
    batches = [moving_batch(0), moving_batch(1)]
    scores = heldout_continuation(model, batches, steps=2)

    copies = [psnr(b.x0[:, :1].expand(-1, 3, -1, -1, -1), b.x0[:, 1:]) for b in batches]
    assert scores.copy == np.mean(copies)
    # each video in its own mode, from its first frame, with the batch's index as the seed
    made = [torch.cat([sample_from_first_frame(model, b.x0[i:i + 1, 0], 4, mode, 2, seed=k)
                       for i, mode in enumerate(["dynamic", "freeze_time"])]) for k, b in enumerate(batches)]
    assert scores.model == np.mean([psnr(m[:, 1:], b.x0[:, 1:]) for m, b in zip(made, batches)])
    assert 0 < scores.model < scores.copy  # an untrained model is no better than copying
    assert heldout_continuation(model, batches, steps=2) == scores  # deterministic
