"""Sampling a 4D grid from a fixed-view video (its first row) and a freeze-time video (its
first column), with autoregressive sliding windows for grids larger than the model's
native size (paper Sec. 3.3): windows are visited in raster order, each conditioned on
every cell already known (given or generated earlier), which is never changed. Windows
that do not overlap are independent: with several model replicas (GPUs) they run side by
side, with the same result."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import torch
from tqdm import tqdm

from fourreal.sampling.flow_solver import initial_noise, sample
from fourreal.running.errors import UserError


class GridInputError(UserError, ValueError):
    """The fixed-view and freeze-time inputs do not fit together."""


def check_inputs(first_row: torch.Tensor, first_col: torch.Tensor, tolerance: float = 0.1) -> None:
    """Both inputs must be finite ``[N, 3, H, W]`` videos of one size sharing their first frame."""
    if first_row.dim() != 4 or first_col.dim() != 4 or first_row.shape[1] != 3 or first_col.shape[1] != 3:
        raise GridInputError(f"inputs must be [N, 3, H, W] videos, got {tuple(first_row.shape)} and {tuple(first_col.shape)}")
    if not (torch.isfinite(first_row).all() and torch.isfinite(first_col).all()):
        raise GridInputError("the input videos contain NaN or inf values; check the decoder or the upstream stage")
    if first_row.shape[-2:] != first_col.shape[-2:]:
        raise GridInputError(f"frame sizes differ: fixed-view {tuple(first_row.shape[-2:])}, freeze-time "
                             f"{tuple(first_col.shape[-2:])}; resize one of them")
    diff = (first_row[0] - first_col[0]).abs().mean().item()
    if diff > tolerance:
        raise GridInputError(f"the two videos do not share their first frame (mean difference {diff:.3f} > {tolerance}); "
                             "the freeze-time video must start from the fixed-view video's first frame")


def window_starts(size: int, window: int) -> list[int]:
    """Starts of windows of ``window`` covering ``0..size-1`` with half-window strides."""
    if size <= window:
        return [0]
    stride = max(1, window // 2)
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return starts


def window_levels(plan: list[tuple[int, int]], window: tuple[int, int]) -> list[list[int]]:
    """Indices of ``plan`` (window corners ``(v0, t0)`` in raster order) grouped into levels
    that can run at the same time: a window comes one level after the latest earlier window
    it overlaps, so windows of a level never overlap and each sees exactly the cells it
    would see in the raster order."""
    wv, wt = window
    depth: list[int] = []
    for k, (v0, t0) in enumerate(plan):
        earlier = [depth[j] for j, (v1, t1) in enumerate(plan[:k]) if abs(v1 - v0) < wv and abs(t1 - t0) < wt]
        depth.append(1 + max(earlier, default=-1))
    return [[k for k, d in enumerate(depth) if d == level] for level in range(max(depth, default=-1) + 1)]


# The 4D model on one grid window: velocity(x [B, v, t, 3, H, W], sigma [B], cond [B, v, t, 3, H, W],
# mask [B, v, t]) -> [B, v, t, 3, H, W], ``mask`` 1 where ``cond`` holds a known cell.
MaskedGridVelocity = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
# One model replica: its velocity and the device it runs on.
Replica = tuple[MaskedGridVelocity, torch.device]


@torch.no_grad()
def sample_grid(velocity_fn: MaskedGridVelocity | Sequence[Replica], first_row: torch.Tensor,
                first_col: torch.Tensor, window: tuple[int, int], steps: int = 30, method: str = "euler", seed: int = 0,
                progress: bool = True, sigma_max: float = 1.0) -> torch.Tensor:
    """Generate a ``[V, T, 3, H, W]`` grid whose row 0 is ``first_row [T, 3, H, W]`` and column 0
    is ``first_col [V, 3, H, W]`` (values in [-1, 1]): :func:`sample_grids` for one grid."""
    return sample_grids(velocity_fn, first_row[None], first_col[None], window, steps, method, seed, progress,
                        sigma_max)[0]


@torch.no_grad()
def sample_grids(velocity_fn: MaskedGridVelocity | Sequence[Replica], first_rows: torch.Tensor,
                 first_cols: torch.Tensor, window: tuple[int, int], steps: int = 30, method: str = "euler",
                 seed: int = 0, progress: bool = True, sigma_max: float = 1.0) -> torch.Tensor:
    """Generate ``B`` grids ``[B, V, T, 3, H, W]`` at once, grid ``b`` with row 0
    ``first_rows[b] [T, 3, H, W]`` and column 0 ``first_cols[b] [V, 3, H, W]`` (values in [-1, 1]).

    ``velocity_fn(x [B, v, t, 3, H, W], sigma [B], cond, mask [B, v, t])`` is the 4D model, or a
    list of ``(velocity_fn, device)`` replicas (one per GPU): the windows of each level of
    :func:`window_levels` are then shared out between them, each on its own thread, with the
    same result as one replica (every window keeps its seed and its conditioning).
    ``window = (views, times)`` is the largest grid given to the model at once. The grids of
    a batch go through the model together, window by window; each starts every window from
    the same noise as it would alone (drawn from ``seed`` + the window's index), so a grid
    does not depend on the others in its batch. ``sigma_max``: the highest flow time the
    model is asked at (:func:`fourreal.sampling.flow_solver.sample`).
    """
    if first_rows.dim() != 5 or first_cols.dim() != 5 or first_rows.shape[0] != first_cols.shape[0]:
        raise GridInputError(f"batched inputs must be [B, N, 3, H, W] videos with one B, got {tuple(first_rows.shape)} "
                             f"and {tuple(first_cols.shape)}")
    for row, col in zip(first_rows, first_cols):
        check_inputs(row, col)
    replicas = [(velocity_fn, first_rows.device)] if callable(velocity_fn) else list(velocity_fn)
    b, t_len, v_len = first_rows.shape[0], first_rows.shape[1], first_cols.shape[1]
    c, h, w = first_rows.shape[2:]
    grid = torch.zeros(b, v_len, t_len, c, h, w, device=first_rows.device)
    known = torch.zeros(v_len, t_len, dtype=torch.bool, device=first_rows.device)
    grid[:, 0], grid[:, :, 0] = first_rows, first_cols
    grid[:, 0, 0] = first_rows[:, 0]  # the shared first frame: the fixed-view video's copy
    known[0], known[:, 0] = True, True
    wv, wt = min(window[0], v_len), min(window[1], t_len)
    plan = [(v0, t0) for v0 in window_starts(v_len, wv) for t0 in window_starts(t_len, wt)]

    @torch.no_grad()  # grad mode is per thread: worker threads need it set again
    def run_window(k: int, replica: Replica) -> torch.Tensor:
        """Window ``k`` of the plan generated by one replica: ``[B, wv, wt, 3, H, W]`` on the grid's device."""
        fn, device = replica
        v0, t0 = plan[k]
        cond = grid[:, v0 : v0 + wv, t0 : t0 + wt].reshape(b, wv * wt, c, h, w).to(device)
        mask = known[v0 : v0 + wv, t0 : t0 + wt].reshape(1, wv * wt).float().expand(b, -1).to(device)

        def velocity(x, s):
            out = fn(x.view(b, wv, wt, c, h, w), s, cond.view(b, wv, wt, c, h, w), mask.view(b, wv, wt))
            return out.reshape(b, wv * wt, c, h, w)

        out = sample(velocity, (b, wv * wt, c, h, w), steps, method, cond, mask, device=device, progress=False,
                     noise=initial_noise((1, wv * wt, c, h, w), seed + k), sigma_max=sigma_max)
        return out.view(b, wv, wt, c, h, w).to(grid.device)

    def run_share(ks: list[int], replica: Replica) -> list[tuple[int, torch.Tensor]]:
        return [(k, run_window(k, replica)) for k in ks]

    pool = ThreadPoolExecutor(max_workers=len(replicas)) if len(replicas) > 1 else None
    bar = tqdm(total=len(plan), desc="grid windows", disable=not progress)
    try:
        for level in window_levels(plan, (wv, wt)):
            todo = [k for k in level if not known[plan[k][0] : plan[k][0] + wv, plan[k][1] : plan[k][1] + wt].all()]
            if pool is None:
                done = run_share(todo, replicas[0])
            else:  # every replica takes its share of the level on its own thread
                jobs = [pool.submit(run_share, todo[i :: len(replicas)], r) for i, r in enumerate(replicas)]
                done = [item for job in jobs for item in job.result()]
            for k, out in done:
                v0, t0 = plan[k]
                region = (slice(None), slice(v0, v0 + wv), slice(t0, t0 + wt))
                grid[region] = torch.where(known[region[1:]][..., None, None, None], grid[region], out)
                known[region[1:]] = True
            bar.update(len(level))
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown()
    return grid
