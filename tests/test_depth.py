"""The depth network for grids without depth, its metrics and loaders; intrinsics of fitted frames."""

import numpy as np
import pytest
import torch

from fourreal.formats.checkpoint import CheckpointError
from fourreal.models.depth import (DepthNet, TrainDepthConfig, depth_scores, load_depth_model, predict_depth, save_depth_model,
                            train_depth_net)
from fourreal.reconstruction.geometry import project
from fourreal.training.data import fit_intrinsics, fit_video


def disc_scene(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Frames with a bright disc (depth 2, nearer at its left) on a dark background."""
    rng = np.random.default_rng(seed)
    frames = np.full((n, 18, 30, 3), 40, np.uint8)
    depth = np.zeros((n, 18, 30), np.float32)
    ys, xs = np.mgrid[:18, :30]
    for i in range(n):
        cx, cy = rng.uniform(10, 20), rng.uniform(7, 11)
        disc = (xs - cx) ** 2 + (ys - cy) ** 2 < 25
        frames[i][disc] = [220, 180, 60]
        depth[i][disc] = 2.0 + 0.05 * (xs[disc] - cx)
    return frames, depth


def test_depth_net_any_size_and_learns_a_toy_scene():
    net = DepthNet(8)
    log_depth, fg = net(torch.zeros(2, 3, 18, 30))
    assert log_depth.shape == fg.shape == (2, 18, 30)
    frames, depth = disc_scene(24)
    cfg = TrainDepthConfig(channels=8, steps=80, batch_size=8, lr=0.005)
    trained, losses = train_depth_net(frames, depth, cfg, progress=False)
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])
    test_frames, test_depth = disc_scene(4, seed=1)
    scores = depth_scores(predict_depth(trained, test_frames), test_depth)
    assert scores["absrel"] < 0.2 and scores["foreground_iou"] > 0.6


def test_depth_scores_known_values():
    truth = np.array([[0.0, 2.0, 4.0, 0.0]])
    pred = np.array([[1.0, 2.2, 3.6, 0.0]])
    s = depth_scores(pred, truth)
    assert s["absrel"] == pytest.approx(0.1) and s["foreground_iou"] == pytest.approx(2 / 3)


def test_depth_model_loaders(tmp_path):
    net = DepthNet(8)
    save_depth_model(tmp_path / "ours", net)
    again = load_depth_model(tmp_path / "ours")
    x = torch.rand(1, 3, 12, 16) * 2 - 1
    torch.testing.assert_close(again(x)[0], net.eval()(x)[0])

    class Pretrained(torch.nn.Module):  # a small random network of the pretrained interface
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 1, 3, padding=1)

        def forward(self, rgb):
            return torch.nn.functional.softplus(self.conv(rgb)) + 0.5

    torch.jit.script(Pretrained()).save(str(tmp_path / "depth.pt"))
    pre = load_depth_model(tmp_path / "depth.pt")
    pred = predict_depth(pre, np.zeros((2, 12, 16, 3), np.uint8))
    assert pred.shape == (2, 12, 16) and (pred >= 0.5).all()
    with pytest.raises(FileNotFoundError, match="train_depth"):
        load_depth_model(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="TorchScript"):
        load_depth_model(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="not a depth model"):
        load_depth_model(tmp_path)


def test_fit_intrinsics_follow_the_crop_and_resize():
    h, w, height, width = 36, 64, 20, 32
    K = np.array([[60.0, 0, 32], [0, 60.0, 18], [0, 0, 1]])
    point = np.array([[0.2, -0.1, 2.0]])
    uv, _ = project(point, K)
    frame = np.zeros((h, w), np.float32)
    frame[int(uv[0, 1]), int(uv[0, 0])] = 1.0  # a lit pixel where the point projects
    fitted = fit_video(torch.as_tensor(frame)[None, None].expand(1, 3, h, w), height, width)[0, 0].numpy()
    uv2, _ = project(point, fit_intrinsics(K, h, w, height, width))
    y, x = np.unravel_index(np.argmax(fitted), fitted.shape)
    assert abs(x + 0.5 - uv2[0, 0]) <= 1.0 and abs(y + 0.5 - uv2[0, 1]) <= 1.0
