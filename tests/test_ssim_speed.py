"""benchmarks/ssim_speed.py: every SSIM candidate it times computes the library's SSIM."""

import pytest
import torch

from fourreal.evaluation.metrics import ssim_tensor, ssim_weights, ssim_window

from conftest import load_benchmark


@pytest.mark.parametrize("blur", ["blur_conv", "blur_shift", "blur_matmul"])
@pytest.mark.parametrize("split", [False, True])
def test_candidates_match_the_library(blur, split):
    bench = load_benchmark("ssim_speed")
    gen = torch.Generator().manual_seed(0)
    y = torch.rand(2, 3, 24, 30, generator=gen)
    x = (y + 0.1 * torch.randn(2, 3, 24, 30, generator=gen)).clamp(0, 1).requires_grad_(True)
    g = ssim_weights(ssim_window(*y.shape[-2:]), "cpu")
    fn = bench.ssim_with(getattr(bench, blur), split)
    for candidate in (fn, bench.renders_layout(fn)):
        value = candidate(x, y, g)
        (grad,) = torch.autograd.grad(value, x)
        x_ref = x.detach().clone().requires_grad_(True)
        reference = ssim_tensor(x_ref * 2 - 1, y * 2 - 1)
        (grad_ref,) = torch.autograd.grad(reference, x_ref)
        assert 0.3 < float(reference.detach()) < 0.99
        torch.testing.assert_close(value, reference, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(grad, grad_ref, rtol=1e-4, atol=1e-8)
