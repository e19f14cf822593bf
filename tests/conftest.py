"""Shared fixtures and helpers: synthetic videos (PyAV), the repository root, repository copies, output digests."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import av
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def load_benchmark(name: str) -> ModuleType:
    """The script ``benchmarks/<name>.py`` as a module (its sibling modules, e.g. ``anchors``,
    importable while it loads), for testing its logic on the CPU."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def pytest_collection_modifyitems(config, items):
    """Tests marked ``full`` (whole-pipeline builds) run only when ``-m`` names them."""
    if "full" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="a whole-pipeline build: run with -m full")
    for item in items:
        if "full" in item.keywords:
            item.add_marker(skip)


def moving_square_frames(n: int, height: int = 48, width: int = 80, seed: int = 0) -> np.ndarray:
    """``[n, height, width, 3]`` uint8: a textured background with a square moving right."""
    rng = np.random.default_rng(seed)
    background = rng.integers(40, 200, size=(height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    background = background.repeat(8, 0).repeat(8, 1)[:height, :width]
    frames = np.repeat(background[None], n, axis=0).copy()
    for i in range(n):
        x = (2 * i) % (width - 12)
        frames[i, 10:22, x : x + 12] = (255, 40, 40)
    return frames


def write_video(path: Path, frames: np.ndarray, fps: int = 24, codec: str = "mpeg4") -> Path:
    """Encode ``[N, H, W, 3]`` uint8 frames to ``path`` (container chosen by suffix)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture
def video_dir(tmp_path: Path) -> Path:
    """A directory with two readable videos (48 frames at 24 fps, 2 s) and one corrupt file."""
    d = tmp_path / "videos"
    d.mkdir()
    write_video(d / "a.mp4", moving_square_frames(48, seed=1))
    write_video(d / "b.avi", moving_square_frames(48, seed=2))
    good = (d / "a.mp4").read_bytes()
    (d / "broken.mp4").write_bytes(good[:200] + bytes(range(256)) * 4)
    (d / "notes.txt").write_text("not a video")
    return d


def copy_repo(dst: Path) -> Path:
    """A copy of this repository's tracked and unignored files under ``dst``, as a fresh git repository."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dst / name)
    subprocess.run(["git", "init", "-q"], cwd=dst, check=True)
    return dst


def content_digests(root) -> dict[str, str]:
    """SHA-256 of the arrays of every grid and of the tensors of every weight file under
    ``root`` (file containers may carry timestamps; their contents must not differ)."""
    import hashlib

    import numpy as np
    from safetensors.numpy import load_file

    out = {}
    for path in sorted(root.rglob("*.grid.npz")) + sorted(root.rglob("*.safetensors")):
        arrays = load_file(str(path)) if path.suffix == ".safetensors" else dict(np.load(path))
        h = hashlib.sha256()
        for key in sorted(arrays):
            h.update(key.encode() + np.ascontiguousarray(arrays[key]).tobytes())
        out[str(path.relative_to(root))] = h.hexdigest()
    return out


def textured_square_grid(views: int, times: int, height: int, width: int):
    """A still textured square on a flat background, one pixel further right in each view, at
    depth 2: ``rgb [V, T, H, W, 3]`` uint8, ``depth [V, T, H, W]`` (0 off the square) and the
    views' intrinsics ``[V, 3, 3]`` (fitted to 16x24 frames)."""
    rng = np.random.default_rng(0)
    rgb = np.full((views, times, height, width, 3), 120, np.uint8)
    depth = np.zeros((views, times, height, width), np.float32)
    patch = rng.integers(0, 255, (8, 12, 3), dtype=np.uint8)
    for i in range(views):
        rgb[i, :, 4:12, 5 + i:17 + i] = patch
        depth[i, :, 4:12, 5 + i:17 + i] = 2.0
    Ks = np.repeat(np.array([[[20.0, 0, 12], [0, 20.0, 8], [0, 0, 1]]], np.float32), views, 0)
    return rgb, depth, Ks
