"""The paper's ablation tables (Sec. 4.2-4.3) for the sampled 4D variants.

Table 1 (quality and temporal consistency, along the time axis = rows and the view axis =
columns): FVD against real videos and against the test inputs (I3D weights from a local
path), CLIP score and VideoScore (weights; reported n/a without them), the optical-flow
warping error, and what the paper could not measure: PSNR/SSIM against the rendered truth.
Table 2 (multi-view consistency of the columns): the share of keypoints matched within
several epipolar thresholds (the role of GIM-confidence) and COLMAP structure from motion
with the grids' intrinsics (the role of Dust3R-confidence).
"""

from __future__ import annotations

import csv
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fourreal.evaluation.consistency import THRESHOLDS, matching_consistency, sfm_consistency, warp_error
from fourreal.evaluation.fvd import NA, clip_image_similarity, fvd, videoscore
from fourreal.running import layout
from fourreal.running.config import require

# The paper's row labels, in its order, by sample_4d variant name.
VARIANT_LABELS = {
    "sequential_free": "Sequential w/o training",
    "sequential": "Sequential (trained)",
    "hard_free": "Parallel hard w/o training",
    "soft_free": "Parallel soft w/o training",
    "hard": "Parallel hard",
    "soft_pseudo_only": "Parallel soft w/o render fine-tuning",
    "soft": "Parallel soft (full)",
    "soft_all": "Parallel soft, all weights trained",
    "4real": "4Real (optimisation + SDS)",
    "truth": "Rendered ground truth",
}


@dataclass
class EvaluateConfig:
    """Parameters of the ``evaluate`` stage.

    Attributes:
        samples: ``sample_4d``'s output directory (one grid directory per variant, ``scores.json``).
        variants: the variants to tabulate, in table order.
        baselines: directories laid out like ``samples`` (``scores.json`` + one grid
            directory per variant), e.g. ``baseline_4real``'s; their variants follow.
        thresholds: epipolar thresholds (pixels) of the matching share.
        i3d_path: I3D TorchScript file for FVD ("" reports n/a).
        clip_path: CLIP TorchScript file (with ``encode_image``) for the CLIP score ("" reports n/a).
        videoscore_path: VideoScore TorchScript file (``[N, T, 3, H, W]`` -> ``[N, 5]``; "" reports n/a).
        workers: processes computing the per-grid consistency metrics (0: one per CPU core).
        real_videos: clip directory of real videos, FVD's reference set.
        reconstruction: ``reconstruct``'s ``details.json`` (its per-source means become
            Table 3; "" leaves it out).
        sfm: Table 2's structure from motion of the columns (COLMAP through pycolmap, the
            slowest metric); false leaves those columns out.
    """

    samples: str = layout.SAMPLE_4D
    variants: list[str] = field(default_factory=lambda: [v for v in VARIANT_LABELS if v not in ("truth", "4real")])
    baselines: list[str] = field(default_factory=lambda: [layout.BASELINE_4REAL])
    thresholds: list[float] = field(default_factory=lambda: list(THRESHOLDS))
    i3d_path: str = ""
    clip_path: str = ""
    videoscore_path: str = ""
    workers: int = 0
    real_videos: str = layout.CLIPS
    reconstruction: str = f"{layout.RECONSTRUCT}/details.json"
    sfm: bool = True

    def __post_init__(self) -> None:
        require(len(self.variants) > 0, "variants", "list at least one sample_4d variant")
        require(all(t > 0 for t in self.thresholds), "thresholds", "must be > 0")
        require(self.workers >= 0, "workers", "must be >= 0 (0: one process per CPU core)")


def grid_metrics(rgb: np.ndarray, intrinsics: np.ndarray | None, thresholds: list[float]) -> dict[str, float]:
    """Reference-free metrics of one grid ``[V, T, H, W, 3]``: warping error of the rows
    (time axis) and of the columns (view axis), matching share and structure from motion of the
    columns. The given first row and column are left out (rows and columns from index 1)."""
    rows = [rgb[i] for i in range(1, rgb.shape[0])]
    cols = [rgb[:, j] for j in range(1, rgb.shape[1])]
    out = {"warp_error_time": float(np.mean([warp_error(r) for r in rows])),
           "warp_error_view": float(np.mean([warp_error(c) for c in cols]))}
    matches = [matching_consistency(c, tuple(thresholds)) for c in cols]
    for key in matches[0]:
        out[key] = float(np.mean([m[key] for m in matches]))
    if intrinsics is not None:
        sfm = [sfm_consistency(c, intrinsics) for c in cols]
        out["registered_share"] = float(np.mean([g["registered_share"] for g in sfm]))
        out["reprojection_error_px"] = _finite_mean([g["reprojection_error_px"] for g in sfm])
        out["track_length"] = float(np.mean([g["track_length"] for g in sfm]))
    return out


def _finite_mean(values: list[float]) -> float:
    """Mean of the finite values (NaN marks "not measurable", e.g. no registered pair); NaN if none."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def variant_metrics(grids: list[np.ndarray], intrinsics: list[np.ndarray | None], thresholds: list[float],
                    scores: dict[str, dict[str, float]] | None = None, i3d=None,
                    real: np.ndarray | None = None, inputs: np.ndarray | None = None, clip=None,
                    video_scorer=None, pool: Executor | None = None) -> dict[str, float | str]:
    """Means over a variant's grids, its PSNR/SSIM from ``scores`` (per asset), FVD of its
    rows (time axis) and columns (view axis) against real videos and the test inputs, and
    the CLIP score of its generated cells against each grid's given first row and column,
    and VideoScore (visual quality, temporal and factual consistency) of rows and columns.
    The per-grid consistency metrics run in ``pool`` when given (one task per grid)."""
    per = list((pool.map if pool else map)(grid_metrics, grids, intrinsics, [thresholds] * len(grids)))
    out: dict[str, float | str] = {key: _finite_mean([p[key] for p in per]) for key in per[0]}
    if scores:
        out["psnr"] = float(np.mean([s["psnr"] for s in scores.values()]))
        out["ssim"] = float(np.mean([s["ssim"] for s in scores.values()]))
    rows = np.concatenate([g[1:] for g in grids])
    cols = np.concatenate([g[:, 1:].swapaxes(0, 1) for g in grids])
    for axis, videos in (("time", rows), ("view", cols)):
        out[f"fvd_real_{axis}"] = fvd(i3d, videos, real) if real is not None else NA
        out[f"fvd_input_{axis}"] = fvd(i3d, videos, inputs) if inputs is not None else NA
        vs = videoscore(video_scorer, videos)
        if isinstance(vs, str):
            out[f"videoscore_{axis}"] = vs
        else:
            out[f"videoscore_{axis}"] = vs.pop("mean")
            out.update({f"videoscore_{aspect}_{axis}": v for aspect, v in vs.items()})
    if clip is None:
        out["clip_score"] = NA
    else:
        out["clip_score"] = float(np.mean([clip_image_similarity(clip, g[1:, 1:].reshape(-1, *g.shape[2:]),
                                                                 np.concatenate([g[0], g[1:, 0]])) for g in grids]))
    return out


def psnr_on_grids(scores: dict[str, dict[str, float]], grids) -> float | None:
    """Mean PSNR of a variant's per-grid ``scores`` (grid name -> ``psnr``, ``ssim``) over the
    ``grids`` it was scored on too: how it compares with a baseline run on fewer grids (4Real
    optimises only ``baseline_4real.max_grids`` of them). None when it shares none."""
    shared = [scores[g]["psnr"] for g in grids if g in scores]
    return float(np.mean(shared)) if shared else None


TABLE1 = [("FVD real (time)", "fvd_real_time"), ("FVD input (time)", "fvd_input_time"),
          ("FVD real (view)", "fvd_real_view"), ("FVD input (view)", "fvd_input_view"),
          ("CLIP-I", "clip_score"), ("VideoScore (time)", "videoscore_time"), ("VideoScore (view)", "videoscore_view"),
          ("warp err. time ↓", "warp_error_time"), ("warp err. view ↓", "warp_error_view"),
          ("PSNR vs truth ↑", "psnr"), ("SSIM vs truth ↑", "ssim")]


TABLE3 = [("fit PSNR", "fit_psnr"), ("fit SSIM", "fit_ssim"), ("held-out PSNR ↑", "heldout_psnr"),
          ("held-out SSIM ↑", "heldout_ssim"), ("Gaussians", "final_points")]
# Table 3 row labels by reconstruct source tag
SOURCE_LABELS = {"render_grids_test": "Rendered ground truth", "sample_4d_soft": "Parallel soft (full)"}


def table2_columns(thresholds: list[float]) -> list[tuple[str, str]]:
    return ([(f"match <{t:g}px ↑", f"match@{t:g}px") for t in thresholds]
            + [("SfM registered ↑", "registered_share"), ("reproj. err. px ↓", "reprojection_error_px"),
               ("track length ↑", "track_length")])


def _fmt(v) -> str:
    if isinstance(v, str):
        return v
    if v is None or not np.isfinite(v):
        return "-"
    return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"


def write_table(path_md: Path, path_csv: Path, title: str, columns: list[tuple[str, str]],
                rows: dict[str, dict[str, float | str]]) -> None:
    """One table as Markdown (rows labelled as in the paper) and CSV (raw values)."""
    header = "| method | " + " | ".join(c for c, _ in columns) + " |"
    lines = [f"### {title}", "", header, "|" + "---|" * (len(columns) + 1)]
    for name, m in rows.items():
        lines.append(f"| {VARIANT_LABELS.get(name, SOURCE_LABELS.get(name, name))} | " + " | ".join(_fmt(m.get(k)) for _, k in columns) + " |")
    path_md.write_text("\n".join(lines) + "\n")
    with open(path_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["variant"] + [k for _, k in columns])
        for name, m in rows.items():
            w.writerow([name] + [m.get(k) for _, k in columns])


def bar_charts(path: Path, columns: list[tuple[str, str]], rows: dict[str, dict[str, float | str]]) -> None:
    """One bar chart per numeric metric (a panel each), variants side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    numeric = [(c, k) for c, k in columns if any(isinstance(m.get(k), float) and np.isfinite(m[k]) for m in rows.values())]
    fig, axes = plt.subplots(1, len(numeric), figsize=(3.2 * len(numeric), 3.6), squeeze=False)
    names = list(rows)
    for ax, (label, key) in zip(axes[0], numeric):
        vals = [rows[n].get(key) if isinstance(rows[n].get(key), float) else np.nan for n in names]
        ax.bar(range(len(names)), vals, color=["#888" if n == "truth" else "#3b7dd8" for n in names])
        ax.set_title(label, fontsize=9)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
