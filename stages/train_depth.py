"""Stage `train_depth`: a small monocular depth network trained on the rendered RGB-D grids,
for reconstructing grids that carry no depth (generated ones).

Outputs under ``data/train_depth/``: ``model/`` (config.json + model.safetensors),
``loss.csv``, ``previews/`` (test frames, their rendered depth and the prediction),
``metrics.json`` (headline: steps, final training loss, AbsRel on the held-out test grids)
and ``details.json`` (also foreground IoU there, frame counts).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fourreal.formats.files import atomic_dir, write_loss_csv
from fourreal.formats.preview import contact_sheet, write_png
from fourreal.models.depth import (TrainDepthConfig, depth_scores, depth_sheet, grids_rgbd, predict_depth,
                            save_depth_model, train_depth_net)
from fourreal.running.config import load_section
from fourreal.running.stage import run_stage, stage_args, write_metrics


def headline(details: dict) -> dict:
    """The stage's metrics from its details: steps, final training loss, held-out AbsRel."""
    return {"steps": details["steps"], "loss": details["final_train_loss"], "absrel": details["test_absrel"]}


def main() -> None:
    args = stage_args("train_depth", __doc__)
    cfg = load_section(TrainDepthConfig, "train_depth", args.params)
    out = Path(args.out)
    frames, depths = grids_rgbd(cfg.grids)
    net, losses = train_depth_net(frames, depths, cfg)
    save_depth_model(out / "model", net)
    write_loss_csv(out / "loss.csv", losses)
    test_frames, test_depths = grids_rgbd(cfg.test_grids)
    pred = predict_depth(net, test_frames)
    scores = depth_scores(pred, test_depths)
    with atomic_dir(out / "previews") as tmp:
        write_png(tmp / "depth.png", contact_sheet(depth_sheet(test_frames, test_depths, pred), 72, labels=None))
    details = {"train_frames": len(frames), "test_frames": len(test_frames), "steps": cfg.steps,
               "final_train_loss": round(float(np.mean(losses[-10:])), 5),
               "test_absrel": round(scores["absrel"], 4), "test_foreground_iou": round(scores["foreground_iou"], 4)}
    write_metrics(out, headline(details), details)


if __name__ == "__main__":
    run_stage(main)
