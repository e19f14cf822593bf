import re

import av
import cv2
import numpy as np

from fourreal.formats.grid import Grid
from fourreal.formats.preview import PreviewConfig, contact_sheet, write_grid_previews, write_mp4


def colored_grid(v=2, t=3, h=8, w=12) -> Grid:
    rgb = np.zeros((v, t, h, w, 3), np.uint8)
    for i in range(v):
        for j in range(t):
            rgb[i, j] = (40 * i + 20, 60 * j + 10, 200)
    return Grid(rgb=rgb, meta={"fps": 4})


def test_contact_sheet_places_cells_in_order():
    grid = colored_grid()
    sheet = contact_sheet(grid.rgb, cell_height=16, gap=2, labels=None)
    # cells upscaled x2 to 16x24, with 2-pixel gaps
    assert sheet.shape == (2 + 2 * 18, 2 + 3 * 26, 3)
    for i in range(2):
        for j in range(3):
            y, x = 2 + i * 18 + 8, 2 + j * 26 + 12
            assert tuple(sheet[y, x]) == tuple(grid.rgb[i, j, 0, 0])
    assert tuple(sheet[0, 0]) == (255, 255, 255)


def test_grid_previews_png_mp4_and_viewer(tmp_path):
    grid = colored_grid()
    written = write_grid_previews(grid, tmp_path, "g", PreviewConfig(cell_height=16))
    assert {p.name for p in written} == {"g.png", "g.html", "g"}
    png = cv2.imread(str(tmp_path / "g.png"))
    assert png is not None and png.shape[0] > 32
    rows = sorted(p.name for p in (tmp_path / "g").glob("row_*.mp4"))
    cols = sorted(p.name for p in (tmp_path / "g").glob("col_*.mp4"))
    assert rows == ["row_00.mp4", "row_01.mp4"] and cols == ["col_00.mp4", "col_01.mp4", "col_02.mp4"]
    with av.open(str(tmp_path / "g" / "col_01.mp4")) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 2 and frames[0].shape == (16, 24, 3)
    # column 1 = (v0,t1) then (v1,t1): red channel steps by 40, within codec error
    assert abs(int(frames[1][8, 12, 0]) - int(frames[0][8, 12, 0]) - 40) < 12
    html = (tmp_path / "g.html").read_text()
    assert 'id="view"' in html and 'id="time"' in html and 'max="1"' in html and 'max="2"' in html
    assert len(re.findall(r'"/9j/', html)) == 6  # six embedded JPEG frames
    assert not list(tmp_path.glob(".*tmp*"))


def test_mp4_bytes_are_the_same_for_the_same_frames(tmp_path):
    # Noisy blocky frames like a tiny generated grid's, upscaled for a preview: with x264's
    # macroblock-tree rate control these came out different from encode to encode.
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (20, 32, 3)).astype(float)
    frames = np.stack([np.clip(base + rng.normal(0, 25, base.shape) * k, 0, 255) for k in range(6)]).astype(np.uint8)
    frames = frames.repeat(5, axis=1).repeat(5, axis=2)
    heap = []
    encoded = set()
    for i in range(12):
        heap.append(rng.bytes(1 << 20))  # other memory contents between encodes, as in a long stage
        write_mp4(tmp_path / f"{i}.mp4", frames)
        encoded.add((tmp_path / f"{i}.mp4").read_bytes())
    assert len(encoded) == 1


def test_mp4_is_left_out_with_a_warning_without_pyav(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "av", None)  # importing av now fails
    write_mp4(tmp_path / "x.mp4", np.zeros((2, 8, 8, 3), np.uint8))
    assert not (tmp_path / "x.mp4").exists()
    assert "PyAV is not installed" in capsys.readouterr().out
