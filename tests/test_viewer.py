"""The reconstruction viewer's data path: saved model -> splat arrays, and its safe default bind."""

import inspect

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from fourreal.formats.grid import Grid, save_grid
from fourreal.reconstruction.deformation import Deformable
from fourreal.reconstruction.gaussians import GaussianCloud
from fourreal.reconstruction.init import Canonical
from fourreal.running.viewer import load_reconstruction, serve, splats


def saved_model(tmp_path):
    rng = np.random.default_rng(0)
    cloud = GaussianCloud(rng.normal(size=(30, 3)).astype(np.float32) + [0, 0, 3], np.full(30, 0.05, np.float32),
                          rng.uniform(0, 1, (30, 3)).astype(np.float32), np.full(30, 0.8, np.float32))
    offsets = rng.normal(size=(4, 30, 3)).astype(np.float32) * 0.1
    model = Deformable(Canonical(cloud, offsets, 2), times=5)
    torch.nn.init.normal_(model.deform.out.weight, std=0.1)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "deformation.safetensors"))
    save_grid(tmp_path / "renders.grid.npz", Grid(rgb=np.zeros((4, 5, 8, 8, 3), np.uint8), meta={"source": "t", "seed": 0, "fps": 8}))
    return model


def test_viewer_loads_a_reconstruction_and_poses_it(tmp_path):
    model = saved_model(tmp_path)
    loaded = load_reconstruction(tmp_path)
    assert loaded.times == 5
    a = splats(loaded, 1.0, 3.0)
    assert a["centers"].shape == (30, 3) and a["covariances"].shape == (30, 3, 3) and a["opacities"].shape == (30, 1)
    np.testing.assert_allclose(a["centers"], model.positions(1.0, 3 / 4).detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(a["covariances"][:, 0, 0], 0.05**2, rtol=1e-5)
    assert not np.allclose(splats(loaded, 1.0, 0.0)["centers"], a["centers"])  # time moves the points


def test_viewer_errors_and_safe_default(tmp_path):
    with pytest.raises(FileNotFoundError, match="reconstruct stage"):
        load_reconstruction(tmp_path)
    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
