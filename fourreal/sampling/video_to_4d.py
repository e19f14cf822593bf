"""One video (or one image) in, a 4D scene out: 4Real-Video's full path.

1. The fixed-view video (first row): the input video's first ``times`` frames at the model
   size, or, for a single image, a dynamic video generated from it by the base model.
2. The freeze-time video (first column): generated from the row's first frame by the base
   model in freeze-time mode, extended autoregressively in chunks to cover ``views`` views
   (as 4Real widens its arc).
3. The 4D grid: the 4D model fills the grid from its first row and column (sliding windows
   when the grid is larger than the model's window).
4. The reconstruction: depth from a depth network, deformable 3D Gaussians fitted to the grid
   (``fourreal.reconstruction``), with a pinhole camera of ``fov_deg`` horizontal field of view.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fourreal.data_making.videos import VideoReadError, center_crop_resize, read_video
from fourreal.formats.files import atomic_dir
from fourreal.formats.grid import Grid, save_grid
from fourreal.formats.preview import PreviewConfig, contact_sheet, write_grid_previews, write_mp4, write_png
from fourreal.reconstruction.geometry import pinhole
from fourreal.reconstruction.output import write_reconstruction
from fourreal.running import layout
from fourreal.running.bundle import bundle_paths
from fourreal.running.config import require
from fourreal.running.stage import write_metrics, write_run
from fourreal.sampling.precision import PRECISIONS, prepare_model, resolve_precision
from fourreal.training.data import to_uint8, to_unit

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
# A first frame whose pixels vary less than this (0-255 scale) is blank: no scene to orbit.
MIN_FIRST_FRAME_STD = 2.0


@dataclass
class VideoTo4DConfig:
    """Parameters of the ``video_to_4d`` stage and the ``fourreal to4d`` command.

    Attributes:
        input: a video file or a directory of frames (their first ``times`` frames become the
            fixed-view row) or an image (the base model first generates the row from it).
        base_model: ``train_base``'s model directory (freeze-time column; row from an image).
        model_4d: a 4D model directory (``finetune_4d``/``train_4d`` output).
        depth_model: ``train_depth``'s model directory or a pretrained TorchScript depth file.
        views, times: grid size; the freeze-time column has ``views`` frames, the row ``times``.
        height, width: frame size the models run at.
        fps: rate at which the input video is sampled.
        window: the 4D model's window (cells per side) for the sliding-window sampler; 0 = the
            window it was trained on (:func:`fourreal.sampling.sample_4d.resolve_window`).
        force_window: sample with a ``window`` the model was not trained on, with a warning
            instead of an error.
        chunk, overlap: the base model generates the column in chunks of ``chunk`` frames,
            each conditioned on the last ``overlap`` frames so far.
        steps, sampler, guidance: diffusion sampling (Euler or Heun steps, classifier-free
            guidance scale of the base model).
        sigma_max: the highest flow time the models are asked at (1: every one;
            :func:`fourreal.sampling.flow_solver.sample`).
        precision: the 4D model's arithmetic for the grid, as ``sample_4d.precision``
            (:mod:`fourreal.sampling.precision`: ``fp32``, ``bf16``, ``fp8`` or ``auto``); the
            base model's row and column are sampled in fp32 whatever it is.
        fov_deg: horizontal field of view of the assumed pinhole camera (degrees).
        background_depth: depth (relative to the median foreground depth) given to pixels the
            depth network calls background, so that whole real scenes are reconstructed.
        seed: sampling seed.
        mp4: also write the previews as mp4 videos (needs PyAV; PNG and HTML previews always).
    """

    input: str = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
    base_model: str = layout.BASE_MODEL
    model_4d: str = layout.model_4d("soft")
    depth_model: str = layout.DEPTH_MODEL
    views: int = 10
    times: int = 6
    height: int = 20
    width: int = 32
    fps: float = 8.0
    window: int = 0
    force_window: bool = False
    chunk: int = 6
    overlap: int = 2
    steps: int = 10
    sampler: str = "euler"
    sigma_max: float = 1.0
    guidance: float = 1.0
    precision: str = "fp32"
    fov_deg: float = 40.0
    background_depth: float = 1.5
    seed: int = 0
    mp4: bool = True

    def __post_init__(self) -> None:
        require(self.views >= 2, "views", "must be >= 2")
        require(self.times >= 2, "times", "must be >= 2")
        require(self.height % 4 == 0, "height", "must be a multiple of 4 (patch size)")
        require(self.width % 4 == 0, "width", "must be a multiple of 4 (patch size)")
        require(self.window == 0 or self.window >= 2, "window", "must be 0 (the model's training window) or >= 2")
        require(0 < self.overlap < self.chunk, "overlap", f"must be in [1, chunk = {self.chunk})")
        require(self.steps >= 1, "steps", "must be >= 1")
        require(self.sampler in ("euler", "heun"), "sampler", "must be euler or heun")
        require(0 < self.sigma_max <= 1, "sigma_max", "must be in (0, 1] (1: the model is asked at every flow time)")
        require(self.precision in PRECISIONS, "precision", f"must be one of {list(PRECISIONS)}")
        require(0 < self.fov_deg < 180, "fov_deg", "must be in (0, 180)")
        require(self.background_depth > 0, "background_depth", "must be > 0")


def read_image_or_video(path: str | Path, fps: float, height: int, width: int) -> tuple[np.ndarray, bool]:
    """Frames ``[N, H, W, 3]`` uint8 of an image (N = 1), a video sampled at ``fps`` or a
    directory of image files (every image in name order, one frame each), centre-cropped and
    resized, and whether it is a single image. Errors name the file."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise VideoReadError(f"{path}: a directory without image files ({', '.join(IMAGE_SUFFIXES)})")
        return np.concatenate([_read_image(p, height, width) for p in files]), False
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _read_image(path, height, width), True
    return read_video(path, fps, height, width), False


def _read_image(path: Path, height: int, width: int) -> np.ndarray:
    """One image file as ``[1, H, W, 3]`` uint8 RGB, centre-cropped and resized."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise VideoReadError(f"{path}: not a readable image; convert it to PNG or JPEG")
    return center_crop_resize(image[..., ::-1], height, width)[None]


def read_input(path: str | Path, cfg: VideoTo4DConfig) -> tuple[np.ndarray, bool]:
    """The input as uint8 frames ``[N, H, W, 3]`` at the model size (the first ``times`` of a
    video) and whether it is a single image. Errors name the file and the fix."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: no such file; set video_to_4d.input (or pass a path to `fourreal to4d`)")
    frames, is_image = read_image_or_video(path, cfg.fps, cfg.height, cfg.width)
    if not is_image and len(frames) < cfg.times:
        raise VideoReadError(f"{path}: {len(frames)} frames (videos are sampled at {cfg.fps:g} fps), {cfg.times} "
                             "needed; lower video_to_4d.times, raise video_to_4d.fps or give more frames")
    spread = float(frames[0].std())
    if spread < MIN_FIRST_FRAME_STD:
        raise VideoReadError(f"{path}: the first frame is blank (pixel std {spread:.2f} of 255; a fade-in?); the "
                             "freeze-time video is generated from it: trim the start (e.g. ffmpeg -ss 1 -i IN OUT)")
    return (frames if is_image else frames[: cfg.times]), is_image


def fixed_view_row(frames: np.ndarray, is_image: bool, base, cfg: VideoTo4DConfig) -> torch.Tensor:
    """The grid's first row ``[T, 3, H, W]`` in [-1, 1]: the video's frames, or a dynamic video
    generated by the base model from the image."""
    from fourreal.sampling.video_sampling import sample_from_first_frame

    if not is_image:
        return to_unit(frames.copy())
    first = to_unit(frames[:1].copy())
    return sample_from_first_frame(base, first, cfg.times, "dynamic", cfg.steps, cfg.sampler, cfg.guidance,
                                   cfg.seed, cfg.sigma_max)[0].cpu()


def freeze_time_column(first: torch.Tensor, base, cfg: VideoTo4DConfig) -> torch.Tensor:
    """The grid's first column ``[V, 3, H, W]``: a freeze-time video of the frame ``first
    [3, H, W]``, generated in chunks (the first frame is ``first`` itself)."""
    from fourreal.sampling.video_sampling import extend_autoregressively

    column = extend_autoregressively(base, first[None], cfg.views, cfg.chunk, cfg.overlap, "freeze_time",
                                     cfg.steps, cfg.sampler, cfg.guidance, cfg.seed + 1, cfg.sigma_max)[0].cpu()
    column[0] = first
    return column


def fill_background_depth(depth: np.ndarray, relative: float) -> np.ndarray:
    """Depth ``[..., H, W]`` with background pixels (0) set to ``relative`` times the median
    foreground depth (1 if the network found no foreground)."""
    fg = depth[depth > 0]
    far = relative * (float(np.median(fg)) if fg.size else 1.0)
    return np.where(depth > 0, depth, far).astype(np.float32)


def video_to_4d(cfg: VideoTo4DConfig, reconstruct_cfg, progress: bool = True) -> dict:
    """The whole path for ``cfg.input``. Returns ``row [T, H, W, 3]``, ``column [V, H, W, 3]``,
    ``grid [V, T, H, W, 3]`` (uint8), ``intrinsics [V, 3, 3]``, ``depth [V, T, H, W]``, the
    reconstruction (see :func:`fourreal.reconstruction.pipeline.reconstruct`) and ``timings`` (seconds)."""
    from fourreal.models.depth import load_depth_model, predict_depth
    from fourreal.reconstruction.pipeline import reconstruct
    from fourreal.sampling.grid_windows import sample_grid
    from fourreal.sampling.sample_4d import model_velocity, resolve_window, sampling_device
    from fourreal.training.model_files import load_model, load_model4d

    window = resolve_window(cfg.window, cfg.model_4d, force=cfg.force_window, key="video_to_4d.window",
                            force_key="video_to_4d.force_window")
    timings = {}
    start = time.perf_counter()
    device = sampling_device()
    precision = resolve_precision(cfg.precision, device, key="video_to_4d.precision")
    frames, is_image = read_input(cfg.input, cfg)
    base = load_model(cfg.base_model).to(device)
    model = prepare_model(load_model4d(cfg.model_4d).to(device).eval(), precision)
    depth_net = load_depth_model(cfg.depth_model)
    timings["load_s"] = time.perf_counter() - start

    start = time.perf_counter()
    row = fixed_view_row(frames, is_image, base, cfg)
    column = freeze_time_column(row[0], base, cfg)
    timings["base_model_s"] = time.perf_counter() - start

    start = time.perf_counter()

    with torch.no_grad():
        grid = sample_grid(model_velocity(model, precision), row.to(device), column.to(device), (window, window),
                           cfg.steps, cfg.sampler, cfg.seed, sigma_max=cfg.sigma_max)
    rgb = to_uint8(grid.cpu())
    timings["grid_s"] = time.perf_counter() - start

    start = time.perf_counter()
    v, t, h, w = rgb.shape[:4]
    depth = predict_depth(depth_net, rgb.reshape(-1, h, w, 3)).reshape(v, t, h, w)
    depth = fill_background_depth(depth, cfg.background_depth)
    Ks = np.repeat(pinhole(cfg.fov_deg, h, w).astype(np.float32)[None], v, axis=0)
    result = reconstruct(rgb, depth, Ks, reconstruct_cfg, progress=progress)
    timings["reconstruct_s"] = time.perf_counter() - start
    return {"row": to_uint8(row), "column": to_uint8(column), "grid": rgb, "intrinsics": Ks, "depth": depth,
            "is_image": is_image, "reconstruction": result, "timings": {k: round(s, 2) for k, s in timings.items()}}


RUNS = Path(layout.VIDEO_TO_4D_RUNS)  # where runs on inputs other than params.yaml's go


def runs_dir(path: str | Path) -> Path:
    """The default output directory of a run on the input ``path``: ``RUNS/<its name>``."""
    return RUNS / Path(path).stem


def with_bundle(cfg: VideoTo4DConfig, bundle: str | Path) -> VideoTo4DConfig:
    """``cfg`` with the base, 4D and depth models of the bundle ``bundle`` (``models/<name>``)."""
    parts = bundle_paths(bundle)
    return dataclasses.replace(cfg, base_model=str(parts["base"]), model_4d=str(parts["model_4d"]),
                               depth_model=str(parts["depth"]))


def headline(details: dict) -> dict:
    """The metrics of a run from its details: the reconstruction's PSNR and SSIM on held-out cells."""
    return {"psnr": details["heldout_psnr"], "ssim": details["heldout_ssim"]}


def run_video_to_4d(cfg: VideoTo4DConfig, reconstruct_cfg, out: str | Path) -> dict:
    """Run :func:`video_to_4d` and write its outputs under ``out``: ``grid.grid.npz`` (with
    depth and intrinsics), ``reconstruction/`` (for ``fourreal view``), ``previews/`` (the
    inputs, the grid's previews, the reconstruction's renders), ``details.json`` (the
    input, the grid's size and the reconstruction's scores), ``metrics.json`` (its headline:
    :func:`headline`) and ``run.json`` (timings); returns the details."""
    out = Path(out)
    result = video_to_4d(cfg, reconstruct_cfg)
    rgb, Ks = result["grid"], result["intrinsics"]
    grid = Grid(rgb=rgb, depth=result["depth"], intrinsics=Ks, meta={
        "kind": "generated", "source": str(cfg.input), "seed": cfg.seed, "fps": cfg.fps,
        "model": cfg.model_4d, "row_from_image": bool(result["is_image"])})
    out.mkdir(parents=True, exist_ok=True)
    save_grid(out / "grid.grid.npz", grid)
    with atomic_dir(out / "reconstruction") as rec, atomic_dir(out / "previews") as prev:
        write_reconstruction(result["reconstruction"], rgb, Ks, rec, prev, "reconstruction", reconstruct_cfg, cfg.fps,
                             cfg.mp4)
        inputs = np.zeros((2, max(cfg.views, cfg.times), *rgb.shape[2:]), np.uint8)
        inputs[0, : cfg.times], inputs[1, : cfg.views] = result["row"], result["column"]
        write_png(prev / "inputs.png", contact_sheet(inputs, 96))
        if cfg.mp4:
            write_mp4(prev / "freeze_time.mp4", result["column"].repeat(4, axis=1).repeat(4, axis=2), fps=cfg.fps)
        write_grid_previews(grid, prev, Path(cfg.input).stem, PreviewConfig(cell_height=96, mp4=cfg.mp4))
    rec = result["reconstruction"]
    details = {"input": str(cfg.input), "views": cfg.views, "times": cfg.times,
               **rec["scores"], "gaussians": rec["stats"]["final_points"]}
    write_metrics(out, headline(details), details)
    write_run(out, result["timings"])
    return details
