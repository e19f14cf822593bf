"""The CPU compositor's sparse splatting: each Gaussian covers exactly the pixels of its own
3-sigma box where its alpha reaches 1/255, however the Gaussians are grouped by radius."""

import torch

from fourreal.reconstruction.gaussians import _splat_pixels


def brute_force_pairs(visible, radii, mean2d, conic, opacities, height, width) -> set[tuple[int, int]]:
    """(pixel, Gaussian) pairs from every pixel of the frame against every Gaussian."""
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    pairs = set()
    for g in visible.nonzero()[:, 0].tolist():
        base = torch.floor(mean2d[g])
        d0, d1 = xs + 0.5 - mean2d[g, 0], ys + 0.5 - mean2d[g, 1]
        sigma = 0.5 * (conic[g, 0] * d0**2 + conic[g, 2] * d1**2) + conic[g, 1] * d0 * d1
        alpha = (opacities[g] * torch.exp(-sigma)).clamp(max=0.999)
        inside = ((xs - base[0]).abs() <= radii[g, 0]) & ((ys - base[1]).abs() <= radii[g, 1])
        for p in ((ys * width + xs)[inside & (sigma >= 0) & (alpha >= 1 / 255)]).tolist():
            pairs.add((p, g))
    return pairs


def test_splatting_matches_brute_force_with_mixed_radii():
    gen = torch.Generator().manual_seed(0)
    n, height, width = 40, 20, 28
    mean2d = torch.rand(n, 2, generator=gen) * torch.tensor([width + 6.0, height + 6.0]) - 3
    radii = torch.randint(1, 4, (n, 2), generator=gen)
    radii[:3] = torch.tensor([[9, 9], [17, 15], [30, 30]])  # a few large ones: groups up to 32
    std = radii.float().mean(-1) / 3
    conic = torch.stack([1 / std**2, torch.zeros(n), 1 / std**2], -1)
    opacities = torch.rand(n, generator=gen) * 0.6 + 0.3
    visible = torch.ones(n, dtype=torch.bool)
    visible[5] = False
    pid, alpha, g_idx = _splat_pixels(visible, radii, mean2d, conic, opacities, height, width)
    got = set(zip(pid.tolist(), g_idx.tolist()))
    assert len(got) == len(pid)  # no pair twice
    assert got == brute_force_pairs(visible, radii, mean2d, conic, opacities, height, width)
    assert not (g_idx == 5).any() and float(alpha.min()) >= 1 / 255 and float(alpha.max()) <= 0.999
    assert len({g for _, g in got if g < 3}) == 3  # the large Gaussians are there
