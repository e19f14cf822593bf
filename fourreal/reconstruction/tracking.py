"""Dense 2D tracking across the frames of a video (a freeze-time column of a grid):
optical flow (OpenCV DIS) chained frame to frame, with a forward-backward consistency
check on every link; a track is dropped from the first link that fails. It seeds the
canonical cloud of :mod:`fourreal.reconstruction.init`."""

from __future__ import annotations

import cv2
import numpy as np

from fourreal.reconstruction.geometry import inside
from fourreal.reconstruction.optical_flow import dense_flow


def _sample_flow(flow: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear flow vectors ``[N, 2]`` at pixel positions ``uv [N, 2]`` (centres at +0.5)."""
    if len(uv) == 0:  # OpenCV refuses an empty map
        return np.zeros((0, 2))
    mapx = (uv[:, 0] - 0.5).astype(np.float32).reshape(-1, 1)
    mapy = (uv[:, 1] - 0.5).astype(np.float32).reshape(-1, 1)
    out = cv2.remap(flow, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(-1, 2).astype(np.float64)


def track(frames: np.ndarray, key: int, uv: np.ndarray, fb_threshold: float = 1.0,
          flows: dict[tuple[int, int], np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Follow pixels ``uv [N, 2]`` of frame ``key`` through ``frames [F, H, W, 3]`` (uint8).

    Returns ``positions [F, N, 2]`` and ``valid [F, N]``: a link ``a -> b`` keeps a track when
    the forward flow, then the backward flow, returns within ``fb_threshold`` pixels and the
    point stays in the image. ``flows`` caches flows by ``(a, b)`` across calls.
    """
    f, h, w = frames.shape[:3]
    flows = {} if flows is None else flows

    def flow(a: int, b: int) -> np.ndarray:
        """Flow ``[H, W, 2]`` from frame ``a`` to ``b``, computed once."""
        if (a, b) not in flows:
            flows[(a, b)] = dense_flow(frames[a], frames[b])
        return flows[(a, b)]

    pos = np.zeros((f, len(uv), 2))
    valid = np.zeros((f, len(uv)), bool)
    pos[key], valid[key] = uv, True
    for step in (1, -1):
        cur, ok = uv.copy(), np.ones(len(uv), bool)
        a = key
        while 0 <= a + step < f:
            b = a + step
            nxt = cur + _sample_flow(flow(a, b), cur)
            back = nxt + _sample_flow(flow(b, a), nxt)
            ok &= inside(nxt, h, w) & (np.linalg.norm(back - cur, axis=1) < fb_threshold)
            pos[b], valid[b] = nxt, ok
            cur, a = nxt, b
    return pos, valid
