"""Procedural animated assets built in Blender and exported as .glb, so the pipeline has
an unlimited supply of distinct animated objects offline.

Families (each with random proportions, colors and image textures, seeded):

- ``worm``: a subdivided cylinder skinned to a bone chain that waves (skeletal animation);
- ``blob``: a sphere, cube or icosphere with shape keys that squash and bulge (morph targets);
- ``spinner``: a stack of primitives that spins, bobs and tilts (transform animation);
- ``walker``: a body on four legs whose legs swing and body sways (hierarchical transforms).

``--motion`` (``assets.procedural_motion``) scales every family's motion amplitude (bend,
squash and bulge, spin, bob and tilt, swing and sway); at 1.0 the files are exactly those of
the original motion, and the random draws do not depend on it.

Run as a worker process (bpy state is global and exits uncleanly):
``python -m fourreal.data_making.procedural --out DIR --count N --seed S [--motion M]``. Existing files
are kept, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

FAMILIES = ("worm", "blob", "spinner", "walker")


def asset_name(seed: int, index: int, family: str) -> str:
    """File stem of procedural asset ``index`` of ``seed``."""
    return f"proc{seed}_{index:04d}_{family}"


def pick_family(seed: int, index: int, families: tuple[str, ...]) -> str:
    """The family of asset ``index``: cycles through ``families`` in a seeded order."""
    order = np.random.default_rng([seed, 17]).permutation(len(families))
    return families[order[index % len(families)]]


def texture_pixels(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """A random two-color pattern (checker, stripes, dots or noise) as RGBA float32
    ``[size, size, 4]``, for a Blender image texture."""
    c1, c2 = rng.uniform(0.05, 0.95, 3), rng.uniform(0.05, 0.95, 3)
    y, x = np.mgrid[0:size, 0:size] / size
    kind = rng.integers(4)
    k = rng.integers(2, 9)
    if kind == 0:
        mask = ((np.floor(x * k) + np.floor(y * k)) % 2).astype(bool)
    elif kind == 1:
        mask = (np.sin(2 * np.pi * k * (x * rng.uniform(-1, 1) + y)) > 0)
    elif kind == 2:
        mask = ((x * k % 1 - 0.5) ** 2 + (y * k % 1 - 0.5) ** 2) < 0.08
    else:
        coarse = rng.uniform(size=(k, k))
        mask = np.kron(coarse, np.ones((size // k + 1, size // k + 1)))[:size, :size] > 0.5
    rgb = np.where(mask[..., None], c1, c2)
    return np.concatenate([rgb, np.ones((size, size, 1))], axis=-1).astype(np.float32)


def _material(bpy, name: str, rng: np.random.Generator):
    """A Principled material with a packed random image texture."""
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Roughness"].default_value = float(rng.uniform(0.3, 0.9))
    bsdf.inputs["Metallic"].default_value = float(rng.choice([0.0, 0.0, 0.5]))
    pixels = texture_pixels(rng)
    image = bpy.data.images.new(f"{name}_tex", pixels.shape[1], pixels.shape[0])
    image.pixels.foreach_set(pixels.ravel())
    image.pack()
    tex = mat.node_tree.nodes.new("ShaderNodeTexImage")
    tex.image = image
    mat.node_tree.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    return mat


def _active(bpy):
    return bpy.context.view_layer.objects.active


def _key(obj, path: str, frame: int, value) -> None:
    setattr(obj, path, value)
    obj.keyframe_insert(path, frame=frame)


def _build_worm(bpy, rng, frames: int, name: str, motion: float = 1.0) -> None:
    length, radius, bones = rng.uniform(1.5, 3.0), rng.uniform(0.15, 0.4), int(rng.integers(3, 6))
    bpy.ops.mesh.primitive_cylinder_add(vertices=16, depth=length, radius=radius, location=(0, 0, length / 2))
    body = _active(bpy)
    bpy.ops.object.mode_set(mode="EDIT")
    bpy.ops.mesh.subdivide(number_cuts=4 * bones)
    bpy.ops.object.mode_set(mode="OBJECT")
    body.data.materials.append(_material(bpy, f"{name}_mat", rng))
    arm_data = bpy.data.armatures.new(f"{name}_rig")
    rig = bpy.data.objects.new(f"{name}_rig", arm_data)
    bpy.context.scene.collection.objects.link(rig)
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    parent = None
    for i in range(bones):
        bone = arm_data.edit_bones.new(f"b{i}")
        bone.head, bone.tail = (0, 0, i * length / bones), (0, 0, (i + 1) * length / bones)
        if parent is not None:
            bone.parent, bone.use_connect = parent, True
        parent = bone
    bpy.ops.object.mode_set(mode="OBJECT")
    body.select_set(True)
    rig.select_set(True)
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.parent_set(type="ARMATURE_AUTO")
    amp, phase, axis = rng.uniform(0.25, 0.6), rng.uniform(0, 2 * np.pi), int(rng.integers(2))
    amp = min(amp * motion, 1.2)  # radians per bone
    for f in range(0, frames + 1, 4):
        for i, pb in enumerate(rig.pose.bones):
            angle = amp * math.sin(2 * math.pi * f / frames + phase + i * 0.9)
            pb.rotation_mode = "XYZ"
            pb.rotation_euler = (angle, 0, 0) if axis == 0 else (0, angle, 0)
            pb.keyframe_insert("rotation_euler", frame=f)


def _build_blob(bpy, rng, frames: int, name: str, motion: float = 1.0) -> None:
    shape = rng.integers(3)
    if shape == 0:
        bpy.ops.mesh.primitive_uv_sphere_add(segments=24, ring_count=12, radius=1.0)
    elif shape == 1:
        bpy.ops.mesh.primitive_cube_add(size=1.6)
        bpy.ops.object.mode_set(mode="EDIT")
        bpy.ops.mesh.subdivide(number_cuts=6)
        bpy.ops.object.mode_set(mode="OBJECT")
    else:
        bpy.ops.mesh.primitive_ico_sphere_add(subdivisions=3, radius=1.0)
    obj = _active(bpy)
    obj.scale = rng.uniform(0.7, 1.3, 3)
    obj.data.materials.append(_material(bpy, f"{name}_mat", rng))
    obj.shape_key_add(name="Basis")
    co = np.empty(len(obj.data.vertices) * 3)
    obj.data.vertices.foreach_get("co", co)
    co = co.reshape(-1, 3)
    squash = obj.shape_key_add(name="squash")
    s = min(rng.uniform(0.3, 0.6) * motion, 0.9)  # below 1: never flattened through itself
    squash.data.foreach_set("co", (co * np.array([1 + s / 2, 1 + s / 2, 1 - s])).ravel())
    bulge = obj.shape_key_add(name="bulge")
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    weight = np.clip(co @ direction, 0, None)[:, None]
    bulge.data.foreach_set("co", (co + weight * direction * (rng.uniform(0.5, 1.0) * motion)).ravel())
    phase = rng.uniform(0, 2 * np.pi)
    for f in range(0, frames + 1, 4):
        _key(squash, "value", f, 0.5 + 0.5 * math.sin(2 * math.pi * f / frames))
        _key(bulge, "value", f, 0.5 + 0.5 * math.sin(4 * math.pi * f / frames + phase))


def _build_spinner(bpy, rng, frames: int, name: str, motion: float = 1.0) -> None:
    adders = [
        lambda z: bpy.ops.mesh.primitive_torus_add(major_radius=0.8, minor_radius=0.25, location=(0, 0, z)),
        lambda z: bpy.ops.mesh.primitive_cone_add(radius1=0.7, depth=1.0, location=(0, 0, z)),
        lambda z: bpy.ops.mesh.primitive_cube_add(size=0.9, location=(0, 0, z)),
        lambda z: bpy.ops.mesh.primitive_cylinder_add(radius=0.5, depth=0.8, location=(0, 0, z)),
        lambda z: bpy.ops.mesh.primitive_uv_sphere_add(radius=0.5, location=(0, 0, z)),
    ]
    bpy.ops.object.empty_add(location=(0, 0, 0))
    root = _active(bpy)
    root.name = f"{name}_root"
    for i in range(int(rng.integers(2, 4))):
        adders[int(rng.integers(len(adders)))](0.9 * i)
        part = _active(bpy)
        part.rotation_euler = rng.uniform(-0.4, 0.4, 3)
        part.data.materials.append(_material(bpy, f"{name}_mat{i}", rng))
        part.parent = root
    turns, bob, tilt = rng.choice([-1, 1]) * rng.uniform(0.5, 1.5), rng.uniform(0.1, 0.5), rng.uniform(0, 0.4)
    turns, bob, tilt = turns * motion, bob * motion, tilt * motion
    for f in range(0, frames + 1, 2):
        u = f / frames
        _key(root, "rotation_euler", f, (tilt * math.sin(2 * math.pi * u), 0, 2 * math.pi * turns * u))
        _key(root, "location", f, (0, 0, bob * abs(math.sin(2 * math.pi * u))))


def _build_walker(bpy, rng, frames: int, name: str, motion: float = 1.0) -> None:
    bl, bw, bh = rng.uniform(1.2, 2.0), rng.uniform(0.6, 1.0), rng.uniform(0.4, 0.8)
    leg = rng.uniform(0.6, 1.1)
    bpy.ops.mesh.primitive_cube_add(size=1.0, location=(0, 0, leg + bh / 2))
    body = _active(bpy)
    body.scale = (bl, bw, bh)
    body.data.materials.append(_material(bpy, f"{name}_body", rng))
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.35 * bw, location=(bl / 2 + 0.2, 0, leg + bh))
    head = _active(bpy)
    head.data.materials.append(_material(bpy, f"{name}_head", rng))
    leg_mat = _material(bpy, f"{name}_legs", rng)
    legs = []
    for i, (sx, sy) in enumerate([(1, 1), (1, -1), (-1, 1), (-1, -1)]):
        bpy.ops.object.empty_add(location=(sx * bl * 0.35, sy * bw * 0.35, leg))
        hip = _active(bpy)
        bpy.ops.mesh.primitive_cylinder_add(radius=0.08 + 0.05 * bw, depth=leg, location=(sx * bl * 0.35, sy * bw * 0.35, leg / 2))
        shin = _active(bpy)
        shin.data.materials.append(leg_mat)
        shin.parent = hip
        shin.matrix_parent_inverse = hip.matrix_world.inverted()
        legs.append((hip, 1 if (i in (0, 3)) else -1))
    swing, speed = rng.uniform(0.3, 0.7), int(rng.integers(1, 3))
    swing, sway, nod, roll = min(swing * motion, 1.3), 0.1 * motion, 0.05 * motion, 0.08 * motion
    for f in range(0, frames + 1, 2):
        u = 2 * math.pi * speed * f / frames
        for hip, sign in legs:
            _key(hip, "rotation_euler", f, (0, sign * swing * math.sin(u), 0))
        _key(body, "rotation_euler", f, (roll * math.sin(2 * u), 0, 0))
        _key(head, "location", f, (bl / 2 + 0.2, sway * math.sin(u), leg + bh + nod * math.sin(2 * u)))


_BUILDERS = {"worm": _build_worm, "blob": _build_blob, "spinner": _build_spinner, "walker": _build_walker}


def _sort_faces(bpy) -> None:
    """Put the faces of every mesh in an order fixed by their vertices, so exports are
    byte-identical from run to run.

    Blender's UV-sphere primitive (``primitive_uv_sphere_add``, also ``bmesh.ops.create_uvsphere``)
    chains BMesh operators whose outputs follow element addresses: its vertices and each
    face's corners come out the same every run, but the order of its faces does not, and
    the glTF exporter writes triangles in face order. Sorting faces by their vertex indices
    removes that freedom; the geometry, UVs, materials, vertex groups and shape keys are
    unchanged.
    """
    import bmesh

    for mesh in bpy.data.meshes:
        bm = bmesh.new()
        bm.from_mesh(mesh)
        order = sorted(bm.faces, key=lambda f: (sorted(v.index for v in f.verts), [v.index for v in f.verts]))
        rank = {f.index: r for r, f in enumerate(order)}
        bm.faces.sort(key=lambda f: rank[f.index])
        bm.to_mesh(mesh)
        bm.free()


def build_and_export(path: Path, family: str, seed: list[int], frames: int, motion: float = 1.0) -> None:
    """Build one asset of ``family`` in an empty scene, its motion amplitudes scaled by
    ``motion``, and export it to ``path`` (.glb)."""
    import bpy

    from fourreal.formats.files import atomic_path

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.frame_start, bpy.context.scene.frame_end = 0, frames
    rng = np.random.default_rng(seed)
    _BUILDERS[family](bpy, rng, frames, path.stem, motion)
    _sort_faces(bpy)
    with atomic_path(path) as tmp:
        bpy.ops.export_scene.gltf(filepath=str(tmp), export_format="GLB", export_animations=True, export_animation_mode="SCENE",
                                  export_anim_scene_split_object=False,
                                  export_apply=False, export_yup=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Generate procedural animated .glb assets (a bpy worker).")
    parser.add_argument("--out", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--motion", type=float, default=1.0, help="scale of the motion amplitudes (1.0: original)")
    args = parser.parse_args()
    from fourreal.data_making.blender import exit_worker

    families = tuple(args.families.split(","))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for i in range(args.count):
        family = pick_family(args.seed, i, families)
        path = out / f"{asset_name(args.seed, i, family)}.glb"
        if not path.exists():
            build_and_export(path, family, [args.seed, i], args.frames, args.motion)
        print(f"asset {i + 1}/{args.count} {path.name}", flush=True)
    exit_worker(0)


if __name__ == "__main__":
    main()
