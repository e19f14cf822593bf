"""The library of the ``sample_4d`` stage: generating 4D grids for evaluation, every
ablation variant on held-out rendered grids, their first row and column given, scored
against the rendered truth; and the same on the pseudo-4D grids of held-out real videos
(whole frames only: they have no depth); the trivial baselines and the scores."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import torch
from tqdm import tqdm

from fourreal.evaluation.metrics import masked_psnr, masked_ssim, psnr, ssim
from fourreal.formats.grid import Grid, list_grids, load_grid, save_grid
from fourreal.formats.preview import PreviewConfig
from fourreal.models.model4d import ARCHITECTURES, Model4D, build_model4d
from fourreal.running import layout
from fourreal.running.config import ConfigError, require
from fourreal.sampling.grid_windows import MaskedGridVelocity, Replica, sample_grids
from fourreal.sampling.precision import PRECISIONS, autocast, prepare_model, resolve_precision
from fourreal.training.data import fit_intrinsics, fit_video, to_uint8, to_unit
from fourreal.training.model_files import load_model, load_model4d, training_frames, training_window

log = logging.getLogger(__name__)

# Foreground scores that cannot be computed, reported as such (like fourreal.evaluation.fvd.NA).
NO_FOREGROUND = "n/a (no foreground)"
NO_DEPTH = "n/a (no depth)"


@dataclass
class SampleVariant:
    """How to build one variant: its trained model directory, or (``model: ""``) the base
    model with a training-free ``architecture``."""

    model: str = ""
    architecture: str = ""

    def __post_init__(self) -> None:
        require(bool(self.model) != bool(self.architecture), "model", "give either model or architecture, not both")
        require(not self.architecture or self.architecture in ARCHITECTURES, "architecture",
                f"must be one of {list(ARCHITECTURES)}")


@dataclass
class Sample4DConfig:
    """Parameters of the ``sample_4d`` stage.

    Attributes:
        base_model: base model directory (for the training-free variants).
        test_grids: held-out rendered grids (their first row and column are the inputs).
        pseudo_test_grids: pseudo-4D grids of held-out real videos (``pseudo4d``'s
            ``test_grids``), sampled and scored the same way; ``""`` (or a directory without
            grids) scores none.
        max_pseudo_tests: score this many of them, spread evenly over their names (0 = all).
        views, times: size of the generated grids (crops of the test grids).
        height, width: frame size.
        window: cells per side of the window the model sees at once (larger grids use
            sliding windows); 0 = the window the model was trained on (see :func:`resolve_window`).
        force_window: sample with a ``window`` the model was not trained on, with a warning
            instead of an error.
        steps, sampler, seed: the ODE solve.
        sigma_max: the highest flow time the model is asked at (1: every one;
            :func:`fourreal.sampling.flow_solver.sample`).
        batch: test grids generated at once (one pass of the model over a window of all of
            them); the result does not depend on it, only the speed and the memory.
        gpus: GPUs the windows of a grid are shared out between (0: all visible; the result
            does not depend on it).
        precision: the 4D model's arithmetic (:mod:`fourreal.sampling.precision`): ``fp32``,
            ``bf16`` (autocast), ``fp8`` (the block and sync linear layers in FP8 with per-row
            scales, the rest in bf16; compute capability 8.9+) or ``auto`` (fp8 where it runs,
            else bf16 on CUDA, fp32 on the CPU); a precision the device lacks falls back with a
            warning.
        variants: the variants to sample, by name (not ``previews``, ``pseudo``, ``pseudo_*`` or a
            baseline's name: those are the stage's other outputs and metric keys).
        preview: previews of each variant's first grid.
    """

    base_model: str = layout.BASE_MODEL
    test_grids: str = layout.RENDER_TEST
    pseudo_test_grids: str = layout.PSEUDO_TEST_GRIDS
    max_pseudo_tests: int = 0
    views: int = 6
    times: int = 6
    height: int = 20
    width: int = 32
    window: int = 0
    force_window: bool = False
    steps: int = 10
    sampler: Literal["euler", "heun"] = "euler"
    sigma_max: float = 1.0
    seed: int = 0
    batch: int = 4
    gpus: int = 1
    precision: str = "auto"
    variants: dict[str, SampleVariant] = field(default_factory=dict)
    preview: PreviewConfig = field(default_factory=lambda: PreviewConfig(max_items=1, cell_height=60, mp4=False))

    def __post_init__(self) -> None:
        require(self.views >= 2, "views", "must be >= 2")
        require(self.times >= 2, "times", "must be >= 2")
        require(self.window == 0 or self.window >= 2, "window", "must be 0 (the model's training window) or >= 2")
        require(self.batch >= 1, "batch", "must be >= 1 (test grids generated at once)")
        require(0 < self.sigma_max <= 1, "sigma_max", "must be in (0, 1] (1: the model is asked at every flow time)")
        require(self.gpus >= 0, "gpus", "must be >= 0 (0 = all visible GPUs)")
        require(self.precision in PRECISIONS, "precision", f"must be one of {list(PRECISIONS)}")
        require(self.max_pseudo_tests >= 0, "max_pseudo_tests", "must be >= 0 (0 = all)")
        require(not any(n in RESERVED or n.startswith("pseudo_") for n in self.variants), "variants",
                f"no variant may be named {', '.join(sorted(RESERVED))} or pseudo_* (sample_4d's other outputs "
                "and metric keys)")


def pseudo_test_paths(cfg: Sample4DConfig) -> list[Path]:
    """The pseudo-4D test grids to score: ``max_pseudo_tests`` of ``pseudo_test_grids``
    spread evenly over their sorted names (so every held-out video has its share), all for
    0, none when it is ``""`` or holds no grids."""
    paths = list_grids(cfg.pseudo_test_grids) if cfg.pseudo_test_grids else []
    if not cfg.max_pseudo_tests or cfg.max_pseudo_tests >= len(paths):
        return paths
    return [paths[i * len(paths) // cfg.max_pseudo_tests] for i in range(cfg.max_pseudo_tests)]


def sampling_device() -> torch.device:
    """Where the 4D models sample: the (first visible) GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sampling_precision(cfg: Sample4DConfig) -> str:
    """``cfg.precision`` resolved for :func:`sampling_device` (``fp32``, ``bf16`` or ``fp8``;
    :func:`~fourreal.sampling.precision.resolve_precision`, with its fallback warning)."""
    return resolve_precision(cfg.precision, sampling_device(), key="sample_4d.precision")


def variant_model(cfg: Sample4DConfig, variant: SampleVariant, precision: str = "fp32") -> Model4D:
    """The 4D model of a variant, on :func:`sampling_device`, set up for the resolved
    ``precision`` (:func:`~fourreal.sampling.precision.prepare_model`: FP8 layers for ``fp8``)."""
    model = load_model4d(variant.model) if variant.model else build_model4d(load_model(cfg.base_model), variant.architecture)
    return prepare_model(model.eval().to(sampling_device()), precision)


def _setting(key: str, value: object) -> str:
    """How ``key`` gets ``value``: ``window: 0`` in a params file (``key`` is ``section.name``),
    ``--window 0`` on a command line (a bare flag for true)."""
    if key.startswith("--"):
        return key if value is True else f"{key} {value}"
    return f"{key.rsplit('.', 1)[-1]}: {'true' if value is True else value}"


def _shown(key: str, value: int) -> str:
    """``key`` with its ``value`` as the user gave it: ``sample_4d.window = 8`` or ``--window 8``."""
    return f"{key} {value}" if key.startswith("--") else f"{key} = {value}"


def resolve_window(window: int, model_dir: str | Path, base: bool = False, force: bool = False,
                   key: str = "window", force_key: str = "force_window") -> int:
    """The window (cells per side) to sample the model of ``model_dir`` with: ``window``, or
    for 0 the one it was trained on, as its ``config.json`` records it.

    A trained 4D model is sampled with its training window only; the base model (``base``:
    a training-free 4D architecture around it) with at most its training frames. Another
    ``window`` raises :class:`~fourreal.running.config.ConfigError`, or with ``force`` is used with a
    warning; 0 for a model that records nothing raises too. ``key`` and ``force_key`` name
    the two parameters in messages: ``sample_4d.window`` (params file) or ``--window`` (command line).
    """
    trained = training_frames(model_dir) if base else training_window(model_dir)
    if trained is None:
        if window == 0:
            record = "training frames" if base else "training window"
            raise ConfigError(f"{_shown(key, 0)} (the model's window) but {model_dir} records no {record} (it was "
                              f"exported before that was recorded); set the window explicitly ({_setting(key, 'N')}, N = the "
                              "frames of its last training phase) or retrain the model")
        return window
    if window == 0:
        return trained
    if window == trained or (base and window < trained):
        return window
    seen = f"{trained}-frame videos (windows up to {trained}x{trained})" if base else f"{trained}x{trained} windows"
    problem = f"{_shown(key, window)} but {model_dir} was trained on {seen}"
    if not force:
        raise ConfigError(f"{problem}; set {_setting(key, 0)} (use the model's) or {_setting(force_key, True)}")
    log.warning("%s; sampling with %dx%d windows anyway (%s): results may be out of distribution", problem, window,
                window, _setting(force_key, True))
    return window


def variant_window(cfg: Sample4DConfig, variant: SampleVariant) -> int:
    """The window a variant is sampled with (:func:`resolve_window`): a trained model's own,
    the base model's training frames for a training-free architecture, unless set."""
    return resolve_window(cfg.window, variant.model or cfg.base_model, base=not variant.model, force=cfg.force_window,
                          key="sample_4d.window", force_key="sample_4d.force_window")


def _window_cells(cells: np.ndarray, cfg: Sample4DConfig) -> np.ndarray:
    """The test grid's first ``views x times`` cells of ``cells [V, T, ...]``."""
    if cells.shape[0] < cfg.views or cells.shape[1] < cfg.times:
        raise ConfigError(f"sample_4d asks for {cfg.views}x{cfg.times} grids but a test grid has only "
                         f"{cells.shape[0]}x{cells.shape[1]}; lower sample_4d.views/times or make larger test grids "
                         "(render.num_views/num_times; pseudo4d.num_views and videos.clip_frames for pseudo-4D ones)")
    return np.ascontiguousarray(cells[: cfg.views, : cfg.times])


def truth_window(rgb: np.ndarray, cfg: Sample4DConfig) -> torch.Tensor:
    """The test grid's first ``views x times`` cells at the sampling size: ``[V, T, 3, H, W]``."""
    win = _window_cells(rgb, cfg)
    v, t = win.shape[:2]
    frames = fit_video(to_unit(win).flatten(0, 1), cfg.height, cfg.width)
    return frames.view(v, t, 3, cfg.height, cfg.width)


def foreground_window(depth: np.ndarray | None, cfg: Sample4DConfig) -> torch.Tensor | None:
    """The foreground of :func:`truth_window`'s cells: bool ``[V, T, H, W]``, or None for a
    test grid without depth.

    A pixel of the test grid is foreground where its depth is finite and above 0 (renders
    store 0 where no surface was hit, see docs/GRID_FORMAT.md). The mask goes through the
    same crop and resize as the RGB (:func:`~fourreal.training.data.fit_video`: centre crop, then area
    averaging when shrinking, bilinear when enlarging) as a 0/1 image, and a sampled pixel is
    foreground where the result is >= 0.5 (at least half its area covered when shrinking).
    """
    if depth is None:
        return None
    win = _window_cells(depth, cfg)
    v, t = win.shape[:2]
    fg = torch.from_numpy((np.isfinite(win) & (win > 0)).astype(np.float32))
    fitted = fit_video(fg.flatten(0, 1)[:, None], cfg.height, cfg.width)
    return fitted.view(v, t, cfg.height, cfg.width) >= 0.5


def window_intrinsics(intrinsics: np.ndarray | None, frame_hw: tuple[int, int], cfg: Sample4DConfig) -> np.ndarray | None:
    """The test grid's intrinsics ``[V, 3, 3]`` for the sampled window (first ``views`` views,
    frames fitted to the sampling size): generated cells share the input column's views."""
    if intrinsics is None:
        return None
    return fit_intrinsics(intrinsics[: cfg.views], *frame_hw, cfg.height, cfg.width)


def model_velocity(model: Model4D, precision: str = "fp32") -> MaskedGridVelocity:
    """The velocity ``velocity(x, sigma, cond, mask)`` of a 4D model, as :func:`sample_grid`
    calls it, in the resolved ``precision`` (the model set up for it by
    :func:`~fourreal.sampling.precision.prepare_model`): under bf16 autocast on CUDA for
    ``bf16`` and ``fp8``; the output in float32."""
    device = next(model.parameters()).device

    def velocity(x, s, cond, mask):
        with autocast(device, precision):
            return model(x, s, cond=cond, mask=mask).float()

    return velocity


def model_replicas(model: Model4D, gpus: int, precision: str = "fp32") -> list[Replica]:
    """``(velocity, device)`` of ``model`` and of copies of it on the next GPUs, for
    :func:`sample_grid` to share windows out between: ``gpus`` GPUs in all (0: every visible
    one); just ``model`` when it is not on a GPU or one GPU is asked for. Each runs in the
    resolved ``precision`` (:func:`model_velocity`; copies of an FP8 model are FP8 too)."""
    device = next(model.parameters()).device
    count = torch.cuda.device_count() if gpus == 0 else gpus
    if device.type != "cuda" or count <= 1:
        return [(model_velocity(model, precision), device)]
    if count > torch.cuda.device_count():
        raise ConfigError(f"sample_4d.gpus = {gpus} but {torch.cuda.device_count()} GPUs are visible; lower it (0 = all)")
    first = device.index or 0
    devices = [torch.device("cuda", (first + i) % torch.cuda.device_count()) for i in range(count)]
    models = [model] + [copy.deepcopy(model).to(d) for d in devices[1:]]
    return [(model_velocity(m, precision), d) for m, d in zip(models, devices)]


def generate(replicas: list[Replica], truths: torch.Tensor, cfg: Sample4DConfig,
             window: int) -> torch.Tensor:
    """Grids ``[B, V, T, 3, H, W]`` from the first row and column of each of ``truths``
    (same shape; the rest is generated) by a model's :func:`model_replicas` in
    ``window x window`` windows (:func:`variant_window`), on the first one's device; returned
    on the CPU."""
    truths = truths.to(replicas[0][1])
    return sample_grids(replicas, truths[:, 0], truths[:, :, 0], (window, window), cfg.steps, cfg.sampler,
                        cfg.seed, progress=False, sigma_max=cfg.sigma_max).cpu()


def copy_row_baseline(truth: torch.Tensor) -> torch.Tensor:
    """A trivial baseline: every cell is its row's first frame, ``(v, t) = truth (v, 0)``
    (each view without motion). Runs before the rename called it ``copy_baseline``."""
    return truth[:, :1].expand_as(truth).clone()


def copy_column_baseline(truth: torch.Tensor) -> torch.Tensor:
    """A trivial baseline: every cell is its column's first frame, ``(v, t) = truth (0, t)``
    (each time seen from the first view, i.e. the given fixed-view video repeated)."""
    return truth[:1].expand_as(truth).clone()


# The trivial baselines sample_4d scores beside the variants, by name.
BASELINES = {"copy_row_baseline": copy_row_baseline, "copy_column_baseline": copy_column_baseline}
# Names a variant cannot have: sample_4d's other outputs and the baselines' scores.
RESERVED = frozenset({"previews", "pseudo", *BASELINES})
# The paper's full model: the variant whose scores the headline metrics report when sampled.
MAIN_VARIANT = "soft"


def main_variant(variants: Iterable[str]) -> str | None:
    """The variant the headline metrics of ``sample_4d`` and ``evaluate`` report:
    :data:`MAIN_VARIANT` when among ``variants``, else the first of them; None without any."""
    names = list(variants)
    return MAIN_VARIANT if MAIN_VARIANT in names else next(iter(names), None)


def score(grid: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    """PSNR and SSIM over the generated cells (first row and column excluded)."""
    return {"psnr": psnr(grid[1:, 1:], truth[1:, 1:]), "ssim": ssim(grid[1:, 1:], truth[1:, 1:])}


def foreground_score(grid: torch.Tensor, truth: torch.Tensor, foreground: torch.Tensor | None) -> dict[str, float | str]:
    """``fg_psnr`` and ``fg_ssim``: :func:`score` over the foreground pixels only
    (:func:`foreground_window`), over the same generated cells (first row and column excluded).

    ``fg_psnr`` is the PSNR of the MSE of all 3 channels over the foreground pixels of every
    generated cell, pooled (:func:`~fourreal.evaluation.metrics.masked_psnr`); ``inf`` when they match
    exactly, as :func:`~fourreal.evaluation.metrics.psnr` (not capped). ``fg_ssim`` is the SSIM map of
    :func:`~fourreal.evaluation.metrics.ssim` (same windows), averaged over channels and over the
    foreground pixels it is defined at, pooled over cells
    (:func:`~fourreal.evaluation.metrics.masked_ssim`). Cells without foreground add nothing;
    :data:`NO_FOREGROUND` when no generated cell has any, :data:`NO_DEPTH` when ``foreground``
    is None (a truth without depth).
    """
    if foreground is None:
        return {"fg_psnr": NO_DEPTH, "fg_ssim": NO_DEPTH}
    g, t, m = grid[1:, 1:], truth[1:, 1:], foreground[1:, 1:]
    p, s = masked_psnr(g, t, m), masked_ssim(g, t, m)
    return {"fg_psnr": NO_FOREGROUND if p is None else p, "fg_ssim": NO_FOREGROUND if s is None else s}


def mean_score(values: list[float | str], digits: int) -> float | str:
    """The mean of per-asset scores, rounded to ``digits``, over the assets that have a number
    (an ``n/a`` string marks the others); the first ``n/a`` string when none has."""
    numbers = [v for v in values if not isinstance(v, str)]
    if not numbers:
        return next((v for v in values if isinstance(v, str)), NO_FOREGROUND)
    return round(float(np.mean(numbers)), digits)


class Truth(NamedTuple):
    """One test grid at the sampling size: ``rgb [V, T, 3, H, W]`` in [-1, 1], the foreground
    ``[V, T, H, W]`` (None without depth) and the intrinsics ``[V, 3, 3]`` (None without)."""

    rgb: torch.Tensor
    foreground: torch.Tensor | None
    intrinsics: np.ndarray | None

    def frames(self) -> np.ndarray:
        """The cells as a grid stores them: uint8 ``[V, T, H, W, 3]``."""
        return to_uint8(self.rgb)


def load_truths(paths: list[Path], cfg: Sample4DConfig) -> dict[str, Truth]:
    """The test grids of ``paths`` by name, cut and fitted to the sampling window."""
    truths = {}
    for path in paths:
        test = load_grid(path)
        truths[path.name.removesuffix(".grid.npz")] = Truth(
            truth_window(test.rgb, cfg), foreground_window(test.depth, cfg),
            window_intrinsics(test.intrinsics, test.rgb.shape[2:4], cfg))
    return truths


def held_out_truths(cfg: Sample4DConfig, limit: int = 0) -> dict[str, Truth]:
    """The held-out rendered grids (``cfg.test_grids``; the first ``limit`` by name, 0: all)
    fitted to the sampling window, by asset name: what every method is given (the first row
    and column) and scored against, in ``sample_4d``, ``baseline_4real`` and ``evaluate``'s
    reference row. Empty when there are none."""
    paths = list_grids(cfg.test_grids)
    return load_truths(paths[:limit] if limit else paths, cfg)


def rendered_scores(grid: torch.Tensor, truth: Truth) -> dict[str, float | str]:
    """Scores of a grid ``[V, T, 3, H, W]`` on a rendered test grid: whole frames and foreground."""
    return {**score(grid, truth.rgb), **foreground_score(grid, truth.rgb, truth.foreground)}


def pseudo_scores(grid: torch.Tensor, truth: Truth) -> dict[str, float]:
    """Scores of a grid ``[V, T, 3, H, W]`` on a pseudo-4D test grid: whole frames (no depth)."""
    return score(grid, truth.rgb)


def sample_truths(replicas: list[Replica], truths: dict[str, Truth], cfg: Sample4DConfig,
                  window: int, variant: str, directory: Path,
                  scored: Callable[[torch.Tensor, Truth], dict]) -> dict[str, dict]:
    """Generate a grid from every truth's first row and column with one variant's
    ``replicas``, save it as ``directory/<name>.grid.npz``; returns ``scored`` per truth name."""
    scores, names = {}, list(truths)
    with tqdm(total=len(names), desc=f"sampling {variant}", unit="grid") as bar:
        for i in range(0, len(names), cfg.batch):
            batch = names[i : i + cfg.batch]
            grids = generate(replicas, torch.stack([truths[n].rgb for n in batch]), cfg, window)
            for name, grid in zip(batch, grids):
                truth = truths[name]
                scores[name] = scored(grid, truth)
                save_grid(directory / f"{name}.grid.npz", Grid(rgb=to_uint8(grid), intrinsics=truth.intrinsics, meta={
                    "kind": "generated", "variant": variant, "source": name, "seed": cfg.seed, "fps": 8.0}))
            bar.update(len(batch))
    return scores


def mean_metrics(scores: dict[str, dict[str, dict]], keys: tuple[str, ...], prefix: str = "") -> dict[str, float | str]:
    """``<prefix><name>_<key>``: the mean over grids (:func:`mean_score`) of every name's scores."""
    digits = {"psnr": 3, "ssim": 4, "fg_psnr": 3, "fg_ssim": 4}
    return {f"{prefix}{name}_{key}": mean_score([s[key] for s in per_grid.values()], digits[key])
            for name, per_grid in scores.items() for key in keys}
