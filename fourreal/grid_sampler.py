"""Sampling a 4D grid from a fixed-view video (its first row) and a freeze-time video (its
first column), with autoregressive sliding windows for grids larger than the model's
native size (paper Sec. 3.3): windows are visited in raster order, each conditioned on
every cell already known (given or generated earlier), which is never changed."""

from __future__ import annotations

import torch
from tqdm import tqdm

from fourreal.samplers import sample


class GridInputError(ValueError):
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


@torch.no_grad()
def sample_grid(velocity_fn, first_row: torch.Tensor, first_col: torch.Tensor, window: tuple[int, int],
                steps: int = 30, method: str = "euler", seed: int = 0, progress: bool = True) -> torch.Tensor:
    """Generate a ``[V, T, 3, H, W]`` grid whose row 0 is ``first_row [T, 3, H, W]`` and column 0
    is ``first_col [V, 3, H, W]`` (values in [-1, 1]).

    ``velocity_fn(x [1, v, t, 3, H, W], sigma [1], cond, mask [1, v, t])`` is the 4D model.
    ``window = (views, times)`` is the largest grid given to the model at once.
    """
    check_inputs(first_row, first_col)
    t_len, v_len = first_row.shape[0], first_col.shape[0]
    c, h, w = first_row.shape[1:]
    device = first_row.device
    grid = torch.zeros(v_len, t_len, c, h, w, device=device)
    known = torch.zeros(v_len, t_len, dtype=torch.bool, device=device)
    grid[0], grid[:, 0] = first_row, first_col
    grid[0, 0] = first_row[0]  # the shared first frame: the fixed-view video's copy
    known[0], known[:, 0] = True, True
    wv, wt = min(window[0], v_len), min(window[1], t_len)
    plan = [(v0, t0) for v0 in window_starts(v_len, wv) for t0 in window_starts(t_len, wt)]
    for k, (v0, t0) in enumerate(tqdm(plan, desc="grid windows", disable=not progress)):
        sub_known = known[v0 : v0 + wv, t0 : t0 + wt]
        if sub_known.all():
            continue
        cond = grid[v0 : v0 + wv, t0 : t0 + wt].reshape(1, wv * wt, c, h, w)
        mask = sub_known.reshape(1, wv * wt).float()

        def velocity(x, s):
            out = velocity_fn(x.view(1, wv, wt, c, h, w), s, cond.view(1, wv, wt, c, h, w), mask.view(1, wv, wt))
            return out.reshape(1, wv * wt, c, h, w)

        out = sample(velocity, (1, wv * wt, c, h, w), steps, method, cond, mask, seed=seed + k, device=device,
                     progress=False).view(wv, wt, c, h, w)
        grid[v0 : v0 + wv, t0 : t0 + wt] = torch.where(sub_known[..., None, None, None], grid[v0 : v0 + wv, t0 : t0 + wt], out)
        known[v0 : v0 + wv, t0 : t0 + wt] = True
    return grid
