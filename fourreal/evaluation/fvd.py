"""Metrics that need pretrained networks, each loaded from a local TorchScript file and
reported as n/a without one: Fréchet Video Distance with the I3D feature extractor (the
``i3d_torchscript.pt`` used by StyleGAN-V and later FVD code; the Fréchet distance itself
needs no weights), a CLIP image score and VideoScore."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy import linalg

from fourreal.formats.checkpoint import CheckpointError, load_torchscript
from fourreal.training.data import to_unit

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
    return load_torchscript(path, "I3D model", "set evaluate.i3d_path to i3d_torchscript.pt or to \"\" to skip FVD")


@torch.no_grad()
def i3d_features(i3d: torch.jit.ScriptModule, videos: np.ndarray, batch: int = 8) -> np.ndarray:
    """I3D features ``[N, D]`` of uint8 videos ``[N, T, H, W, 3]`` (scaled to [-1, 1],
    laid out ``[N, 3, T, H, W]``; the extractor resizes to its 224x224 input itself)."""
    out = []
    for i in range(0, len(videos), batch):
        x = to_unit(videos[i:i + batch]).transpose(1, 2)
        out.append(i3d(x, rescale=False, resize=True, return_features=True).cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def fvd(i3d: torch.jit.ScriptModule | None, videos_a: np.ndarray, videos_b: np.ndarray) -> float | str:
    """FVD between two sets of uint8 videos ``[N, T, H, W, 3]``, or ``n/a`` without weights."""
    if i3d is None:
        return NA
    return frechet_distance(*feature_stats(i3d_features(i3d, videos_a)), *feature_stats(i3d_features(i3d, videos_b)))


def load_clip_image_encoder(path: str | Path) -> torch.jit.ScriptModule | None:
    """A CLIP model from a local TorchScript file with an ``encode_image`` method (OpenAI's
    released ``ViT-B-32.pt`` archives are of this kind); None when ``path`` is empty."""
    if not path:
        return None
    model = load_torchscript(path, "CLIP model", "set evaluate.clip_path to a TorchScript CLIP file or to \"\" to skip it")
    if not hasattr(model, "encode_image"):
        raise CheckpointError(f"{path}: the TorchScript model has no encode_image method; export CLIP with it")
    return model


_CLIP_MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
_CLIP_STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


@torch.no_grad()
def clip_image_similarity(clip: torch.jit.ScriptModule | None, frames: np.ndarray, references: np.ndarray,
                          size: int = 224) -> float | str:
    """CLIP image-image score: mean cosine similarity (x100) between the CLIP embeddings of
    uint8 ``frames [N, H, W, 3]`` and the mean embedding of ``references [M, H, W, 3]`` (the
    grid's given frames; grids carry no text prompt). ``n/a`` without weights."""
    if clip is None:
        return NA

    def embed(x: np.ndarray) -> torch.Tensor:
        t = torch.as_tensor(x).permute(0, 3, 1, 2).float() / 255
        t = torch.nn.functional.interpolate(t, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
        e = clip.encode_image((t - _CLIP_MEAN) / _CLIP_STD).float()
        return e / e.norm(dim=-1, keepdim=True)

    ref = embed(references).mean(0)
    ref = ref / ref.norm()
    return float((embed(frames) @ ref).mean() * 100)


# VideoScore's five aspects, in the order its regression head outputs them.
VIDEOSCORE_ASPECTS = ("visual_quality", "temporal_consistency", "dynamic_degree", "text_alignment", "factual_consistency")
# The aspects the paper reports (text alignment and dynamic degree depend on the inputs, not the generated frames).
VIDEOSCORE_KEPT = ("visual_quality", "temporal_consistency", "factual_consistency")


def load_videoscore(path: str | Path) -> torch.jit.ScriptModule | None:
    """VideoScore (TIGER-Lab) exported to TorchScript at ``path``: ``forward(frames)`` takes
    ``[N, T, 3, H, W]`` float frames in [0, 1] (it does its own resizing and normalisation)
    and returns ``[N, 5]`` aspect scores in :data:`VIDEOSCORE_ASPECTS` order. None when
    ``path`` is empty (the metric is then reported as n/a)."""
    if not path:
        return None
    return load_torchscript(path, "VideoScore model",
                            "set evaluate.videoscore_path to a TorchScript export of VideoScore or to \"\" to skip it")


@torch.no_grad()
def videoscore(model: torch.jit.ScriptModule | None, videos: np.ndarray, batch: int = 4) -> dict[str, float] | str:
    """Mean VideoScore aspects of uint8 videos ``[N, T, H, W, 3]``: a dict with the kept
    aspects (``visual_quality``, ``temporal_consistency``, ``factual_consistency``) and
    their mean (``mean``), or ``n/a`` without weights."""
    if model is None:
        return NA
    out = []
    for i in range(0, len(videos), batch):
        x = torch.as_tensor(videos[i:i + batch]).permute(0, 1, 4, 2, 3).float() / 255
        scores = model(x).float()
        if scores.ndim != 2 or scores.shape[1] != len(VIDEOSCORE_ASPECTS):
            raise ValueError(f"VideoScore model returned shape {tuple(scores.shape)}; expected [N, {len(VIDEOSCORE_ASPECTS)}]")
        out.append(scores.cpu().numpy())
    mean = np.concatenate(out).mean(0)
    kept = {a: float(mean[VIDEOSCORE_ASPECTS.index(a)]) for a in VIDEOSCORE_KEPT}
    return {**kept, "mean": float(np.mean(list(kept.values())))}
