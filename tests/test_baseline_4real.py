"""4Real's pieces: SDS on a toy case with a known denoiser, per-frame deformations, the
whole optimisation on a tiny grid."""

import numpy as np
import pytest
import torch

from fourreal.baseline.sds import sds_loss
from fourreal.reconstruction.config import ReconstructConfig
from fourreal.reconstruction.fit import fit
from fourreal.reconstruction.gaussians import GaussianCloud, render
from fourreal.reconstruction.init import Canonical


class DeltaDenoiser(torch.nn.Module):
    """The exact rectified-flow velocity when the data is one video ``target``:
    ``v(x_s, s) = (x_s - target) / s``, so its denoised estimate is ``target`` itself."""

    def __init__(self, target: torch.Tensor):
        super().__init__()
        self.register_buffer("target", target)

    def forward(self, x, sigma, mode, cond=None, mask=None):
        return (x - self.target) / sigma.view(-1, 1, 1, 1, 1)


def test_sds_gradient_points_to_the_denoised_video_and_lowers_the_denoising_error():
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(1, 4, 3, 8, 8, generator=gen) * 2 - 1
    model = DeltaDenoiser(target)
    video = torch.zeros(1, 4, 3, 8, 8, requires_grad=True)
    sds_loss(model, video, "dynamic", context=1, generator=gen).backward()
    g = video.grad
    assert torch.all(g[:, 0] == 0)  # the conditioning frame gets no gradient
    direction = (video - target)[:, 1:].detach().flatten()
    cos = torch.nn.functional.cosine_similarity(g[:, 1:].flatten(), direction, dim=0)
    assert cos > 0.999  # SDS pushes the video towards the model's denoised estimate
    opt = torch.optim.SGD([video], lr=200.0)
    errors = []
    for _ in range(20):
        errors.append(float((video.detach() - target)[:, 1:].pow(2).mean()))  # the denoiser's error on this video
        opt.zero_grad()
        sds_loss(model, video, "freeze_time", context=1, generator=gen).backward()
        opt.step()
    assert errors[-1] < 0.1 * errors[0] and all(b <= a + 1e-6 for a, b in zip(errors, errors[1:]))
    with pytest.raises(ValueError, match="context"):
        sds_loss(model, video, "dynamic", context=4)


def column_with_a_planted_shift(shift: float = 0.08, views: int = 4):
    """A cloud of Gaussians seen by ``views`` identical cameras, view 2 displaced by
    ``shift`` along x (an inconsistent frame of a freeze-time video): frames ``[V, 1, H, W, 3]``."""
    rng = np.random.default_rng(0)
    n = 150
    means = np.c_[rng.uniform(-0.5, 0.5, (n, 2)), rng.uniform(2.5, 3.0, n)].astype(np.float32)
    cloud = GaussianCloud(means, np.full(n, 0.05, np.float32), rng.uniform(0, 1, (n, 3)).astype(np.float32),
                          np.full(n, 0.9, np.float32))
    planted = np.zeros((views, n, 3), np.float32)
    planted[2, :, 0] = shift
    K = np.array([[40.0, 0, 16], [0, 40.0, 12], [0, 0, 1]], np.float32)
    Ks = np.repeat(K[None], views, 0)
    t = lambda x: torch.as_tensor(x)  # noqa: E731
    rgb, _ = render(t(means[None] + planted), t(cloud.scales), t(cloud.colors), t(cloud.opacities), t(Ks), 24, 32,
                    torch.zeros(3), backend="torch")
    frames = (rgb.clamp(0, 1).numpy() * 255).round().astype(np.uint8)[:, None]
    return frames, cloud, Ks


def test_per_frame_deformation_absorbs_a_planted_shift():
    frames, cloud, Ks = column_with_a_planted_shift()
    canonical = Canonical(cloud, np.zeros((4, len(cloud), 3), np.float32), center=0)
    cfg = ReconstructConfig(fit_steps=150, batch_cells=4, smooth_weight=0.0, backend="torch")
    cells = [(i, 0) for i in range(4)]
    bg = np.zeros(3)
    learned, _, _ = fit(frames, Ks, canonical, bg, cfg, progress=False, cells=cells, learn_offsets=True)
    fixed, _, _ = fit(frames, Ks, canonical, bg, cfg, progress=False, cells=cells)
    dx = learned.offsets.detach()[:, :, 0].mean(1)
    others = dx[[0, 1, 3]]
    assert dx[2] - others.mean() > 0.04  # the shifted view's offset moved by most of the planted 0.08 ...
    assert (others - others.mean()).abs().max() < 0.01  # ... the consistent views' offsets together
    assert not isinstance(fixed.offsets, torch.nn.Parameter) and fixed.offsets.abs().max() == 0


def test_4real_optimisation_runs_end_to_end_on_a_tiny_grid():
    from fourreal.baseline.baseline_4real import Baseline4RealConfig, optimize_4real
    from fourreal.models.dit import DiT, DiTConfig

    frames, _, Ks = column_with_a_planted_shift(shift=0.0)
    column = frames[:, 0]
    row = np.stack([np.roll(column[0], k, axis=1) for k in range(4)])  # a panning "reference video"
    depth = np.where(column.max(-1) > 10, 2.75, 0.0).astype(np.float32)
    torch.manual_seed(0)
    base = DiT(DiTConfig(patch=4, dim=24, depth=1, heads=2))
    cfg = Baseline4RealConfig(canonical_steps=5, temporal_steps=5, sds_frames=3)
    recon = ReconstructConfig(keyframes=1, prune_steps=2, backend="torch")
    out = optimize_4real(row, column, depth, Ks, base, cfg, recon, progress=False)
    assert out["renders"].shape == (4, 4, 24, 32, 3) and out["renders"].dtype == np.uint8
    assert len(out["losses"]) == 10 and all(np.isfinite(out["losses"]))
    assert all(p.grad is None for p in base.parameters())  # the prior stays frozen
    with pytest.raises(ValueError, match="sds_sigma"):
        Baseline4RealConfig(sds_sigma=(0.9, 0.1))
