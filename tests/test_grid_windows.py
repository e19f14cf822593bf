"""Sliding windows of the grid sampler: the level schedule keeps raster order's result,
windows shared out over several replicas give the same grid as one, and grids sampled in a
batch come out as they would alone."""

import threading

import pytest
import torch

from fourreal.sampling.flow_solver import sample
from fourreal.sampling.grid_windows import GridInputError, sample_grid, sample_grids, window_levels, window_starts


def context_velocity(x, s, cond, mask):
    """A velocity that depends on the window's known cells, so any change of order shows."""
    m = mask[..., None, None, None]
    known_mean = (cond * m).sum(dim=(1, 2), keepdim=True) / m.sum(dim=(1, 2), keepdim=True).clamp(min=1)
    return x - known_mean + 0.1 * s.view(-1, 1, 1, 1, 1, 1)


def raster_reference(first_row, first_col, window, steps, seed):
    """The plain raster-order loop: each window sees every cell generated before it."""
    v_len, t_len = first_col.shape[0], first_row.shape[0]
    c, h, w = first_row.shape[1:]
    grid = torch.zeros(v_len, t_len, c, h, w)
    known = torch.zeros(v_len, t_len, dtype=torch.bool)
    grid[0], grid[:, 0], grid[0, 0] = first_row, first_col, first_row[0]
    known[0], known[:, 0] = True, True
    wv, wt = window
    plan = [(v0, t0) for v0 in window_starts(v_len, wv) for t0 in window_starts(t_len, wt)]
    for k, (v0, t0) in enumerate(plan):
        sub = known[v0 : v0 + wv, t0 : t0 + wt]
        if sub.all():
            continue
        cond = grid[v0 : v0 + wv, t0 : t0 + wt].reshape(1, wv * wt, c, h, w)
        mask = sub.reshape(1, wv * wt).float()
        out = sample(lambda x, s: context_velocity(x.view(1, wv, wt, c, h, w), s, cond.view(1, wv, wt, c, h, w),
                                                   mask.view(1, wv, wt)).reshape(1, wv * wt, c, h, w),
                     (1, wv * wt, c, h, w), steps, "euler", cond, mask, seed=seed + k, progress=False)
        grid[v0 : v0 + wv, t0 : t0 + wt] = torch.where(sub[..., None, None, None], grid[v0 : v0 + wv, t0 : t0 + wt],
                                                       out.view(wv, wt, c, h, w))
        known[v0 : v0 + wv, t0 : t0 + wt] = True
    return grid


def inputs(v, t):
    torch.manual_seed(0)
    row, col = torch.rand(t, 3, 4, 6) * 2 - 1, torch.rand(v, 3, 4, 6) * 2 - 1
    col[0] = row[0]
    return row, col


@pytest.mark.parametrize("size", [(9, 7), (8, 8), (4, 11)])
def test_levels_never_overlap_and_follow_raster_dependencies(size):
    window = (4, 4)
    plan = [(a, b) for a in window_starts(size[0], 4) for b in window_starts(size[1], 4)]
    levels = window_levels(plan, window)
    assert sorted(k for level in levels for k in level) == list(range(len(plan)))
    depth = {k: d for d, level in enumerate(levels) for k in level}
    for i, (v0, t0) in enumerate(plan):
        for j, (v1, t1) in enumerate(plan[:i]):
            if abs(v1 - v0) < 4 and abs(t1 - t0) < 4:
                assert depth[j] < depth[i]  # an overlapping earlier window runs first
    if size == (8, 8):  # 3 x 3 windows at half-window strides: 7 levels, two of them with two windows
        assert [len(level) for level in levels] == [1, 1, 2, 1, 2, 1, 1]


@pytest.mark.parametrize("size", [(9, 7), (4, 11)])
def test_level_schedule_equals_the_raster_loop(size):
    row, col = inputs(*size)
    expected = raster_reference(row, col, (4, 4), steps=3, seed=5)
    got = sample_grid(context_velocity, row, col, (4, 4), steps=3, seed=5, progress=False)
    assert torch.equal(got, expected)


def test_replicas_share_the_windows_and_agree_with_one():
    """Two replicas (CPU stand-ins for GPUs) each run some windows, on their own threads;
    the grid is bit-identical to the single-replica one."""
    row, col = inputs(12, 12)
    single = sample_grid(context_velocity, row, col, (4, 4), steps=3, seed=1, progress=False)
    calls = {i: set() for i in range(2)}

    def replica(i):
        def fn(x, s, cond, mask):
            calls[i].add(threading.get_ident())
            assert not torch.is_grad_enabled()  # no autograd graph kept across steps in worker threads
            return context_velocity(x, s, cond, mask)
        return fn, torch.device("cpu")

    split = sample_grid([replica(i) for i in range(2)], row, col, (4, 4), steps=3, seed=1, progress=False)
    assert torch.equal(split, single)
    assert all(calls[i] for i in range(2))  # every replica worked
    assert len(set().union(*calls.values())) >= 2  # on more than one thread


def test_a_batch_of_grids_equals_each_grid_alone():
    """Three grids sampled together (one velocity call per window for all) match the three
    sampled one by one: same noise per window, conditioning per grid."""
    firsts = [inputs(9, 7) for _ in range(3)]
    for i, (row, col) in enumerate(firsts):  # three different grids
        row.add_(0.1 * i).clamp_(-1, 1)
        col.copy_(torch.cat([row[:1], col[1:] - 0.1 * i]).clamp(-1, 1))
    batch_sizes = []

    def counting(x, s, cond, mask):
        batch_sizes.append(x.shape[0])
        return context_velocity(x, s, cond, mask)

    rows, cols = torch.stack([r for r, _ in firsts]), torch.stack([c for _, c in firsts])
    together = sample_grids(counting, rows, cols, (4, 4), steps=3, seed=2, progress=False)
    assert together.shape == (3, 9, 7, 3, 4, 6)
    assert set(batch_sizes) == {3}
    for (row, col), got in zip(firsts, together):
        alone = sample_grid(context_velocity, row, col, (4, 4), steps=3, seed=2, progress=False)
        torch.testing.assert_close(got, alone, rtol=0, atol=1e-6)
    assert not torch.allclose(together[0], together[1])


def test_batched_inputs_must_pair_up():
    row, col = inputs(6, 6)
    with pytest.raises(GridInputError, match=r"\[B, N, 3, H, W\]"):
        sample_grids(context_velocity, row[None].expand(2, -1, -1, -1, -1), col[None], (4, 4), progress=False)
