import torch

from fourreal.evaluation.metrics import psnr, ssim, ssim_map


def test_psnr_and_ssim_known_cases():
    a = torch.rand(2, 3, 16, 16) * 2 - 1
    assert psnr(a, a) == float("inf") and abs(ssim(a, a) - 1.0) < 1e-5
    assert abs(psnr(torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.2)) - 20.0) < 1e-4
    noisy = (a + 0.3 * torch.randn_like(a)).clamp(-1, 1)
    blurred = (a + 0.05 * torch.randn_like(a)).clamp(-1, 1)
    assert ssim(a, blurred) > ssim(a, noisy) and psnr(a, blurred) > psnr(a, noisy)


def reference_ssim_map(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """SSIM as written in the textbook: five blurs with the full 11x11 Gaussian window."""
    x, y = (a.clamp(-1, 1) + 1) / 2, (b.clamp(-1, 1) + 1) / 2
    coords = torch.arange(11, dtype=torch.float32) - 5
    g = torch.exp(-(coords**2) / (2 * 1.5**2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(3, 1, 11, 11)
    blur = lambda z: torch.nn.functional.conv2d(z, kernel, groups=3)  # noqa: E731
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))


def test_the_separable_ssim_matches_the_full_window_in_value_and_gradient():
    g = torch.Generator().manual_seed(0)
    a = (torch.rand(2, 3, 24, 40, generator=g) * 2 - 1).requires_grad_()
    b = (a.detach() + 0.3 * torch.randn(2, 3, 24, 40, generator=g)).clamp(-1, 1)
    ours, ref = ssim_map(a, b), reference_ssim_map(a, b)
    assert ours.shape == ref.shape == (2, 3, 14, 30)
    torch.testing.assert_close(ours, ref, atol=2e-5, rtol=1e-5)
    (grad,) = torch.autograd.grad(ours.mean(), a)
    (grad_ref,) = torch.autograd.grad(ref.mean(), a)
    torch.testing.assert_close(grad, grad_ref, atol=1e-7, rtol=1e-4)
    assert 0.2 < float(ours.detach().mean()) < 0.9  # a real comparison, not a flat image
