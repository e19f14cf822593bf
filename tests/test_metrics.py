import torch

from fourreal.evaluation.metrics import psnr, ssim


def test_psnr_and_ssim_known_cases():
    a = torch.rand(2, 3, 16, 16) * 2 - 1
    assert psnr(a, a) == float("inf") and abs(ssim(a, a) - 1.0) < 1e-5
    assert abs(psnr(torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.2)) - 20.0) < 1e-4
    noisy = (a + 0.3 * torch.randn_like(a)).clamp(-1, 1)
    blurred = (a + 0.05 * torch.randn_like(a)).clamp(-1, 1)
    assert ssim(a, blurred) > ssim(a, noisy) and psnr(a, blurred) > psnr(a, noisy)
