"""The fit's per-step work around the rasterizer (:func:`~fourreal.reconstruction.fit.cell_positions`,
:func:`~fourreal.reconstruction.loss.reconstruction_loss`) under ``torch.compile`` matches
its eager run: same loss, same gradients on the Gaussians and the temporal MLP."""

import shutil

import numpy as np
import pytest
import torch

from fourreal.reconstruction.deformation import Deformable
from fourreal.reconstruction.fit import cell_positions, read_losses
from fourreal.reconstruction.gaussians import GaussianCloud, render
from fourreal.reconstruction.init import Canonical
from fourreal.reconstruction.loss import reconstruction_loss

H, W = 12, 16


def tiny_model() -> Deformable:
    """20 Gaussians in front of the camera, 3 views with distinct offsets, 4 times; the
    temporal MLP's last layer perturbed so that it moves the points (it starts at zero)."""
    rng = np.random.default_rng(0)
    n = 20
    cloud = GaussianCloud(np.c_[rng.uniform(-0.3, 0.3, (n, 2)), rng.uniform(1.5, 2.5, n)].astype(np.float32),
                          rng.uniform(0.05, 0.1, n).astype(np.float32), rng.uniform(0, 1, (n, 3)).astype(np.float32),
                          rng.uniform(0.5, 0.9, n).astype(np.float32))
    offsets = rng.normal(0, 0.02, (3, n, 3)).astype(np.float32)
    model = Deformable(Canonical(cloud, offsets, 1), 4, learn_offsets=True)
    torch.manual_seed(0)
    torch.nn.init.normal_(model.deform.out.weight, std=0.05)
    return model


def step_loss(model: Deformable, positions, loss_of) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One fit step's loss on cells (0, 1), (2, 3), (1, 0) against a fixed random target,
    with ``positions`` and ``loss_of`` (eager or compiled), and the parameters' gradients."""
    views, times = torch.tensor([0, 2, 1]), torch.tensor([1 / 3, 1.0, 0.0])
    K = torch.tensor([[20.0, 0, W / 2], [0, 20.0, H / 2], [0, 0, 1]]).expand(3, 3, 3)
    truth = torch.rand(3, H, W, 3, generator=torch.Generator().manual_seed(1))
    g = model.gaussians
    model.zero_grad()
    pred = render(positions(model, views, times), g.scales, g.colors, g.opacities, K, H, W, torch.full((3,), 0.5),
                  "torch")[0]
    loss = loss_of(pred, truth, model.deform, g.means, torch.tensor([1 / 3, 2 / 3]), model.deform.extent, 0.2, 0.1)
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}


def test_cell_positions_are_eq11_of_each_cell():
    """The fit's batched positions (offsets gathered by view, one MLP evaluation for all
    cells) are :meth:`Deformable.positions` of each cell."""
    model = tiny_model()
    views, times = torch.tensor([0, 2, 1]), torch.tensor([1 / 3, 1.0, 0.0])
    batched = cell_positions(model, views, times)
    for k in range(3):
        torch.testing.assert_close(batched[k], model.positions(int(views[k]), float(times[k])), rtol=1e-6, atol=1e-7)


def test_losses_are_read_back_together_and_checked():
    assert read_losses([torch.tensor(0.5), torch.tensor(0.25)], 1) == [0.5, 0.25]
    with pytest.raises(FloatingPointError, match="nan at step 52"):
        read_losses([torch.tensor(0.5), torch.tensor(float("nan"))], 51)


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                    reason="torch.compile on the CPU (inductor) needs a C++ compiler")
def test_compiled_step_matches_eager():
    model = tiny_model()
    loss, grads = step_loss(model, cell_positions, reconstruction_loss)
    torch._dynamo.reset()
    compiled_loss, compiled_grads = step_loss(model, torch.compile(cell_positions), torch.compile(reconstruction_loss))
    assert loss > 0 and grads["deform.out.weight"].abs().max() > 0  # the smoothness term and MLP are live
    torch.testing.assert_close(compiled_loss, loss, rtol=1e-4, atol=1e-7)
    assert grads.keys() == compiled_grads.keys()
    for name in grads:  # Gaussians, per-view offsets and every layer of the temporal MLP
        torch.testing.assert_close(compiled_grads[name], grads[name], rtol=1e-4, atol=1e-6, msg=name)
