"""Render animated assets into 4D grids with BlenderProc (paper Sec. 3.3: multi-view videos of
animated Objaverse assets on a circular camera path).

For one asset: ``V`` cameras on a circular arc around it and ``T`` animation times; cell
``(v, t)`` is camera ``v`` at time ``t``, with RGB, metric depth (camera z) and cameras.
Each asset renders in its own worker process (``python -m fourreal.data_making.render JOB.json``), so
bpy's global state and its crash at exit stay contained. :func:`render_assets` runs the
workers in parallel, skips assets whose grid already exists with the same render key
(resume after an interruption), and reports failures per asset without stopping the rest.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm import tqdm

from fourreal.formats.grid import Grid, GridFormatError, load_grid, save_grid
from fourreal.formats.preview import PreviewConfig
from fourreal.reconstruction.geometry import pinhole
from fourreal.running.config import from_dict, require
from fourreal.training.faults import fault_point

log = logging.getLogger(__name__)


@dataclass
class RenderConfig:
    """Parameters of the ``render`` stage.

    Attributes:
        num_views, num_times: grid size ``V x T``.
        height, width: image size in pixels.
        fov_deg: horizontal field of view.
        radius: camera distance from the asset's center, in units of the asset's bounding
            radius (every asset is centered and scaled to radius 1).
        elevation_deg: camera elevation above the asset's center.
        arc_deg: angle spanned by the ``V`` cameras; 360 places them around a full circle.
        random_azimuth: start the arc at a random azimuth per asset (else at 0).
        frame_step: animation frames (at the asset's frame rate) between consecutive times.
        samples: Cycles samples per pixel.
        light_energy: range of the sun's strength, sampled per asset.
        background: range of the plain background's gray level, sampled per asset (0-1);
            the background also lights the asset.
        seed: base seed of the per-asset randomization (azimuth, light, background, start time).
        workers: assets rendered in parallel (one process each; with ``executor: dask`` the
            number of processes of the local Dask cluster).
        executor: ``processes`` (worker processes on this machine) or ``dask`` (a Prefect
            flow with one task per batch of assets on a Dask cluster: a local one, or the
            scheduler at ``dask_address``; its workers must see the same file system).
        dask_address: scheduler address such as ``tcp://10.0.0.5:8786``; empty = local cluster.
        batch_size: assets per Prefect task with ``executor: dask``.
        timeout_s: a worker running longer than this is killed and its asset counted as failed.
        clip_rows, clip_cols: how many rows (dynamic clips) and columns (freeze-time clips),
            evenly spaced, of each training grid are written as clips for the base video
            model (at most V and T); the diagonal (camera and time moving together) is also
            written as a dynamic clip.
        preview: previews of the first grids.
    """

    num_views: int = 8
    num_times: int = 8
    height: int = 36
    width: int = 64
    fov_deg: float = 50.0
    radius: float = 2.8
    elevation_deg: float = 15.0
    arc_deg: float = 90.0
    random_azimuth: bool = True
    frame_step: int = 3
    samples: int = 16
    light_energy: tuple[float, float] = (2.0, 5.0)
    background: tuple[float, float] = (0.3, 0.8)
    seed: int = 0
    workers: int = 2
    executor: Literal["processes", "dask"] = "processes"
    dask_address: str = ""
    batch_size: int = 4
    timeout_s: int = 600
    clip_rows: int = 2
    clip_cols: int = 2
    preview: PreviewConfig = field(default_factory=lambda: PreviewConfig(cell_height=72))

    def __post_init__(self) -> None:
        require(self.num_views >= 2, "num_views", "must be >= 2")
        require(self.num_times >= 1, "num_times", "must be >= 1")
        require(self.height % 2 == 0 and self.height >= 8, "height", "must be even and >= 8")
        require(self.width % 2 == 0 and self.width >= 8, "width", "must be even and >= 8")
        require(1 <= self.fov_deg <= 170, "fov_deg", "must be in [1, 170]")
        require(self.radius > 1.0, "radius", "must be > 1 (the asset's bounding radius)")
        require(-89 <= self.elevation_deg <= 89, "elevation_deg", "must be in [-89, 89]")
        require(0 < self.arc_deg <= 360, "arc_deg", "must be in (0, 360]")
        require(self.frame_step >= 1, "frame_step", "must be >= 1")
        require(self.samples >= 1, "samples", "must be >= 1")
        require(0 <= self.light_energy[0] <= self.light_energy[1], "light_energy", "must be [low, high] with 0 <= low <= high")
        require(0 <= self.background[0] <= self.background[1] <= 1, "background", "must be [low, high] within [0, 1]")
        require(self.workers >= 1, "workers", "must be >= 1")
        require(self.batch_size >= 1, "batch_size", "must be >= 1")
        require(self.timeout_s >= 10, "timeout_s", "must be >= 10")
        require(self.clip_rows >= 0, "clip_rows", "must be >= 0")
        require(self.clip_cols >= 0, "clip_cols", "must be >= 0")


def orbit_cameras(cfg: RenderConfig, azimuth0_deg: float) -> np.ndarray:
    """Camera-to-world matrices ``[V, 4, 4]`` (OpenCV axes) on a circular arc around the
    origin, world z up, all looking at the origin."""
    v = cfg.num_views
    span = cfg.arc_deg * (np.arange(v) / v if cfg.arc_deg >= 360 else np.arange(v) / (v - 1))
    az = np.deg2rad(azimuth0_deg + span)
    el = np.deg2rad(cfg.elevation_deg)
    pos = cfg.radius * np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.full(v, np.sin(el))], -1)
    out = np.tile(np.eye(4), (v, 1, 1))
    for i, p in enumerate(pos):
        z = -p / np.linalg.norm(p)
        x = np.cross(z, [0.0, 0.0, 1.0])
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        out[i, :3, :3] = np.stack([x, y, z], axis=1)
        out[i, :3, 3] = p
    return out


def animation_frames(frame_range: tuple[float, float], num_times: int, step: int, rng: np.random.Generator) -> list[int]:
    """``num_times`` frames ``start + t * step`` inside ``frame_range``, the start drawn at
    random where the animation is longer than the window (else its first frame)."""
    lo, hi = int(np.ceil(frame_range[0])), int(np.floor(frame_range[1]))
    latest = hi - (num_times - 1) * step
    start = int(rng.integers(lo, latest + 1)) if latest > lo else lo
    return [start + t * step for t in range(num_times)]


def render_key(cfg: RenderConfig, asset_file: Path) -> str:
    """Hash of everything a grid depends on (render params, the asset file's bytes and the
    source of the rendering code): an existing grid with the same key needs no re-rendering."""
    how = ("workers", "executor", "dask_address", "batch_size", "timeout_s", "preview", "clip_rows", "clip_cols")
    h = hashlib.sha256(json.dumps({k: v for k, v in asdict(cfg).items() if k not in how}, sort_keys=True).encode())
    h.update(Path(asset_file).read_bytes())
    h.update(_rendering_code().encode())
    return h.hexdigest()[:16]


@functools.cache
def _rendering_code() -> str:
    """Fingerprint of this module's source and of what it imports, read once per process
    (every asset's render key includes it)."""
    from fourreal.running.provenance import code_fingerprint

    return code_fingerprint(__file__)


def asset_seed(seed: int, name: str) -> list[int]:
    """Seed sequence of one asset's randomization: depends only on the seed and its name."""
    return [seed, int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)]


# --- inside the worker process (needs bpy) -------------------------------------------------

def _normalize(bpy, objects: list, frames: list[int]) -> dict:
    """Center the asset at the origin and scale it to bounding radius 1 over the rendered
    frames, by parenting its root objects to one scaled empty."""
    from fourreal.data_making.blender import world_bounds

    los, his = [], []
    for f in frames:
        bpy.context.scene.frame_set(f)
        lo, hi = world_bounds(objects)
        los.append(lo)
        his.append(hi)
    lo, hi = np.min(los, 0), np.max(his, 0)
    center, radius = (lo + hi) / 2, max(np.linalg.norm(hi - lo) / 2, 1e-6)
    root = bpy.data.objects.new("fourreal_normalizer", None)
    bpy.context.scene.collection.objects.link(root)
    for obj in list(bpy.data.objects):
        if obj.parent is None and obj is not root and obj.type not in ("CAMERA", "LIGHT"):
            obj.parent = root
    root.scale = (1 / radius,) * 3
    root.location = tuple(-center / radius)
    return {"center": center.tolist(), "scale": 1 / radius}


def render_asset(glb: Path, cfg: RenderConfig, seed: list[int], allow_static: bool) -> Grid:
    """Render one asset into a grid (runs inside a worker process; needs bpy)."""
    import cv2

    from fourreal.data_making import blender

    rng = np.random.default_rng(seed)
    api = blender.start()
    import bpy

    objects = blender.import_glb(glb)
    if not any(o.type == "MESH" for o in objects):
        raise RuntimeError(f"{glb}: no visible mesh to render")
    actions = blender.playing_actions()
    if actions:
        frame_range = (min(a.frame_range[0] for a in actions), max(a.frame_range[1] for a in actions))
        frames = animation_frames(frame_range, cfg.num_times, cfg.frame_step, rng)
    elif allow_static:
        frame_range, frames = (0.0, 0.0), [0] * cfg.num_times
    else:
        raise RuntimeError(f"{glb}: has no animation")
    norm = _normalize(bpy, objects, sorted(set(frames)))

    scene = bpy.context.scene
    world = scene.world
    world.use_nodes = True
    gray = float(rng.uniform(*cfg.background))
    tint = rng.uniform(-0.05, 0.05, 3)
    world.node_tree.nodes["Background"].inputs[0].default_value = (*np.clip(gray + tint, 0, 1), 1.0)
    sun = api.types.Light()
    sun.set_type("SUN")
    sun.set_energy(float(rng.uniform(*cfg.light_energy)))
    sun.set_rotation_euler([float(rng.uniform(0.2, 0.9)), 0.0, float(rng.uniform(0, 2 * np.pi))])

    K = pinhole(cfg.fov_deg, cfg.height, cfg.width)
    azimuth0 = float(rng.uniform(0, 360)) if cfg.random_azimuth else 0.0
    c2w = orbit_cameras(cfg, azimuth0)
    api.camera.set_intrinsics_from_K_matrix(K, cfg.width, cfg.height)
    api.renderer.set_max_amount_of_samples(cfg.samples)
    api.renderer.set_noise_threshold(0)
    api.renderer.set_denoiser(None)
    api.renderer.enable_depth_output(activate_antialiasing=False)
    scene.render.fps = scene.render.fps or 24

    step = frames[1] - frames[0] if len(frames) > 1 and frames[1] != frames[0] else 1
    rgb = np.zeros((cfg.num_views, cfg.num_times, cfg.height, cfg.width, 3), np.uint8)
    depth = np.zeros((cfg.num_views, cfg.num_times, cfg.height, cfg.width), np.float32)
    for v in range(cfg.num_views):
        scene.camera.matrix_world = _matrix(c2w[v] @ blender.CV_TO_BLENDER)
        scene.frame_start, scene.frame_step = frames[0], step
        scene.frame_end = frames[-1] + 1
        api.renderer.render(output_dir=api.temp_dir, return_data=False)  # files are reused by every view
        for t, f in enumerate(frames):
            color = cv2.imread(str(Path(api.temp_dir) / f"rgb_{f:04d}.png"), cv2.IMREAD_COLOR)
            if color is None:
                raise RuntimeError(f"{glb}: Blender wrote no image for view {v}, frame {f}")
            rgb[v, t] = color[..., ::-1]
            z = blender.read_image_float(Path(api.temp_dir) / f"depth_{f:04d}.exr")[..., 0]
            depth[v, t] = np.where(z < 1e5, z, 0.0)
    meta = {
        "kind": "render", "source": glb.stem, "fps": float(scene.render.fps) / step,
        "animation_frames": frames, "animation_range": list(frame_range), "animated": bool(actions),
        "normalization": norm, "azimuth0_deg": azimuth0,
    }
    return Grid(rgb=rgb, depth=depth, intrinsics=np.tile(K, (cfg.num_views, 1, 1)).astype(np.float32),
                cam_to_world=np.repeat(c2w[:, None], cfg.num_times, axis=1).astype(np.float32), meta=meta)


def _matrix(m: np.ndarray):
    from mathutils import Matrix

    return Matrix(m.tolist())


def worker_main(job_file: str) -> None:
    """Entry of a render worker: read the job, render, write the grid, exit hard."""
    from fourreal.data_making.blender import exit_worker

    job = json.loads(Path(job_file).read_text())
    try:
        cfg = from_dict(RenderConfig, job["config"], "render")
        grid = render_asset(Path(job["asset"]), cfg, job["seed"], job["allow_static"])
        grid.meta.update(name=job["name"], split=job["split"], render_key=job["key"], seed=job["seed"])
        save_grid(job["out"], grid)
    except Exception as exc:  # reported to the parent through the exit code and stderr
        message = str(exc).strip().replace("\n", " ")
        if job["asset"] not in message:
            message = f"{job['asset']}: {message}"
        print(f"RENDER-ERROR: {message}", file=sys.stderr, flush=True)
        exit_worker(3)
    exit_worker(0)


# --- in the parent process -----------------------------------------------------------------

@dataclass
class RenderJob:
    """One asset to render: where it is, where its grid goes, and its identity."""

    name: str
    asset: Path
    out: Path
    split: str
    allow_static: bool


def is_done(job: RenderJob, key: str) -> bool:
    """True if the job's grid exists, is readable, and was made with the same render key."""
    if not job.out.is_file():
        return False
    try:
        return load_grid(job.out).meta.get("render_key") == key
    except GridFormatError:
        return False


def _run_worker(job: RenderJob, cfg: RenderConfig, key: str) -> tuple[str, str | None]:
    spec = {"name": job.name, "asset": str(job.asset), "out": str(job.out), "split": job.split,
            "allow_static": job.allow_static, "key": key, "seed": asset_seed(cfg.seed, job.name),
            "config": asdict(cfg)}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    try:
        proc = subprocess.run([sys.executable, "-m", "fourreal.data_making.render", f.name], capture_output=True, text=True,
                              timeout=cfg.timeout_s, env={**os.environ, "PYTHONHASHSEED": "0"})
    except subprocess.TimeoutExpired:
        return job.name, f"timed out after {cfg.timeout_s} s (raise render.timeout_s)"
    finally:
        Path(f.name).unlink(missing_ok=True)
    if proc.returncode != 0 or not job.out.is_file():
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("RENDER-ERROR:")]
        reason = lines[-1].removeprefix("RENDER-ERROR: ") if lines else f"worker exited {proc.returncode}: {proc.stderr.strip()[-400:]}"
        return job.name, reason
    return job.name, None


def render_batch(batch: list[RenderJob], cfg: RenderConfig, keys: dict[str, str]) -> list[tuple[str, str | None]]:
    """Render a batch of jobs one after another; ``[(name, error or None)]``."""
    return [_run_worker(job, cfg, keys[job.name]) for job in batch]


def render_assets(jobs: list[RenderJob], cfg: RenderConfig) -> tuple[list[str], list[str], dict[str, str]]:
    """Render every job not already done, with a progress bar: ``cfg.workers`` worker
    processes at a time, or batches of ``cfg.batch_size`` on Dask (``executor: dask``).

    Returns ``(rendered, reused, failed)``: names rendered now, names whose grids were
    already complete, and ``{name: reason}`` of failures (logged, never fatal here).
    """
    keys = {job.name: render_key(cfg, job.asset) for job in jobs}
    todo = [j for j in jobs if not is_done(j, keys[j.name])]
    reused = [j.name for j in jobs if j not in todo]
    with tqdm(total=len(todo), desc="rendering assets", unit="asset") as bar:
        if cfg.executor == "dask" and todo:
            batches = [todo[i : i + cfg.batch_size] for i in range(0, len(todo), cfg.batch_size)]
            from fourreal.data_making.fanout import render_on_dask

            results = render_on_dask(batches, cfg, keys)
            bar.update(len(results))
        else:
            results = []
            with ThreadPoolExecutor(max_workers=cfg.workers) as pool:
                for fut in as_completed([pool.submit(_run_worker, j, cfg, keys[j.name]) for j in todo]):
                    results.append(fut.result())
                    fault_point("grid_rendered")
                    bar.update(1)
    failed = {name: error for name, error in results if error}
    for name, error in failed.items():
        log.warning("asset %s failed: %s", name, error)
    rendered = sorted(name for name, error in results if not error)
    return rendered, sorted(reused), failed

if __name__ == "__main__":
    worker_main(sys.argv[1])
