import numpy as np
import pytest
import torch

from fourreal.evaluation.metrics import psnr
from fourreal.models.dit import CONTEXTS, DiT
from fourreal.sampling.video_sampling import heldout_upsampling, upsample, upsample_grid
from fourreal.training.data import VideoBatch, VideoSet, resize_video
from fourreal.training.losses import low_res_input, upsampler_loss
from fourreal.training.optim import OptimConfig, Phase
from fourreal.training.train_configs import TrainUpsamplerConfig


def config(**kw) -> TrainUpsamplerConfig:
    return TrainUpsamplerConfig(optim=OptimConfig(phases=[Phase(1, 16, 16, 2, 2)]), **kw)


def test_low_res_input_and_psnr():
    flat = torch.full((1, 2, 3, 16, 16), 0.3)
    torch.testing.assert_close(low_res_input(flat, 4), flat)
    a = torch.zeros(1, 1, 3, 4, 4)
    assert psnr(a, a + 0.2) == pytest.approx(20.0, abs=1e-4)  # error 0.1 of a unit range -> 20 dB


def test_shapes_loss_and_extra_conditioning():
    cfg = config()
    torch.manual_seed(0)
    model = DiT(cfg.model_config())
    assert model.in_channels == 10
    batch = VideoBatch(x0=torch.rand(2, 2, 3, 16, 16) * 2 - 1, context=torch.tensor([0, 1]), cond_mask=torch.zeros(2, 2))
    loss = upsampler_loss(model, batch, torch.Generator().manual_seed(0), cfg)
    assert torch.isfinite(loss) and loss.item() > 0
    out = upsample(model, batch.x0[..., ::2, ::2], cfg, batch.context)
    assert out.shape == (2, 2, 3, 16, 16)
    with pytest.raises(ValueError, match="needs extra conditioning"):
        model(batch.x0, torch.rand(2), batch.context)


def test_an_untrained_upsampler_is_bilinear_plus_scaled_noise():
    cfg = config(residual_scale=0.1)
    model = DiT(cfg.model_config())  # zero-initialised output: velocity 0, the residual stays noise
    low = torch.zeros(1, 1, 3, 8, 8)
    out = upsample(model, low, cfg, torch.tensor([0]), seed=1)
    assert 0.05 < out.std().item() < 0.15 and abs(out.mean().item()) < 0.05


def test_scale_must_divide_the_phase_sizes():
    with pytest.raises(Exception, match="18x32 must be divisible by scale = 4"):
        TrainUpsamplerConfig(scale=4, optim=OptimConfig(phases=[Phase(1, 18, 32, 2, 2)]))


def test_grid_upsampling_keeps_layout():
    cfg = config()
    model = DiT(cfg.model_config())
    grid = torch.rand(2, 3, 3, 8, 8) * 2 - 1
    grid[1] = -1.0  # second row black: must stay the second row
    out = upsample_grid(model, grid, cfg, chunk=2)
    assert out.shape == (2, 3, 3, 16, 16)
    # untrained: bilinear plus residual_scale x noise, so the black row stays near -1
    assert out[1].mean() < -0.7 and out[0].mean() > -0.5


def test_grid_pieces_batched_match_one_piece_at_a_time():
    """Each piece (row i, frames j..j+chunk) is the single-piece upsampling from seed
    seed + i * T + j, however many pieces share a call, the shorter last piece included."""
    cfg = config()
    torch.manual_seed(0)
    model = DiT(cfg.model_config()).eval()
    torch.nn.init.normal_(model.out.weight, std=0.5)  # a residual that depends on the input and the noise
    grid = torch.rand(2, 5, 3, 8, 8) * 2 - 1
    one_by_one = torch.zeros(2, 5, 3, 16, 16)
    for i in range(2):
        for j in range(0, 5, 2):
            low = grid[i, j:j + 2][None]
            with torch.no_grad():
                one_by_one[i, j:j + 2] = upsample(model, low, cfg, torch.tensor([CONTEXTS["dynamic"]]), seed=7 + i * 5 + j)[0]
    for batch in (1, 4):
        out = upsample_grid(model, grid, cfg, chunk=2, seed=7, batch=batch)
        torch.testing.assert_close(out, one_by_one, atol=1e-5, rtol=1e-5)
    assert (one_by_one - torch.nn.functional.interpolate(grid.flatten(0, 1), scale_factor=2, mode="bilinear")
            .view_as(one_by_one)).abs().mean() > 1e-3  # the model did change the bilinear frames


def test_upsampler_data_leaves_out_videos_below_the_output_size():
    videos = VideoSet()
    videos.add(np.zeros((4, 16, 16, 3), np.uint8), "dynamic", "big")
    videos.add(np.zeros((4, 8, 8, 3), np.uint8), "dynamic", "small")
    videos.add(np.zeros((4, 8, 32, 3), np.uint8), "freeze_time", "wide_but_short")
    assert videos.drop_smaller(16, 16) == 2
    assert videos.sources == {"dynamic": ["big"], "freeze_time": []}


def test_heldout_upsampling_scores_the_upsampler_and_bilinear_on_the_same_videos():
    """An untrained upsampler is bilinear plus scaled noise: it scores below bilinear, and
    the preview sheet holds input, bilinear, upsampled and truth for each batch's first video."""
    cfg = config(residual_scale=0.1)
    model = DiT(cfg.model_config())
    x0 = torch.linspace(-1, 1, 16).expand(2, 2, 3, 16, 16).contiguous()  # smooth: bilinear is nearly exact
    batches = [VideoBatch(x0=x0, context=torch.tensor([0, 1]), cond_mask=torch.zeros(2, 2))] * 2
    scores = heldout_upsampling(model, batches, cfg)
    lin = resize_video(resize_video(x0, 8, 8), 16, 16)
    assert scores.bilinear == pytest.approx(psnr(lin, x0))
    assert scores.upsampler < scores.bilinear
    assert scores.sheet.shape == (8, 2, 16, 16, 3) and scores.sheet.dtype == np.uint8
