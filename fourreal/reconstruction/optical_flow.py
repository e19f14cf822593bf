"""Dense optical flow between two frames (OpenCV DIS): what reconstruction's tracking chains
through a freeze-time column and what the temporal-consistency metric warps with."""

from __future__ import annotations

import cv2
import numpy as np


def dense_flow(a: np.ndarray, b: np.ndarray, min_width: int = 256) -> np.ndarray:
    """Optical flow ``[H, W, 2]`` (pixels) from RGB uint8 frame ``a [H, W, 3]`` to ``b``.
    Small frames are upscaled to ``min_width`` for DIS and the flow scaled back."""
    h, w = a.shape[:2]
    scale = max(1.0, min_width / w)
    size = (int(round(w * scale)), int(round(h * scale)))
    ga = cv2.resize(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_LINEAR)
    gb = cv2.resize(cv2.cvtColor(b, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_LINEAR)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = dis.calc(ga, gb, None)
    return cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR) / scale
