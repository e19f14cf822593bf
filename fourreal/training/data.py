"""Training data: videos for the base model (:class:`VideoSet`) and grid windows for the 4D
model (:class:`GridSet`).

Videos are clips of every source, labelled with their mode.

Sources (paper Sec. 3.1, 3.3): ``videos`` clips (dynamic), ``pseudo4d`` grids (each row a
dynamic video, each column a freeze-time video) and ``render`` clips (both modes). Batches
are cut to the phase's frame count and resized to its resolution on the fly, so progressive
training reads the same files at every phase. The frames live where the model trains
(:meth:`VideoSet.to`, :meth:`GridSet.to`): on a GPU, batches are assembled there, with no
copy of pixels from the host and no wait for the GPU. Random conditioning masks teach the model to
fill in any subset of frames (paper: masked training).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fourreal.formats.clip import list_clips, load_clip
from fourreal.formats.grid import list_grids, load_grid
from fourreal.models.dit import CONTEXTS
from fourreal.running.config import ConfigError


@dataclass
class VideoBatch:
    """A training batch: ``x0 [B, F, 3, H, W]`` in [-1, 1], ``context [B]`` mode ids,
    ``cond_mask [B, F]`` (1 = frame given clean)."""

    x0: torch.Tensor
    context: torch.Tensor
    cond_mask: torch.Tensor


def to_unit(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 ``[..., H, W, 3]`` -> float ``[..., 3, H, W]`` in [-1, 1]."""
    t = torch.as_tensor(frames)
    return t.movedim(-1, -3).float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float ``[..., 3, H, W]`` in [-1, 1] -> uint8 ``[..., H, W, 3]``."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().movedim(-3, -1).cpu().numpy()


def to_device(x: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``x`` on ``device`` without waiting for the GPU: a small host tensor goes through
    pinned memory with an asynchronous copy (a plain copy from pageable memory synchronizes)."""
    device = torch.device(device)
    if device.type != "cuda" or x.device == device:
        return x.to(device)
    return x.pin_memory().to(device, non_blocking=True)


def crop_box(h: int, w: int, height: int, width: int) -> tuple[int, int, int, int]:
    """``(top, crop_h, left, crop_w)``: the centred crop of an ``h x w`` frame with the aspect
    ratio of ``height x width``."""
    if h * width > w * height:  # too tall
        ch = max(1, round(w * height / width))
        return (h - ch) // 2, ch, 0, w
    if h * width < w * height:  # too wide
        cw = max(1, round(h * width / height))
        return 0, h, (w - cw) // 2, cw
    return 0, h, 0, w


def fit_video(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Center-crop ``[F, 3, H, W]`` to the aspect ratio of ``height x width``, then resize:
    sources of any size and aspect become one batch."""
    top, ch, left, cw = crop_box(*x.shape[-2:], height, width)
    return resize_video(x[..., top:top + ch, left:left + cw][None], height, width)[0]


def fit_intrinsics(K: np.ndarray, h: int, w: int, height: int, width: int) -> np.ndarray:
    """Intrinsics ``[..., 3, 3]`` of ``h x w`` frames after :func:`fit_video` to ``height x width``."""
    top, ch, left, cw = crop_box(h, w, height, width)
    out = np.array(K, dtype=np.float32, copy=True)
    out[..., 0, 2] -= left
    out[..., 1, 2] -= top
    out[..., 0, :] *= width / cw
    out[..., 1, :] *= height / ch
    return out


def resize_video(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize ``[B, F, 3, H, W]`` to ``height x width`` (area when shrinking, bilinear otherwise)."""
    b, f, c, h, w = x.shape
    if (h, w) == (height, width):
        return x.contiguous()
    mode = "area" if height <= h and width <= w else "bilinear"
    kwargs = {} if mode == "area" else {"align_corners": False}
    return F.interpolate(x.reshape(b * f, c, h, w), size=(height, width), mode=mode, **kwargs).view(b, f, c, height, width)


class VideoSet:
    """All training videos in memory as uint8 ``[F, H, W, 3]`` tensors, grouped by mode.

    Each video belongs to an origin (``origins``): the real video or asset it was cut from,
    from the file's ``meta['source']``. Clips of one video, the pseudo-4D grids made from
    them and the rows and columns of one rendered grid share an origin, and are held out
    together (:meth:`split_holdout`)."""

    def __init__(self) -> None:
        self.videos: dict[str, list[torch.Tensor]] = {mode: [] for mode in CONTEXTS}
        self.sources: dict[str, list[str]] = {mode: [] for mode in CONTEXTS}
        self.origins: dict[str, list[str]] = {mode: [] for mode in CONTEXTS}
        self.device = torch.device("cpu")

    def add(self, frames: np.ndarray | torch.Tensor, mode: str, source: str, origin: str | None = None) -> None:
        """Add one video ``frames [F, H, W, 3]`` (uint8) in ``mode``; ``source`` names it,
        ``origin`` (default: ``source``) is what it was cut from."""
        self.videos[mode].append(torch.as_tensor(frames).to(self.device))
        self.sources[mode].append(source)
        self.origins[mode].append(origin or source)

    def to(self, device: torch.device | str) -> "VideoSet":
        """Keep every video on ``device`` (batches are then made there); returns ``self``."""
        device = torch.device(device)
        if device != self.device:
            self.videos = {mode: [v.to(device) for v in vids] for mode, vids in self.videos.items()}
            self.device = device
        return self

    def add_clips(self, directory: str | Path) -> int:
        """Add every clip file of ``directory``; returns how many."""
        paths = list_clips(directory)
        for p in paths:
            clip = load_clip(p)
            self.add(clip.rgb, clip.mode, str(p), _origin(clip.meta, p))
        return len(paths)

    def add_grids(self, directory: str | Path) -> int:
        """Add every grid of ``directory`` as its rows (dynamic) and columns (freeze-time)."""
        paths = list_grids(directory)
        for p in paths:
            grid = load_grid(p)
            origin = _origin(grid.meta, p)
            for v in range(grid.shape[0]):
                self.add(grid.row(v), "dynamic", f"{p}#row{v}", origin)
            for t in range(grid.shape[1]):
                self.add(grid.column(t), "freeze_time", f"{p}#col{t}", origin)
        return len(paths)

    def counts(self) -> dict[str, int]:
        return {mode: len(v) for mode, v in self.videos.items()}

    def drop_smaller(self, height: int, width: int) -> int:
        """Remove videos stored below ``height x width`` (they would be upscaled, e.g. as an
        upsampler's ground truth); returns how many were removed."""
        removed = 0
        for mode in CONTEXTS:
            keep = [i for i, v in enumerate(self.videos[mode]) if v.shape[1] >= height and v.shape[2] >= width]
            removed += len(self.videos[mode]) - len(keep)
            self._keep(mode, keep)
        return removed

    def _keep(self, mode: str, keep: list[int]) -> None:
        """Keep only the videos of ``mode`` at indices ``keep``."""
        self.videos[mode] = [self.videos[mode][i] for i in keep]
        self.sources[mode] = [self.sources[mode][i] for i in keep]
        self.origins[mode] = [self.origins[mode][i] for i in keep]

    def split_holdout(self, fraction: float, seed: int) -> "VideoSet":
        """Move a seeded ``fraction`` of the origins (at least one when ``fraction > 0`` and
        there are two or more), with every video cut from them, into a new held-out set: no
        held-out video shares frames with a training one."""
        held = VideoSet().to(self.device)
        origins = sorted({o for mode in CONTEXTS for o in self.origins[mode]})
        k = min(max(int(round(len(origins) * fraction)), 1 if fraction > 0 else 0), len(origins) - 1)
        chosen = set(np.random.default_rng(seed).choice(origins, size=k, replace=False).tolist()) if k > 0 else set()
        for mode in CONTEXTS:
            for i, o in enumerate(self.origins[mode]):
                if o in chosen:
                    held.add(self.videos[mode][i], mode, self.sources[mode][i], o)
            self._keep(mode, [i for i, o in enumerate(self.origins[mode]) if o not in chosen])
        return held

    def batch(self, size: int, frames: int, height: int, width: int, rng: np.random.Generator,
              freeze_time_share: float = 0.5, mask_probs: tuple[float, float, float, float] = (0.25, 0.25, 0.25, 0.25)) -> VideoBatch:
        """Sample a batch: each item picks a mode (freeze-time with ``freeze_time_share``), a
        video long enough, a random window of ``frames`` frames and a conditioning mask:
        none / first frame / a prefix / a random subset, with ``mask_probs``."""
        usable = {m: [v for v in vids if len(v) >= frames] for m, vids in self.videos.items()}
        if not any(usable.values()):
            raise ConfigError(f"no training video has {frames} frames; lower the phase's frames or add data")
        xs, ctx, masks = [], [], []
        for _ in range(size):
            mode = "freeze_time" if rng.random() < freeze_time_share else "dynamic"
            if not usable[mode]:
                mode = "dynamic" if mode == "freeze_time" else "freeze_time"
            video = usable[mode][rng.integers(len(usable[mode]))]
            start = rng.integers(len(video) - frames + 1)
            clip = video[start : start + frames]
            if rng.random() < 0.5:  # play backwards: both directions are valid camera/scene paths
                clip = clip.flip(0)
            xs.append(fit_video(to_unit(clip), height, width))
            ctx.append(CONTEXTS[mode])
            masks.append(random_mask(frames, rng, mask_probs))
        return VideoBatch(x0=torch.stack(xs), context=to_device(torch.tensor(ctx), self.device),
                          cond_mask=to_device(torch.stack(masks), self.device))


def _origin(meta: dict, path: Path) -> str:
    """What a clip or grid file was cut from: its ``meta['source']``, else its file name."""
    return str(meta.get("source") or path.name.split(".")[0])


def random_mask(frames: int, rng: np.random.Generator, probs: tuple[float, float, float, float]) -> torch.Tensor:
    """A conditioning mask ``[frames]``: none, first frame, a prefix, or a random subset
    (never all frames), chosen with ``probs``."""
    kind = rng.choice(4, p=np.asarray(probs) / np.sum(probs))
    mask = torch.zeros(frames)
    if kind == 1:
        mask[0] = 1
    elif kind == 2:
        mask[: rng.integers(1, frames)] = 1
    elif kind == 3:
        k = rng.integers(1, frames)
        mask[torch.as_tensor(rng.choice(frames, size=k, replace=False))] = 1
    return mask


@dataclass
class GridBatch:
    """A 4D training batch: ``x0 [B, V, T, 3, H, W]`` in [-1, 1], ``cond_mask [B, V, T]``
    (1 = cell given clean) and the files the windows came from."""

    x0: torch.Tensor
    cond_mask: torch.Tensor
    sources: list[str]


class GridSet:
    """Grids in memory as uint8 ``[V, T, H, W, 3]`` tensors; batches are random ``views x times`` windows."""

    def __init__(self) -> None:
        self.grids: list[torch.Tensor] = []
        self.sources: list[str] = []
        self.device = torch.device("cpu")

    def add_grids(self, directory: str | Path) -> int:
        """Add every grid of ``directory``; returns how many."""
        paths = list_grids(directory)
        for p in paths:
            self.grids.append(torch.as_tensor(load_grid(p).rgb).to(self.device))
            self.sources.append(str(p))
        return len(paths)

    def to(self, device: torch.device | str) -> "GridSet":
        """Keep every grid on ``device`` (batches are then made there); returns ``self``."""
        device = torch.device(device)
        if device != self.device:
            self.grids = [g.to(device) for g in self.grids]
            self.device = device
        return self

    def batch(self, size: int, views: int, times: int, height: int, width: int, rng: np.random.Generator,
              extra_known: float = 0.25) -> GridBatch:
        """Random windows with the first row and column given; with probability
        ``extra_known`` also a few more leading rows and/or columns (as in sliding-window
        sampling, where earlier windows' cells are known)."""
        usable = [i for i, g in enumerate(self.grids) if g.shape[0] >= views and g.shape[1] >= times]
        if not usable:
            raise ConfigError(f"no training grid has at least {views} views and {times} times; lower the phase's "
                              "frames or add larger grids")
        xs, masks, sources = [], [], []
        for _ in range(size):
            i = usable[rng.integers(len(usable))]
            g = self.grids[i]
            v0, t0 = rng.integers(g.shape[0] - views + 1), rng.integers(g.shape[1] - times + 1)
            win = g[v0 : v0 + views, t0 : t0 + times]
            if rng.random() < 0.5:
                win = win.flip(1)  # time reversed
            if rng.random() < 0.5:
                win = win.flip(0)  # camera path reversed
            frames = to_unit(win).flatten(0, 1)
            xs.append(fit_video(frames, height, width).view(views, times, 3, height, width))
            mask = torch.zeros(views, times)
            mask[0], mask[:, 0] = 1, 1
            if rng.random() < extra_known:
                mask[: rng.integers(1, max(2, views // 2 + 1))] = 1
            if rng.random() < extra_known:
                mask[:, : rng.integers(1, max(2, times // 2 + 1))] = 1
            masks.append(mask)
            sources.append(self.sources[i])
        return GridBatch(x0=torch.stack(xs), cond_mask=to_device(torch.stack(masks), self.device), sources=sources)
