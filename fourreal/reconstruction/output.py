"""What a reconstruction turns into: every cell re-rendered, previews (a novel view-and-time
sweep, the canonical cloud turned), the files the ``reconstruct`` stage writes, and reading
them back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fourreal.formats.grid import Grid, load_grid
from fourreal.reconstruction.config import ReconstructConfig
from fourreal.reconstruction.deformation import Deformable
from fourreal.reconstruction.gaussians import render, write_splat_ply


def as_uint8(rgb: torch.Tensor) -> np.ndarray:
    """Renders in [0, 1] (channels last) -> uint8 arrays."""
    return (rgb.clamp(0, 1) * 255).round().byte().cpu().numpy()


@torch.no_grad()
def render_grid(model: Deformable, Ks: np.ndarray, views: int, times: int, height: int, width: int,
                background: np.ndarray, backend: str) -> np.ndarray:
    """Every cell rendered: ``[V, T, H, W, 3]`` uint8."""
    dev = model.offsets.device
    K = torch.as_tensor(Ks, dtype=torch.float32, device=dev)
    bg = torch.as_tensor(background, dtype=torch.float32, device=dev)
    rows = [model.render_cells([(i, j) for j in range(times)], K[[i] * times], height, width, bg, backend)
            for i in range(views)]
    return as_uint8(torch.stack(rows))


@torch.no_grad()
def sweep(model: Deformable, Ks: np.ndarray, background: np.ndarray, backend: str, height: int, width: int,
          per_cell: int = 4) -> np.ndarray:
    """A novel-view-and-time path: views 0 -> V-1 while time runs 0 -> T-1, ``per_cell``
    frames per grid step (between cells, offsets and intrinsics are interpolated).
    Returns ``[F, H, W, 3]`` uint8."""
    dev = model.offsets.device
    v, t = model.offsets.shape[0], model.times
    n = (max(v, t) - 1) * per_cell + 1
    frames = []
    for k in range(n):
        a = k / max(1, n - 1)
        view, time_index = a * (v - 1), a * (t - 1)
        lo, hi = int(np.floor(view)), min(int(np.floor(view)) + 1, v - 1)
        K = (1 - (view - lo)) * Ks[lo] + (view - lo) * Ks[hi]
        rgb = model.render_cells([(view, time_index)], torch.as_tensor(K[None], dtype=torch.float32, device=dev),
                                 height, width, torch.as_tensor(background, dtype=torch.float32, device=dev), backend)
        frames.append(as_uint8(rgb[0]))
    return np.stack(frames)


def write_sweep_mp4(path: str | Path, frames: np.ndarray, fps: float = 8.0) -> None:
    """Write sweep frames ``[F, H, W, 3]`` uint8 as an mp4, atomically (cropped to even sizes for H.264)."""
    from fourreal.formats.preview import write_mp4

    write_mp4(path, frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2], fps=fps)


@torch.no_grad()
def turntable(model: Deformable, K: np.ndarray, background: np.ndarray, backend: str, height: int, width: int,
              angles: tuple[float, ...] = (-60, -30, 0, 30, 60)) -> np.ndarray:
    """The canonical cloud alone (no offsets, time 0) rotated about its centre around the
    camera's vertical axis by ``angles`` (degrees): ``[len(angles), H, W, 3]`` uint8."""
    g = model.gaussians
    p = g.means
    centre = p.mean(0)
    frames = []
    for a in np.deg2rad(angles):
        R = torch.tensor([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]], dtype=p.dtype, device=p.device)
        q = (p - centre) @ R.T + centre
        rgb, _ = render(q[None], g.scales, g.colors, g.opacities, torch.as_tensor(K[None], dtype=torch.float32, device=p.device),
                        height, width, torch.as_tensor(background, dtype=torch.float32, device=p.device), backend)
        frames.append(as_uint8(rgb[0]))
    return np.stack(frames)


def write_reconstruction(result: dict, grid_rgb: np.ndarray, Ks: np.ndarray, directory: Path, previews: Path,
                         name: str, cfg: ReconstructConfig, fps: float = 8.0, mp4: bool = True) -> None:
    """Write one reconstruction (the output of :func:`fourreal.reconstruction.pipeline.reconstruct` for a grid ``[V, T, H, W, 3]``
    with intrinsics ``[V, 3, 3]``): under ``directory`` ``canonical.ply``,
    ``deformation.safetensors``, ``renders.grid.npz``, ``loss.csv``; under ``previews``
    ``<name>.png`` (grid above renders, held-out cells marked red), ``<name>_sweep.png/.mp4``
    (a novel view-and-time path; the mp4 only with ``mp4``) and ``<name>_canonical.png`` (the
    canonical cloud turned)."""
    from safetensors.torch import save_file

    from fourreal.formats.files import write_loss_csv
    from fourreal.formats.grid import save_grid
    from fourreal.formats.preview import contact_sheet, write_png

    model, held = result["model"], result["held"]
    directory.mkdir(parents=True, exist_ok=True)
    write_splat_ply(directory / "canonical.ply", model.gaussians.cloud())
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
              str(directory / "deformation.safetensors"))
    save_grid(directory / "renders.grid.npz", Grid(rgb=result["renders"], intrinsics=Ks, meta={
        "kind": "reconstruction", "source": name, "seed": cfg.seed, "fps": fps}))
    write_loss_csv(directory / "loss.csv", result["losses"])
    marked = result["renders"].copy()
    marked[held, :2] = [255, 0, 0]  # a red bar on held-out cells
    height, width = grid_rgb.shape[2:4]
    write_png(previews / f"{name}.png", contact_sheet(np.concatenate([grid_rgb, marked], axis=0), 48))
    frames = sweep(model, Ks, result["background"], cfg.backend, height, width)
    write_png(previews / f"{name}_sweep.png", contact_sheet(frames[None], 48, labels=None))
    if mp4:
        write_sweep_mp4(previews / f"{name}_sweep.mp4", frames)
    spin = turntable(model, Ks[model.offsets.shape[0] // 2], result["background"], cfg.backend, height, width)
    write_png(previews / f"{name}_canonical.png", contact_sheet(spin[None], 96, labels=None))


def read_reconstruction(directory: str | Path) -> tuple[Deformable, Grid]:
    """The fitted model (on the CPU, in eval mode) and the re-rendered grid of one directory
    written by :func:`write_reconstruction` (``deformation.safetensors``, ``renders.grid.npz``,
    whose shape gives the grid's time count and which holds the intrinsics)."""
    directory = Path(directory)
    where = "pass a directory written by the reconstruct stage (data/reconstruct/grids/<source>/<name>)"
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such reconstruction directory; {where}")
    weights, renders = directory / "deformation.safetensors", directory / "renders.grid.npz"
    for f in (weights, renders):
        if not f.is_file():
            raise FileNotFoundError(f"{f} not found: {where}")
    grid = load_grid(renders)
    return Deformable.load(weights, times=grid.shape[1]), grid
