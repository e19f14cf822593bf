"""Fréchet Video Distance with a pretrained I3D feature extractor loaded from a local
TorchScript file (the ``i3d_torchscript.pt`` used by StyleGAN-V and later FVD code); the
Fréchet distance itself needs no weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy import linalg

NA = "n/a (no weights)"


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """``|mu1 - mu2|^2 + Tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2))`` of two Gaussians."""
    covmean, _ = linalg.sqrtm(cov1 @ cov2, disp=False)
    if not np.isfinite(covmean).all():  # singular product: regularise as the reference code does
        eps = np.eye(len(cov1)) * 1e-6
        covmean = linalg.sqrtm((cov1 + eps) @ (cov2 + eps))
    covmean = covmean.real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean))


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and covariance ``[D, D]`` of ``features [N, D]`` (N >= 2)."""
    if len(features) < 2:
        raise ValueError(f"need at least 2 videos for a Fréchet distance, got {len(features)}")
    return features.mean(0), np.cov(features, rowvar=False)


def load_i3d(path: str | Path) -> torch.jit.ScriptModule | None:
    """The I3D TorchScript feature extractor at ``path``; None when ``path`` is empty (the
    metric is then reported as n/a). Clear errors for a missing or non-TorchScript file."""
    if not path:
        return None
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"I3D weights {path} not found; set evaluate.i3d_path to the i3d_torchscript.pt file "
                                "or to an empty string to skip FVD")
    try:
        return torch.jit.load(str(path), map_location="cpu").eval()
    except RuntimeError as exc:
        raise ValueError(f"{path}: not a TorchScript I3D model ({str(exc).splitlines()[0]})") from None


@torch.no_grad()
def i3d_features(i3d: torch.jit.ScriptModule, videos: np.ndarray, batch: int = 8) -> np.ndarray:
    """I3D features ``[N, D]`` of uint8 videos ``[N, T, H, W, 3]`` (scaled to [-1, 1],
    laid out ``[N, 3, T, H, W]``; the extractor resizes to its 224x224 input itself)."""
    out = []
    for i in range(0, len(videos), batch):
        x = torch.as_tensor(videos[i:i + batch]).permute(0, 4, 1, 2, 3).float() / 127.5 - 1
        out.append(i3d(x, rescale=False, resize=True, return_features=True).cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def fvd(i3d: torch.jit.ScriptModule | None, videos_a: np.ndarray, videos_b: np.ndarray) -> float | str:
    """FVD between two sets of uint8 videos ``[N, T, H, W, 3]``, or ``n/a`` without weights."""
    if i3d is None:
        return NA
    return frechet_distance(*feature_stats(i3d_features(i3d, videos_a)), *feature_stats(i3d_features(i3d, videos_b)))
