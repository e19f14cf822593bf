"""Reconstruction of a 4D grid as deformable isotropic 3D Gaussians (supplementary Sec. 6).

1. Canonical initialization by dense tracking over the freeze-time video (column 0):
   pixels of a few keyframes are tracked to every view; with each view's depth a track gives
   the point's 3D position in that view's own camera coordinates. The centre view's
   coordinates are the canonical space; a point's position in view ``i`` minus its canonical
   position is its view-dependent offset ``Δp_i^v``. Views where a track is lost (or strays
   from the view's rigid motion) use that rigid motion, fitted on the good tracks.
2. Floaters: each point's opacity is optimised with a rendering loss against the column's
   frames and transparent points are pruned.
3. Deformable fit: colors, scales, opacities, positions and the temporal MLP ``Δp^t`` are
   fitted to every grid cell with ``p + Δp_i^v + Δp^t(p, t_j)`` rendered by an identity
   camera with view ``i``'s intrinsics (Eq. 11); L1 + SSIM loss, a smoothness penalty on
   ``Δp^t`` over neighbouring times; some cells are held out to measure generalisation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch
from tqdm import tqdm

from fourreal.config import require
from fourreal.deformation import TimeDeformation
from fourreal.gaussians import GaussianCloud, Gaussians, remove_outliers, render, voxel_first
from fourreal.geometry import fit_rigid, lookup, pixel_grid, unproject
from fourreal.metrics import psnr, ssim_tensor
from fourreal.tracking import track


@dataclass
class ReconstructConfig:
    """Parameters of the ``reconstruct`` stage.

    Attributes:
        sources: directories of ``.grid.npz`` files with intrinsics (held-out renders,
            generated grids of ``sample_4d``).
        max_grids: reconstruct at most this many of each source (sorted by name; 0 = all).
        depth: ``grid`` (the grid's own depth, as renders have), ``model`` (``depth_model``)
            or ``auto`` (the grid's depth when it has one, else the model).
        depth_model: ``train_depth``'s model directory, or a pretrained TorchScript file.
        keyframes: views of the freeze-time column whose pixels seed points.
        stride: pixel stride of the seeds in a keyframe.
        fb_threshold: forward-backward flow consistency in pixels.
        rigid_outlier: a tracked position farther than this many times the median residual
            from the view's rigid motion counts as lost.
        prune_steps, prune_threshold, prune_lr: floater removal by opacity optimisation.
        fit_steps, lr, batch_cells: the deformable fit (Adam; cells per step); positions
            move at ``lr / 100`` (scaled by the cloud's extent), appearance at ``2 lr``.
        deform_lr: learning rate of the temporal MLP.
        ssim_weight, smooth_weight: loss weights.
        holdout_every: every n-th generated cell (not in the first row or column) is held out.
        backend: rasterizer (``auto``: gsplat on CUDA, the torch compositor on CPU).
    """

    sources: list[str] = field(default_factory=lambda: ["data/render/grids/test"])
    max_grids: int = 2
    depth: Literal["auto", "grid", "model"] = "auto"
    depth_model: str = "data/train_depth/model"
    keyframes: int = 3
    stride: int = 2
    fb_threshold: float = 1.0
    rigid_outlier: float = 4.0
    prune_steps: int = 60
    prune_threshold: float = 0.2
    prune_lr: float = 0.1
    fit_steps: int = 200
    lr: float = 0.01
    deform_lr: float = 0.01
    batch_cells: int = 4
    ssim_weight: float = 0.2
    smooth_weight: float = 0.1
    holdout_every: int = 5
    backend: Literal["auto", "gsplat", "torch"] = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        require(self.keyframes >= 1, "keyframes", "must be >= 1")
        require(self.stride >= 1, "stride", "must be >= 1")
        require(self.fit_steps >= 1, "fit_steps", "must be >= 1")
        require(self.batch_cells >= 1, "batch_cells", "must be >= 1")
        require(self.holdout_every >= 2, "holdout_every", "must be >= 2")


@dataclass
class Canonical:
    """The canonical cloud (centre view's camera coordinates) and its per-view offsets."""

    cloud: GaussianCloud
    offsets: np.ndarray  # [V, N, 3]
    center: int
    stats: dict[str, float] = field(default_factory=dict)


def background_color(frames: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Median color ``[3]`` in [0, 1] of pixels with no depth (``frames [..., H, W, 3]``)."""
    bg = frames[depth <= 0]
    if len(bg) == 0:
        bg = np.concatenate([frames[..., 0, :, :].reshape(-1, 3), frames[..., -1, :, :].reshape(-1, 3)])
    return np.median(bg.reshape(-1, 3), axis=0) / 255.0


def canonical_init(frames: np.ndarray, depth: np.ndarray, Ks: np.ndarray, cfg: ReconstructConfig) -> Canonical:
    """Canonical points and view offsets from a freeze-time video.

    Args:
        frames: ``[V, H, W, 3]`` uint8 (one column of the grid); depth: ``[V, H, W]`` (0 = none);
        Ks: ``[V, 3, 3]``.
    """
    v, h, w = frames.shape[:3]
    c = v // 2
    keys = sorted({c, *np.linspace(0, v - 1, cfg.keyframes).round().astype(int).tolist()})
    flows: dict = {}
    canon, per_view, ok_views, colors, scales = [], [], [], [], []
    for k in keys:
        uv = pixel_grid(h, w, cfg.stride)
        uv = uv[lookup(depth[k], uv) > 0]
        pos, valid = track(frames, k, uv, cfg.fb_threshold, flows)
        z = np.stack([lookup(depth[i], pos[i]) for i in range(v)])  # [V, N]
        valid &= z > 0
        keep = valid[c]
        xyz = np.stack([unproject(pos[i], z[i], Ks[i]) for i in range(v)])  # [V, N, 3]
        canon.append(xyz[c, keep])
        per_view.append(xyz[:, keep])
        ok_views.append(valid[:, keep])
        colors.append(lookup(frames[k], uv[keep]) / 255.0)
        scales.append(z[k, keep] / Ks[k, 0, 0] * cfg.stride * 0.5)
    p, xyz, ok = np.concatenate(canon), np.concatenate(per_view, 1), np.concatenate(ok_views, 1)
    col, sc = np.concatenate(colors), np.concatenate(scales)
    seeds = len(p)
    if seeds < 8:
        raise ValueError(f"only {seeds} points could be tracked to the centre view; the column's views may not overlap "
                         "(lower reconstruct.fb_threshold strictness or check the grid)")
    first = voxel_first(p, float(np.median(sc)) * 1.5)
    p, xyz, ok, col, sc = p[first], xyz[:, first], ok[:, first], col[first], sc[first]
    inlier = remove_outliers(p)
    p, xyz, ok, col, sc = p[inlier], xyz[:, inlier], ok[:, inlier], col[inlier], sc[inlier]
    offsets = np.zeros_like(xyz)
    rigid_used = 0
    for i in range(v):
        good = ok[i]
        if good.sum() >= 3:
            R, t = fit_rigid(p[good], xyz[i, good])
        else:
            R, t = np.eye(3), np.zeros(3)
        rigid = p @ R.T + t
        residual = np.linalg.norm(xyz[i] - rigid, axis=1)
        limit = cfg.rigid_outlier * max(float(np.median(residual[good])) if good.any() else 0.0, 1e-6)
        use = good & (residual <= limit)
        rigid_used += int((~use).sum())
        offsets[i] = np.where(use[:, None], xyz[i], rigid) - p
    cloud = GaussianCloud(p.astype(np.float32), sc.astype(np.float32), col.astype(np.float32),
                          np.full(len(p), 0.9, np.float32))
    stats = {"seed_points": seeds, "points": len(p), "outliers_removed": int((~inlier).sum()),
             "rigid_fallback_share": round(rigid_used / max(1, v * len(p)), 4)}
    return Canonical(cloud, offsets.astype(np.float32), c, stats)


def compute_device(cfg: ReconstructConfig) -> torch.device:
    """Where a reconstruction runs: CUDA when available (unless the torch backend is forced)."""
    return torch.device("cuda" if torch.cuda.is_available() and cfg.backend != "torch" else "cpu")


def prune_floaters(canonical: Canonical, frames: np.ndarray, Ks: np.ndarray, background: np.ndarray,
                   cfg: ReconstructConfig) -> tuple[Canonical, int]:
    """Optimise each point's opacity (and color) to re-render the column's frames through
    the per-view offsets; drop points whose opacity ends below ``prune_threshold``."""
    dev = compute_device(cfg)
    g = Gaussians(canonical.cloud).to(dev)
    offsets = torch.as_tensor(canonical.offsets, device=dev)
    target = torch.as_tensor(frames, dtype=torch.float32, device=dev) / 255
    K = torch.as_tensor(Ks, dtype=torch.float32, device=dev)
    bg = torch.as_tensor(background, dtype=torch.float32, device=dev)
    opt = torch.optim.Adam([g.opacity_logits, g.color_logits], lr=cfg.prune_lr)
    h, w = frames.shape[1:3]
    gen = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.prune_steps):
        views = torch.randperm(len(frames), generator=gen)[: cfg.batch_cells].to(dev)
        rgb, _ = render(g.means[None] + offsets[views], g.scales, g.colors, g.opacities, K[views], h, w, bg, cfg.backend)
        loss = (rgb - target[views]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    keep = (g.opacities > cfg.prune_threshold).detach().cpu().numpy()
    cloud = g.cloud().subset(keep)
    cloud.opacities = np.clip(cloud.opacities, 0.5, 0.99)  # the fit starts from opaque survivors
    return Canonical(cloud, canonical.offsets[:, keep], canonical.center, canonical.stats), int((~keep).sum())


def holdout_mask(views: int, times: int, every: int) -> np.ndarray:
    """``[V, T]`` bool: cells left out of the fit (every ``every``-th cell outside the first
    row and column, in row-major order)."""
    mask = np.zeros((views, times), bool)
    idx = [(i, j) for i in range(1, views) for j in range(1, times)]
    for n, (i, j) in enumerate(idx):
        mask[i, j] = n % every == every // 2
    return mask


class Deformable(torch.nn.Module):
    """Canonical Gaussians + per-view offsets + the temporal MLP: renders any cell. The
    offsets come from tracking and stay fixed, or (``learn_offsets``, 4Real's per-frame
    deformations) are optimised with the rest."""

    def __init__(self, canonical: Canonical, times: int, learn_offsets: bool = False):
        super().__init__()
        self.gaussians = Gaussians(canonical.cloud)
        offsets = torch.tensor(canonical.offsets)  # a copy: fitting never writes into the canonical arrays
        if learn_offsets:
            self.offsets = torch.nn.Parameter(offsets)
        else:
            self.register_buffer("offsets", offsets)
        extent = float(np.abs(canonical.cloud.means - canonical.cloud.means.mean(0)).max()) + 1e-6
        self.deform = TimeDeformation(extent=extent)
        self.times = times

    @classmethod
    def load(cls, path: str | Path, times: int) -> "Deformable":
        """A fitted model from ``deformation.safetensors`` (as the ``reconstruct`` stage writes it)."""
        from safetensors.torch import load_file

        state = load_file(str(path))
        n, v = state["gaussians.means"].shape[0], state["offsets"].shape[0]
        blank = GaussianCloud(np.zeros((n, 3), np.float32), np.ones(n, np.float32), np.full((n, 3), 0.5, np.float32),
                              np.full(n, 0.5, np.float32))
        model = cls(Canonical(blank, np.zeros((v, n, 3), np.float32), v // 2), times)
        model.load_state_dict(state)
        return model.eval()

    def view_offset(self, view: float) -> torch.Tensor:
        """``[N, 3]`` offsets of view ``view``; fractional views interpolate the two neighbours'."""
        lo = int(np.floor(view))
        hi = min(lo + 1, self.offsets.shape[0] - 1)
        a = view - lo
        return (1 - a) * self.offsets[lo] + a * self.offsets[hi]

    def positions(self, view: float, t: float) -> torch.Tensor:
        """``[N, 3]`` positions in view ``view``'s coordinates at normalised time ``t`` (Eq. 11)."""
        p = self.gaussians.means
        return p + self.view_offset(view) + self.deform(p, t)

    def render_cells(self, cells: list[tuple[float, float]], Ks: torch.Tensor, height: int, width: int,
                     background: torch.Tensor, backend: str) -> torch.Tensor:
        """``[B, H, W, 3]`` renders of ``cells`` = (view, time index) pairs with intrinsics ``Ks [B, 3, 3]``."""
        p = self.gaussians.means
        offsets = torch.stack([self.view_offset(v) for v, _ in cells])
        means = p + offsets + self.deform.at_times(p, [t / max(1, self.times - 1) for _, t in cells])
        g = self.gaussians
        return render(means, g.scales, g.colors, g.opacities, Ks, height, width, background, backend)[0]


def fit(rgb: np.ndarray, Ks: np.ndarray, canonical: Canonical, background: np.ndarray, cfg: ReconstructConfig,
        progress: bool = True, *, steps: int | None = None, model: Deformable | None = None,
        cells: list[tuple[int, int]] | None = None, learn_offsets: bool = False,
        regularizer: Callable[[Deformable, np.random.Generator], torch.Tensor] | None = None,
        ) -> tuple[Deformable, list[float], np.ndarray]:
    """Fit the deformable Gaussians to a grid ``rgb [V, T, H, W, 3]`` (uint8). Returns the
    model, the loss per step and the held-out mask ``[V, T]``.

    By default every cell but the held-out ones is a target and the model starts from
    ``canonical``. Keyword arguments serve 4Real's optimisation: ``model`` to continue from,
    ``cells`` to fit (only those cells of ``rgb`` are read), ``learn_offsets`` to optimise
    the per-view offsets too, and a ``regularizer(model, rng)`` loss (e.g. SDS) added each step."""
    dev = compute_device(cfg)
    v, t, h, w = rgb.shape[:4]
    model = (model or Deformable(canonical, t, learn_offsets)).to(dev)
    held = holdout_mask(v, t, cfg.holdout_every)
    train_cells = cells or [(i, j) for i in range(v) for j in range(t) if not held[i, j]]
    target = torch.as_tensor(rgb, dtype=torch.float32, device=dev) / 255
    K = torch.as_tensor(Ks, dtype=torch.float32, device=dev)
    bg = torch.as_tensor(background, dtype=torch.float32, device=dev)
    g = model.gaussians
    groups = [
        {"params": [g.means], "lr": cfg.lr * 0.01 * model.deform.extent},
        {"params": [g.log_scales, g.opacity_logits, g.color_logits], "lr": cfg.lr * 2},
        {"params": model.deform.parameters(), "lr": cfg.deform_lr},
    ]
    if isinstance(model.offsets, torch.nn.Parameter):
        groups.append({"params": [model.offsets], "lr": cfg.lr * 0.1 * model.deform.extent})
    opt = torch.optim.Adam(groups)
    rng = np.random.default_rng(cfg.seed)
    losses = []
    for _ in tqdm(range(steps or cfg.fit_steps), desc="deformable fit", unit="step", disable=not progress, mininterval=5.0):
        pick = [train_cells[k] for k in rng.choice(len(train_cells), size=min(cfg.batch_cells, len(train_cells)), replace=False)]
        pred = model.render_cells(pick, K[[i for i, _ in pick]], h, w, bg, cfg.backend)
        truth = torch.stack([target[i, j] for i, j in pick])
        loss = (1 - cfg.ssim_weight) * (pred - truth).abs().mean()
        loss = loss + cfg.ssim_weight * (1 - ssim_tensor(pred.permute(0, 3, 1, 2) * 2 - 1, truth.permute(0, 3, 1, 2) * 2 - 1))
        if cfg.smooth_weight > 0 and t > 1:
            j = int(rng.integers(0, t - 1))
            p = g.means
            step = model.deform(p, (j + 1) / (t - 1)) - model.deform(p, j / (t - 1))
            loss = loss + cfg.smooth_weight * step.pow(2).sum(-1).mean() / model.deform.extent**2
        if regularizer is not None:
            loss = loss + regularizer(model, rng)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"reconstruction loss is {loss.item()}; lower reconstruct.lr")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model, losses, held


def _uint8(rgb: torch.Tensor) -> np.ndarray:
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
    return _uint8(torch.stack(rows))


def scores(renders: np.ndarray, rgb: np.ndarray, held: np.ndarray) -> dict[str, float]:
    """PSNR/SSIM of renders against the grid on the fitted and the held-out cells."""
    def to_t(x):
        return torch.as_tensor(x, dtype=torch.float32).permute(0, 3, 1, 2) / 127.5 - 1

    out = {}
    for name, mask in (("fit", ~held), ("heldout", held)):
        if mask.any():
            a, b = to_t(renders[mask]), to_t(rgb[mask])
            out[f"{name}_psnr"], out[f"{name}_ssim"] = round(psnr(a, b), 3), round(float(ssim_tensor(a, b)), 4)
    return out


def reconstruct(rgb: np.ndarray, depth: np.ndarray, Ks: np.ndarray, cfg: ReconstructConfig,
                progress: bool = True) -> dict:
    """The whole reconstruction of one grid; returns the model, renders, scores and timings.
    Seeded by ``cfg.seed``; on the CPU bit-reproducible (deterministic kernels are forced for
    the call), on CUDA not (gsplat accumulates gradients with atomics)."""
    torch.manual_seed(cfg.seed)
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(compute_device(cfg).type == "cpu")
    try:
        return _reconstruct(rgb, depth, Ks, cfg, progress)
    finally:
        torch.use_deterministic_algorithms(previous)


def _reconstruct(rgb: np.ndarray, depth: np.ndarray, Ks: np.ndarray, cfg: ReconstructConfig, progress: bool) -> dict:
    timings = {}
    start = time.perf_counter()
    column = rgb[:, 0]
    bg = background_color(column, depth[:, 0])
    canonical = canonical_init(column, depth[:, 0], Ks, cfg)
    timings["track_init_s"] = time.perf_counter() - start
    start = time.perf_counter()
    canonical, pruned = prune_floaters(canonical, column, Ks, bg, cfg)
    timings["prune_s"] = time.perf_counter() - start
    start = time.perf_counter()
    model, losses, held = fit(rgb, Ks, canonical, bg, cfg, progress)
    timings["fit_s"] = time.perf_counter() - start
    v, t, h, w = rgb.shape[:4]
    renders = render_grid(model, Ks, v, t, h, w, bg, cfg.backend)
    return {"model": model, "canonical": canonical, "renders": renders, "losses": losses, "held": held,
            "background": bg, "scores": scores(renders, rgb, held),
            "stats": {**canonical.stats, "floaters_pruned": pruned, "final_points": len(canonical.cloud)},
            "timings": {k: round(s, 2) for k, s in timings.items()}}


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
        frames.append(_uint8(rgb[0]))
    return np.stack(frames)


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
        frames.append(_uint8(rgb[0]))
    return np.stack(frames)


def write_reconstruction(result: dict, grid_rgb: np.ndarray, Ks: np.ndarray, directory: Path, previews: Path,
                         name: str, cfg: ReconstructConfig, fps: float = 8.0, mp4: bool = True) -> None:
    """Write one reconstruction (the output of :func:`reconstruct` for a grid ``[V, T, H, W, 3]``
    with intrinsics ``[V, 3, 3]``): under ``directory`` ``canonical.ply``,
    ``deformation.safetensors``, ``renders.grid.npz``, ``loss.csv``; under ``previews``
    ``<name>.png`` (grid above renders, held-out cells marked red), ``<name>_sweep.png/.mp4``
    (a novel view-and-time path; the mp4 only with ``mp4``) and ``<name>_canonical.png`` (the
    canonical cloud turned)."""
    from safetensors.torch import save_file

    from fourreal.files import write_loss_csv
    from fourreal.gaussians import write_ply
    from fourreal.grid import Grid, save_grid
    from fourreal.preview import contact_sheet, write_mp4, write_png

    model, held = result["model"], result["held"]
    directory.mkdir(parents=True, exist_ok=True)
    write_ply(directory / "canonical.ply", model.gaussians.cloud())
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
        write_mp4(previews / f"{name}_sweep.mp4", frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2])
    spin = turntable(model, Ks[model.offsets.shape[0] // 2], result["background"], cfg.backend, height, width)
    write_png(previews / f"{name}_canonical.png", contact_sheet(spin[None], 96, labels=None))
