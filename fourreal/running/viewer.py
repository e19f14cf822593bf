"""Interactive 3D viewer of a reconstruction (viser, in the browser): the deformable
Gaussians with a time slider and a view selector, in the chosen view's camera coordinates.

    fourreal view data/reconstruct/grids/render_grids_test/RobotExpressive

Binds to 127.0.0.1 by default; ``--host 0.0.0.0`` exposes it to the network (anyone who can
reach the port can watch the scene: only do so on a trusted network).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from fourreal.reconstruction.deformation import Deformable
from fourreal.reconstruction.output import read_reconstruction


def load_reconstruction(directory: str | Path) -> Deformable:
    """The fitted model of one reconstructed grid directory (``deformation.safetensors`` and
    ``renders.grid.npz``, whose shape gives the grid's time count)."""
    return read_reconstruction(directory)[0]


@torch.no_grad()
def splats(model: Deformable, view: float, time_index: float) -> dict[str, np.ndarray]:
    """Gaussian arrays for viser at a (fractional) view and time index: ``centers [N, 3]``,
    ``covariances [N, 3, 3]``, ``rgbs [N, 3]``, ``opacities [N, 1]``."""
    g = model.gaussians
    centers = model.positions(view, model.normalised_time(time_index)).numpy()
    scales = g.scales.numpy()
    return {"centers": centers.astype(np.float32),
            "covariances": (scales[:, None, None] ** 2 * np.eye(3)).astype(np.float32),
            "rgbs": g.colors.numpy().astype(np.float32), "opacities": g.opacities.numpy()[:, None].astype(np.float32)}


def serve(directory: str | Path, host: str = "127.0.0.1", port: int = 8080, block: bool = True):
    """Start the viewer; returns the viser server (``block=False``) or runs until Ctrl-C."""
    import viser

    model = load_reconstruction(directory)
    server = viser.ViserServer(host=host, port=port, label=f"4D reconstruction: {Path(directory).name}")
    server.scene.set_up_direction("-y")  # OpenCV camera coordinates: y points down
    centre = model.gaussians.means.detach().mean(0).numpy()
    server.initial_camera.position = (0.0, 0.0, 0.0)  # where the grid's camera was, looking at the scene
    server.initial_camera.look_at = tuple(float(x) for x in centre)
    server.initial_camera.up = (0.0, -1.0, 0.0)
    views = model.offsets.shape[0]
    view = server.gui.add_slider("view", min=0.0, max=float(views - 1), step=0.1, initial_value=float(views // 2))
    clock = server.gui.add_slider("time", min=0.0, max=float(model.times - 1), step=0.1, initial_value=0.0)
    play = server.gui.add_checkbox("play time", initial_value=False)

    def update(_=None) -> None:
        server.scene.add_gaussian_splats("/scene", **splats(model, view.value, clock.value))

    view.on_update(update)
    clock.on_update(update)
    update()
    print(f"viewer at http://{host}:{port} (Ctrl-C to stop)")
    if not block:
        return server
    try:
        while True:
            time.sleep(0.25)
            if play.value:
                clock.value = (clock.value + 0.25) % max(1, model.times - 1)
                update()
    except KeyboardInterrupt:
        server.stop()
