"""benchmarks/reconstruct_profile.py: the profiled time of a fit step grouped into its parts
by the fit's named ranges (forward ops) and autograd sequence numbers (backward ops)."""

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile, record_function

from fourreal.reconstruction.config import ReconstructConfig
from fourreal.reconstruction.fit import fit
from fourreal.reconstruction.gaussians import GaussianCloud
from fourreal.reconstruction.init import Canonical

from conftest import load_benchmark


def _groups(prof, rp, compiled=False) -> dict[str, float]:
    """Self CPU time (us) per group of ``prof``'s ops."""
    events = [e for e in prof.events() if rp.is_op(e)]
    forward = rp.forward_group_map(events, compiled)
    totals = dict.fromkeys(rp.GROUPS, 0.0)
    for e in events:
        totals[rp.group_of(e, forward, compiled)] += e.self_cpu_time_total
    return totals


def test_backward_ops_take_the_group_of_their_forward_range():
    rp = load_benchmark("reconstruct_profile")
    x, w = torch.randn(64, 64, requires_grad=True), torch.randn(64, 64)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        with record_function("fit.render"):
            a = x @ w
        with record_function("fit.loss"):
            with record_function("fit.ssim"):
                b = torch.sigmoid(a).sum()
            c = b + a.abs().mean()  # the L1 part: outside any part's range
        c.backward()
    events = [e for e in prof.events() if rp.is_op(e)]
    assert not any(e.name.startswith("fit.") for e in events)  # ranges are not ops
    forward = rp.forward_group_map(events, False)
    group = {(e.name, rp._in_backward(e)): rp.group_of(e, forward, False) for e in events}
    assert group[("aten::mm", False)] == group[("aten::mm", True)] == "rasterization"  # x @ w, and its grad
    assert group[("aten::sigmoid", False)] == group[("aten::sigmoid_backward", True)] == "SSIM"
    assert group[("aten::abs", False)] == "other"
    # compiled regions drop the ranges inside them: the whole loss counts as SSIM
    assert rp.range_group("fit.loss", True) == "SSIM" and rp.range_group("fit.positions", True) == "deformation MLP"
    assert rp.range_group("fit.positions", False) == "offsets"
    assert rp.range_group("Optimizer.step#Adam.step", False) == "optimizer"
    assert rp.range_group("aten::mm", False) is None


def test_a_profiled_fit_shows_every_part():
    """Three steps of the library's fit on 12 Gaussians, 2 views x 3 times of 10x12: each
    part of a step (its named ranges in the fit, the loss and the deformation) gets time."""
    rp = load_benchmark("reconstruct_profile")
    rng = np.random.default_rng(0)
    n = 12
    cloud = GaussianCloud(np.c_[rng.uniform(-0.3, 0.3, (n, 2)), rng.uniform(1.5, 2.5, n)].astype(np.float32),
                          rng.uniform(0.05, 0.1, n).astype(np.float32), rng.uniform(0, 1, (n, 3)).astype(np.float32),
                          rng.uniform(0.5, 0.9, n).astype(np.float32))
    canonical = Canonical(cloud, np.zeros((2, n, 3), np.float32), 1)
    rgb = rng.integers(0, 255, (2, 3, 10, 12, 3), dtype=np.uint8)
    Ks = np.tile(np.array([[20.0, 0, 6], [0, 20.0, 5], [0, 0, 1]], np.float32), (2, 1, 1))
    cfg = ReconstructConfig(backend="torch", fit_steps=3, batch_cells=2)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fit(rgb, Ks, canonical, np.full(3, 0.5, np.float32), cfg, progress=False)
    totals = _groups(prof, rp)
    for part in ("rasterization", "deformation MLP", "offsets", "SSIM", "smoothness", "optimizer"):
        assert totals[part] > 0, part

    lines = rp.host_report(list(prof.events()), 3, 3e5, top=4)
    assert lines[0].split() == ["host:", "100000.0", "us", "wall", "per", "step"]
    rows = [line.strip().rsplit(None, 5)[:2] for line in lines[1:lines.index("top 4 ops by self host time")]]
    ranges = {name: float(us) for name, us in rows}
    assert {"fit.render", "fit.loss", "fit.positions", "backward (autograd)"} <= set(ranges)
    assert all(us > 0 for us in ranges.values())
    assert ranges["fit.loss"] >= ranges["fit.ssim"]  # a range's host time includes the ranges inside it
    assert len(lines) == 1 + len(ranges) + 1 + 4
