"""Stage `train_depth`: a small monocular depth network trained on the rendered RGB-D grids,
for reconstructing grids that carry no depth (generated ones).

Outputs under ``data/train_depth/``: ``model/`` (config.json + model.safetensors),
``loss.csv``, ``previews/`` (test frames, their rendered depth and the prediction) and
``metrics.json`` (AbsRel and foreground IoU on the held-out test grids).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fourreal.config import load_section
from fourreal.depth import TrainDepthConfig, depth_scores, predict_depth, save_depth_model, train_depth_net
from fourreal.files import atomic_dir, write_loss_csv
from fourreal.grid import list_grids, load_grid
from fourreal.preview import contact_sheet, write_png
from fourreal.stage import run_stage, stage_args, write_metrics


def rgbd(directory: str) -> tuple[np.ndarray, np.ndarray]:
    """Every frame ``[N, H, W, 3]`` and its depth ``[N, H, W]`` of the grids in ``directory``."""
    frames, depths = [], []
    for path in list_grids(directory):
        grid = load_grid(path)
        if grid.depth is None:
            raise SystemExit(f"train_depth: {path} has no depth; train_depth.grids must hold rendered grids")
        frames.append(grid.rgb.reshape(-1, *grid.rgb.shape[2:]))
        depths.append(grid.depth.reshape(-1, *grid.depth.shape[2:]))
    if not frames:
        raise SystemExit(f"train_depth: no grids in {directory}; run `dvc repro render` first")
    return np.concatenate(frames), np.concatenate(depths)


def colorize(depth: np.ndarray, far: float) -> np.ndarray:
    """Depth ``[..., H, W]`` as gray uint8 RGB (near bright, background black)."""
    v = np.where(depth > 0, 255 * (1 - np.clip(depth / far, 0, 1)) * 0.8 + 50, 0)
    return np.repeat(v[..., None], 3, -1).astype(np.uint8)


def main() -> None:
    args = stage_args("train_depth", __doc__, "data/train_depth")
    cfg = load_section(TrainDepthConfig, "train_depth", args.params)
    out = Path(args.out)
    frames, depths = rgbd(cfg.grids)
    net, losses = train_depth_net(frames, depths, cfg)
    save_depth_model(out / "model", net)
    write_loss_csv(out / "loss.csv", losses)
    test_frames, test_depths = rgbd(cfg.test_grids)
    pred = predict_depth(net, test_frames)
    scores = depth_scores(pred, test_depths)
    far = float(test_depths.max())
    with atomic_dir(out / "previews") as tmp:
        pick = np.linspace(0, len(test_frames) - 1, 6).round().astype(int)
        sheet = np.stack([test_frames[pick], colorize(test_depths[pick], far), colorize(pred[pick], far)])
        write_png(tmp / "depth.png", contact_sheet(sheet, 72, labels=None))
    write_metrics(out, {"train_frames": len(frames), "test_frames": len(test_frames), "steps": cfg.steps,
                        "final_train_loss": round(float(np.mean(losses[-10:])), 5),
                        "test_absrel": round(scores["absrel"], 4), "test_foreground_iou": round(scores["foreground_iou"], 4)})


if __name__ == "__main__":
    run_stage(main)
