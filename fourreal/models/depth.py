"""Monocular depth for grids that have none (generated ones): a small U-Net trained in the
pipeline on the rendered RGB-D grids, or a pretrained network loaded from a local
TorchScript file. Depth is camera-space z; 0 marks background (no surface), as in renders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fourreal.formats.checkpoint import CheckpointError, load_torchscript
from fourreal.formats.grid import list_grids, load_grid
from fourreal.running import layout
from fourreal.running.config import require
from fourreal.running.errors import UserError
from fourreal.training.data import to_unit


@dataclass
class TrainDepthConfig:
    """Parameters of the ``train_depth`` stage.

    Attributes:
        grids: rendered training grids (RGB + depth); test_grids: held-out ones for AbsRel.
        channels: width of the U-Net's first level (doubled per level, 3 levels).
        steps, batch_size, lr, seed: Adam training on random frames of the grids.
    """

    grids: str = layout.RENDER_TRAIN
    test_grids: str = layout.RENDER_TEST
    channels: int = 16
    steps: int = 300
    batch_size: int = 16
    lr: float = 0.002
    seed: int = 0

    def __post_init__(self) -> None:
        require(self.channels >= 4, "channels", "must be >= 4")
        require(self.steps >= 1, "steps", "must be >= 1")
        require(self.batch_size >= 1, "batch_size", "must be >= 1")


class DepthDataError(UserError, ValueError):
    """Grids that cannot train or score the depth network: none at all, or one without depth."""


def grids_rgbd(directory: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Every frame ``[N, H, W, 3]`` and its depth ``[N, H, W]`` of the grids in ``directory``
    (rendered grids, which carry depth). Raises :class:`DepthDataError` when a grid has no
    depth or the directory holds no grid."""
    frames, depths = [], []
    for path in list_grids(directory):
        grid = load_grid(path)
        if grid.depth is None:
            raise DepthDataError(f"{path} has no depth; train_depth.grids must hold rendered grids")
        frames.append(grid.rgb.reshape(-1, *grid.rgb.shape[2:]))
        depths.append(grid.depth.reshape(-1, *grid.depth.shape[2:]))
    if not frames:
        raise DepthDataError(f"no grids in {directory}; run `dvc repro render` first")
    return np.concatenate(frames), np.concatenate(depths)


def colorize_depth(depth: np.ndarray, far: float) -> np.ndarray:
    """Depth ``[..., H, W]`` as gray uint8 RGB (near bright, background black)."""
    v = np.where(depth > 0, 255 * (1 - np.clip(depth / far, 0, 1)) * 0.8 + 50, 0)
    return np.repeat(v[..., None], 3, -1).astype(np.uint8)


def depth_sheet(frames: np.ndarray, depths: np.ndarray, pred: np.ndarray, count: int = 6) -> np.ndarray:
    """A preview ``[3, count, H, W, 3]``: ``count`` frames spread evenly over ``frames``, their
    true depth and the predicted one, both colorized on the true depth's range."""
    far = float(depths.max())
    pick = np.linspace(0, len(frames) - 1, count).round().astype(int)
    return np.stack([frames[pick], colorize_depth(depths[pick], far), colorize_depth(pred[pick], far)])


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(4, cout), nn.SiLU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.GroupNorm(4, cout), nn.SiLU())


class DepthNet(nn.Module):
    """U-Net (3 levels) from RGB ``[B, 3, H, W]`` in [-1, 1] to a log-depth map and a
    foreground logit, each ``[B, H, W]``; any ``H, W`` (padded to a multiple of 4 inside)."""

    def __init__(self, channels: int = 16):
        super().__init__()
        c = channels
        self.channels = channels
        self.enc1, self.enc2, self.enc3 = _block(3, c), _block(c, 2 * c), _block(2 * c, 4 * c)
        self.down1, self.down2 = nn.Conv2d(c, c, 3, 2, 1), nn.Conv2d(2 * c, 2 * c, 3, 2, 1)
        self.dec2, self.dec1 = _block(4 * c + 2 * c, 2 * c), _block(2 * c + c, c)
        self.head = nn.Conv2d(c, 2, 1)

    def forward(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = rgb.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        x = F.pad(rgb, (0, pw, 0, ph), mode="replicate")
        e1 = self.enc1(x)
        e2 = self.enc2(self.down1(e1))
        e3 = self.enc3(self.down2(e2))
        d2 = self.dec2(torch.cat([F.interpolate(e3, size=e2.shape[-2:], mode="bilinear", align_corners=False), e2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, size=e1.shape[-2:], mode="bilinear", align_corners=False), e1], 1))
        out = self.head(d1)[..., :h, :w]
        return out[:, 0], out[:, 1]


def depth_loss(net: DepthNet, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """Foreground BCE plus L1 of log-depth on foreground pixels; ``rgb [B, 3, H, W]`` in
    [-1, 1], ``depth [B, H, W]`` (0 = background)."""
    log_depth, fg_logit = net(rgb)
    fg = depth > 0
    loss = F.binary_cross_entropy_with_logits(fg_logit, fg.float())
    if fg.any():
        loss = loss + (log_depth[fg] - depth[fg].log()).abs().mean()
    return loss


@torch.no_grad()
def predict_depth(net: nn.Module, frames: np.ndarray, batch: int = 32) -> np.ndarray:
    """Depth ``[N, H, W]`` float32 of uint8 frames ``[N, H, W, 3]``; 0 where the network
    sees background. ``net`` is a :class:`DepthNet` or a :class:`PretrainedDepth`."""
    device = next(net.parameters(), torch.empty(0)).device
    out = []
    for i in range(0, len(frames), batch):
        log_depth, fg_logit = net(to_unit(frames[i:i + batch]).to(device))
        out.append(torch.where(fg_logit > 0, log_depth.exp(), torch.zeros_like(log_depth)).cpu())
    return torch.cat(out).numpy().astype(np.float32)


def depth_scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """AbsRel ``mean(|pred - truth| / truth)`` on pixels where both have depth, and the
    foreground IoU of ``pred > 0`` against ``truth > 0``."""
    both = (pred > 0) & (truth > 0)
    union = (pred > 0) | (truth > 0)
    absrel = float(np.mean(np.abs(pred[both] - truth[both]) / truth[both])) if both.any() else float("nan")
    return {"absrel": absrel, "foreground_iou": float(both.sum() / max(1, union.sum()))}


def save_depth_model(directory: Path, net: DepthNet) -> None:
    """``config.json`` + ``model.safetensors`` in ``directory`` (atomically)."""
    from safetensors.torch import save_file

    from fourreal.formats.files import atomic_dir

    with atomic_dir(directory) as tmp:
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp / "model.safetensors"))
        (tmp / "config.json").write_text(json.dumps({"kind": "depth_unet", "channels": net.channels}))


class PretrainedDepth(nn.Module):
    """A pretrained depth network from a local TorchScript file: it takes RGB ``[B, 3, H, W]``
    in [0, 1] and returns depth ``[B, 1, H, W]`` or ``[B, H, W]`` (z, same units for all
    frames; values <= 0 count as background). Adapted to :class:`DepthNet`'s outputs."""

    def __init__(self, scripted: torch.jit.ScriptModule):
        super().__init__()
        self.net = scripted

    def forward(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        depth = self.net((rgb + 1) / 2)
        depth = depth[:, 0] if depth.dim() == 4 else depth
        if depth.shape[-2:] != rgb.shape[-2:]:
            raise ValueError(f"pretrained depth network returned {tuple(depth.shape)} for input {tuple(rgb.shape)}; "
                             "it must keep the frame size")
        return depth.clamp(min=1e-6).log(), torch.where(depth > 0, 10.0, -10.0)


def load_depth_model(path: str | Path) -> nn.Module:
    """A depth network: this project's ``train_depth`` output directory, or a TorchScript
    file of a pretrained network (see :class:`PretrainedDepth`). Clear errors for a missing
    path or a file of another kind."""
    from safetensors.torch import load_file

    path = Path(path)
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file() or json.loads(config.read_text()).get("kind") != "depth_unet":
            raise CheckpointError(f"{path}: not a depth model directory (config.json with kind depth_unet); "
                             "run `dvc repro train_depth` or pass a TorchScript file")
        net = DepthNet(json.loads(config.read_text())["channels"])
        net.load_state_dict(load_file(str(path / "model.safetensors")))
        return net.eval()
    return PretrainedDepth(load_torchscript(path, "depth network", "run `dvc repro train_depth` or set "
                                            "reconstruct.depth_model to a TorchScript file")).eval()


def train_depth_net(frames: np.ndarray, depths: np.ndarray, cfg: TrainDepthConfig,
                    progress: bool = True) -> tuple[DepthNet, list[float]]:
    """Train a :class:`DepthNet` on uint8 ``frames [N, H, W, 3]`` with ``depths [N, H, W]``
    (on the GPU when there is one; the trained network is returned on the CPU)."""
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    net = DepthNet(cfg.channels).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    losses = []
    for _ in tqdm(range(cfg.steps), desc="depth network", unit="step", disable=not progress, mininterval=5.0):
        idx = rng.choice(len(frames), size=min(cfg.batch_size, len(frames)), replace=False)
        rgb = to_unit(frames[idx])
        if rng.random() < 0.5:  # horizontal flips: depth is mirror-symmetric
            rgb, d = rgb.flip(-1), torch.as_tensor(depths[idx]).flip(-1)
        else:
            d = torch.as_tensor(depths[idx])
        loss = depth_loss(net, rgb.to(device), d.to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return net.cpu().eval(), losses
