"""Previews a person can open: a contact-sheet PNG, an mp4 per row and per column, and a
self-contained HTML viewer with view and time sliders."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fourreal.formats.files import atomic_dir, atomic_path
from fourreal.formats.grid import Grid
from fourreal.running.config import require


@dataclass
class PreviewConfig:
    """Which previews a stage writes.

    Attributes:
        max_items: previews are written for the first ``max_items`` grids (or clips) only.
        cell_height: frames are upscaled (nearest) to at least this height for viewing.
        mp4: write an mp4 per row and per column of each grid.
        html: write the HTML viewer of each grid.
    """

    max_items: int = 4
    cell_height: int = 96
    mp4: bool = True
    html: bool = True

    def __post_init__(self) -> None:
        require(self.max_items >= 0, "max_items", "must be >= 0")
        require(8 <= self.cell_height <= 2048, "cell_height", "must be in [8, 2048]")


def _upscale(frames: np.ndarray, cell_height: int) -> np.ndarray:
    """Nearest-neighbour upscale of ``[..., H, W, 3]`` frames by an integer factor so that
    the height reaches ``cell_height``; sizes are kept even for video encoders."""
    h, w = frames.shape[-3:-1]
    k = max(1, int(np.ceil(cell_height / h)))
    out = frames.repeat(k, axis=-3).repeat(k, axis=-2)
    eh, ew = out.shape[-3] - out.shape[-3] % 2, out.shape[-2] - out.shape[-2] % 2
    return out[..., :eh, :ew, :]


def contact_sheet(frames: np.ndarray, cell_height: int = 96, gap: int = 2,
                  labels: tuple[str, str] | None = ("v", "t")) -> np.ndarray:
    """Tile ``[R, C, H, W, 3]`` uint8 frames into one image ``[H', W', 3]``.

    Rows are laid out top to bottom, columns left to right, with a ``gap``-pixel white
    border; with ``labels`` a margin names the rows and columns (``v0, v1, ...`` and
    ``t0, t1, ...`` by default).
    """
    if frames.ndim != 5 or frames.shape[-1] != 3:
        raise ValueError(f"contact_sheet expects [R, C, H, W, 3], got {frames.shape}")
    cells = _upscale(frames, cell_height)
    r, c, h, w, _ = cells.shape
    margin = 22 if labels else 0
    sheet = np.full((margin + r * (h + gap) + gap, margin + c * (w + gap) + gap, 3), 255, np.uint8)
    for i in range(r):
        for j in range(c):
            y, x = margin + gap + i * (h + gap), margin + gap + j * (w + gap)
            sheet[y : y + h, x : x + w] = cells[i, j]
    if labels:
        font = cv2.FONT_HERSHEY_SIMPLEX
        for i in range(r):
            cv2.putText(sheet, f"{labels[0]}{i}", (1, margin + gap + i * (h + gap) + h // 2 + 4), font, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
        for j in range(c):
            cv2.putText(sheet, f"{labels[1]}{j}", (margin + gap + j * (w + gap) + w // 2 - 6, 15), font, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    return sheet


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Write an RGB ``[H, W, 3]`` uint8 image as PNG, atomically."""
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(image[..., ::-1])):
            raise OSError(f"could not write {path}")


def write_mp4(path: str | Path, frames: np.ndarray, fps: float = 8.0, crf: int = 18, pix_fmt: str = "yuv420p") -> None:
    """Encode ``[N, H, W, 3]`` uint8 frames (H, W even) as an H.264 mp4, atomically, at
    quality ``crf`` (0 lossless in YUV, 18 visually clean) with chroma ``pix_fmt``.

    The same frames give the same bytes: x264's macroblock-tree rate control (``mbtree``)
    makes content-dependent decisions from memory it has not initialised (identical frames
    encoded twice in one process came out different), so it is off; at preview sizes it
    changes the quality imperceptibly. Without PyAV (the ``av`` package) it only prints a
    warning: PNG previews do not need it."""
    try:
        import av
    except ImportError:
        print(f"warning: PyAV is not installed, so {path} is not written (pip install av)", flush=True)
        return

    n, h, w, _ = frames.shape
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=max(1, round(fps)))
            stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
            stream.options = {"crf": str(crf), "preset": "veryfast", "x264-params": "mbtree=0"}
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


_VIEWER = """<!doctype html>
<html><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
 body { font-family: sans-serif; background: #1e1e1e; color: #ddd; margin: 16px; }
 img { image-rendering: pixelated; border: 1px solid #444; display: block; margin-bottom: 10px; }
 label { display: inline-block; width: 70px; } input[type=range] { width: 320px; vertical-align: middle; }
 button { margin-right: 6px; } .info { color: #999; font-size: 13px; margin-bottom: 8px; }
</style></head><body>
<h3>__TITLE__</h3>
<div class="info">Rows are fixed-view videos (play time); columns are freeze-time videos (play view).
Conditioning cells are outlined in orange.</div>
<img id="frame" width="__WIDTH__">
<div><label>view</label><input id="view" type="range" min="0" max="__VMAX__" value="0"> <span id="vlab"></span></div>
<div><label>time</label><input id="time" type="range" min="0" max="__TMAX__" value="0"> <span id="tlab"></span></div>
<div style="margin-top:8px"><button id="pt">play time</button><button id="pv">play view</button><button id="stop">stop</button>
fps <input id="fps" type="number" value="__FPS__" min="1" max="60" style="width:50px"></div>
<script>
const F = __FRAMES__; const C = __COND__;
const img = document.getElementById('frame'), vs = document.getElementById('view'), ts = document.getElementById('time');
let timer = null;
function show() { const v = +vs.value, t = +ts.value; img.src = 'data:image/jpeg;base64,' + F[v][t];
  img.style.outline = C[v][t] ? '3px solid orange' : 'none';
  document.getElementById('vlab').textContent = v; document.getElementById('tlab').textContent = t; }
function play(s) { clearInterval(timer); timer = setInterval(() => { s.value = (+s.value + 1) % (+s.max + 1); show(); },
  1000 / Math.max(1, +document.getElementById('fps').value)); }
vs.oninput = show; ts.oninput = show;
document.getElementById('pt').onclick = () => play(ts); document.getElementById('pv').onclick = () => play(vs);
document.getElementById('stop').onclick = () => clearInterval(timer);
show();
</script></body></html>
"""


def viewer_html(grid: Grid, title: str, cell_height: int = 256) -> str:
    """A single self-contained HTML page (frames embedded as JPEG) with view/time sliders."""
    cells = _upscale(grid.rgb, cell_height)
    frames = []
    for v in range(cells.shape[0]):
        row = []
        for t in range(cells.shape[1]):
            ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(cells[v, t, ..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 92])
            if not ok:
                raise OSError("JPEG encoding failed")
            row.append(base64.b64encode(buf.tobytes()).decode("ascii"))
        frames.append(row)
    fps = float(grid.meta.get("fps", 8))
    subs = {
        "__TITLE__": title,
        "__WIDTH__": str(cells.shape[3]),
        "__VMAX__": str(cells.shape[0] - 1),
        "__TMAX__": str(cells.shape[1] - 1),
        "__FPS__": str(round(fps)),
        "__FRAMES__": json.dumps(frames),
        "__COND__": json.dumps(grid.cond_mask.astype(int).tolist()),
    }
    html = _VIEWER
    for key, value in subs.items():
        html = html.replace(key, value)
    return html


def write_grid_previews(grid: Grid, out_dir: str | Path, name: str, cfg: PreviewConfig) -> list[Path]:
    """Write the previews of one grid under ``out_dir``; returns the paths written.

    ``name.png`` (contact sheet), ``name.html`` (viewer) and ``name/row_VV.mp4``,
    ``name/col_TT.mp4`` (fixed-view and freeze-time videos).
    """
    out_dir = Path(out_dir)
    written = [out_dir / f"{name}.png"]
    write_png(written[0], contact_sheet(grid.rgb, cfg.cell_height))
    if cfg.html:
        written.append(out_dir / f"{name}.html")
        with atomic_path(written[-1]) as tmp:
            tmp.write_text(viewer_html(grid, name, max(cfg.cell_height, 192)))
    if cfg.mp4:
        fps = float(grid.meta.get("fps", 8))
        cells = _upscale(grid.rgb, cfg.cell_height)
        with atomic_dir(out_dir / name) as tmp:
            for v in range(cells.shape[0]):
                write_mp4(tmp / f"row_{v:02d}.mp4", cells[v], fps)
            for t in range(cells.shape[1]):
                write_mp4(tmp / f"col_{t:02d}.mp4", cells[:, t], fps)
        written.append(out_dir / name)
    return written
