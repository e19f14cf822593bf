"""Blender (PyPI's ``bpy``) and BlenderProc used as libraries in an ordinary Python process.

``blenderproc run`` downloads its own Blender, which cannot work offline, and
``bproc.init()`` fails on the ``bpy`` wheel (it sets a UI language the wheel does not
ship). :func:`start` does the rest of what ``init`` does. Import this module only inside a
worker process: bpy state is global, and the process may crash at exit, so workers end
with :func:`exit_worker` after flushing their outputs.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np

# BlenderProc refuses to import outside its launcher unless this is set.
os.environ.setdefault("OUTSIDE_OF_THE_INTERNAL_BLENDER_PYTHON_ENVIRONMENT_BUT_IN_RUN_SCRIPT", "1")

try:
    import bpy  # noqa: E402
except ImportError:  # pragma: no cover - depends on the interpreter
    raise ImportError(
        "rendering needs PyPI's bpy wheel (Blender as a Python module), published for Python 3.11: "
        "run the pipeline's render stages with Python 3.11 (scripts/setup.sh does)"
    ) from None

# OpenCV (camera z forward, y down) to Blender (camera z backward, y up) camera axes.
CV_TO_BLENDER = np.diag([1.0, -1.0, -1.0, 1.0])


def start(temp_dir: str | None = None) -> SimpleNamespace:
    """Reset Blender to an empty Cycles scene and return BlenderProc's API modules.

    Returns a namespace with ``camera``, ``renderer``, ``types`` and ``math`` (BlenderProc's
    ``bproc.*`` modules of the same names).
    """
    from blenderproc.python.utility.SetupUtility import SetupUtility

    SetupUtility.main_setup_called = True  # the wheel's packages are already installed
    from blenderproc.python.utility.Utility import Utility

    Utility.temp_dir = temp_dir or tempfile.mkdtemp(prefix="fourreal-bproc-")
    import blenderproc.api.camera as camera
    import blenderproc.api.math as bmath
    import blenderproc.api.renderer as renderer
    import blenderproc.api.types as types
    from blenderproc.python.renderer import RendererUtility
    from blenderproc.python.utility.Initializer import _Initializer, clean_up

    clean_up(clean_up_camera=True)
    bpy.context.scene.render.engine = "CYCLES"
    RendererUtility.set_render_devices()
    _Initializer.set_default_parameters()
    return SimpleNamespace(camera=camera, renderer=renderer, types=types, math=bmath, temp_dir=Utility.temp_dir)


def import_glb(path: str | Path) -> list:
    """Import a .glb/.gltf; return the new objects that render (helper objects such as
    bone shapes are hidden by the importer and left out). Only the first animation of the
    file is active afterwards, as the glTF importer leaves it."""
    before = set(bpy.data.objects)
    result = bpy.ops.import_scene.gltf(filepath=str(path))
    if "FINISHED" not in result:
        raise RuntimeError(f"{path}: glTF import failed ({result})")
    return [o for o in bpy.data.objects if o not in before and o.visible_get()]


def playing_actions() -> list:
    """The actions Blender plays: those assigned to objects and to shape-key blocks, sorted by
    name. A glTF file's other clips stay stored with a user but do not play, so their frame
    ranges say nothing about the motion that renders."""
    holders = [*bpy.data.objects, *bpy.data.shape_keys]
    playing = {h.animation_data.action for h in holders if h.animation_data and h.animation_data.action}
    return sorted(playing, key=lambda a: a.name)


def world_bounds(objects: list) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned world bounds ``(lo [3], hi [3])`` of the meshes among ``objects``, as
    evaluated at the current frame (armature deformation included)."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    points = []
    for obj in objects:
        if obj.type != "MESH":
            continue
        evaluated = obj.evaluated_get(depsgraph)
        mesh = evaluated.to_mesh()
        co = np.empty(len(mesh.vertices) * 3, dtype=np.float64)
        mesh.vertices.foreach_get("co", co)
        evaluated.to_mesh_clear()
        if len(co):
            m = np.array(evaluated.matrix_world)
            pts = co.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3]
            points.append(pts)
    if not points:
        raise RuntimeError("the asset has no mesh with vertices")
    allpts = np.concatenate(points)
    return allpts.min(0), allpts.max(0)


def read_image_float(path: str | Path) -> np.ndarray:
    """Read an image Blender wrote (EXR included) as float32 ``[H, W, C]``, top row first."""
    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        w, h = image.size
        c = image.channels
        buf = np.empty(w * h * c, dtype=np.float32)
        image.pixels.foreach_get(buf)
    finally:
        bpy.data.images.remove(image)
    return buf.reshape(h, w, c)[::-1].copy()


def exit_worker(code: int = 0) -> None:
    """End a bpy worker process without running Blender's (crash-prone) exit handlers."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
