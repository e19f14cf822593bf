import json
import shutil
import subprocess
import sys
from dataclasses import replace

import pytest

from fourreal.data_making.assets import (
    AssetsConfig, generate_procedural, local_assets, objaverse_assets, prepare_assets, split_assets,
)
from fourreal.data_making.gltf import AssetError, inspect_glb
from fourreal.data_making.procedural import FAMILIES
from fourreal.running.config import ConfigError, from_dict

from conftest import REPO
from glb_tools import objaverse_cache, variant
from tiny_gltf import glb_chunks, tiny_bin, write_tiny_gltf

FOX = REPO / "assets" / "glb" / "Fox.glb"
ROBOT = REPO / "assets" / "glb" / "RobotExpressive.glb"


def test_real_assets_are_read_without_blender():
    fox, robot = inspect_glb(FOX), inspect_glb(ROBOT)
    assert fox.animations == ["Armature|Take 001|BaseLayer"] and fox.meshes == 5 and not fox.draco
    assert len(robot.animations) == 14 and robot.animations[0] == "Dance"


def test_corrupt_truncated_and_draco_files(tmp_path):
    junk = tmp_path / "junk.glb"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(AssetError, match="junk.glb: not a binary glTF"):
        inspect_glb(junk)
    cut = tmp_path / "cut.glb"
    cut.write_bytes(FOX.read_bytes()[:5000])
    with pytest.raises(AssetError, match="cut.glb: truncated"):
        inspect_glb(cut)
    assert inspect_glb(variant(FOX, tmp_path / "d.glb", draco=True)).draco


def test_prepare_local_assets_skips_and_counts(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)  # no gltf-transform on this machine
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(FOX, src / "fox.glb")
    variant(ROBOT, src / "draco.glb", draco=True)
    variant(FOX, src / "still.glb", drop_animations=True)
    (src / "broken.glb").write_bytes(b"glTF" + b"\x02" * 40)
    (src / "readme.txt").write_text("ignored")
    cfg = AssetsConfig(sources=["local"], local_dirs=[str(src)], test_fraction=0.0)
    entries, skipped = prepare_assets(cfg, tmp_path / "out")
    assert [e.name for e in entries] == ["fox"] and (tmp_path / "out" / "fox.glb").is_file()
    reasons = {k.split("/")[-1]: v for k, v in skipped.items()}
    assert set(reasons) == {"draco.glb", "still.glb", "broken.glb"}
    assert "Draco" in reasons["draco.glb"] and "gltf-transform copy" in reasons["draco.glb"]
    assert "no animation" in reasons["still.glb"] and "assets.static: static" in reasons["still.glb"]
    static_cfg = AssetsConfig(sources=["local"], local_dirs=[str(src)], static="static", test_fraction=0.0)
    entries, _ = prepare_assets(static_cfg, tmp_path / "out2")
    assert {e.name: e.animated for e in entries} == {"fox": True, "still": False}


def test_missing_local_dir_names_the_param(tmp_path):
    with pytest.raises(FileNotFoundError, match="assets.local_dirs"):
        local_assets([str(tmp_path / "nope")])


def test_objaverse_cache_filters_animated_and_reports_missing(tmp_path):
    cache = objaverse_cache(tmp_path / "cache", {
        "aaa111": (FOX, 1),        # animated, present
        "bbb222": (ROBOT, 0),      # static: filtered out by the annotations
        "ccc333": (None, 2),       # animated, file absent from the cache
    })
    paths, missing = objaverse_assets(str(cache), ["aaa111", "bbb222", "ccc333", "zzz999"], limit=0)
    assert [p.name for p in paths] == ["aaa111.glb"]
    assert any("ccc333.glb: object file missing" in m for m in missing)
    assert any("zzz999: not in object-paths" in m for m in missing)
    found, _ = objaverse_assets(str(cache), [], limit=0)  # default: every object present in the cache
    assert [p.name for p in found] == ["aaa111.glb"]
    with pytest.raises(AssetError, match="object-paths.json.gz: missing"):
        objaverse_assets(str(tmp_path / "empty"), [], 0)
    cfg = AssetsConfig(sources=["objaverse"], objaverse_dir=str(cache), objaverse_uids=["aaa111", "ccc333"],
                       test_fraction=0.0)
    entries, skipped = prepare_assets(cfg, tmp_path / "out")
    assert [e.name for e in entries] == ["objv_aaa111"]
    assert len(skipped) == 1 and "missing from the cache" in next(iter(skipped.values()))


def test_split_is_by_asset_and_order_free():
    names = [f"asset{i}" for i in range(20)]
    split = split_assets(names, 0.25, seed=0)
    assert sum(v == "test" for v in split.values()) == 5
    assert split_assets(list(reversed(names)), 0.25, seed=0) == split
    assert split_assets(names, 0.25, seed=1) != split
    assert all(v == "train" for v in split_assets(names, 0.0, 0).values())


def test_real_draco_file_is_decompressed_with_gltf_transform(tmp_path):
    tool = shutil.which("gltf-transform")
    if tool is None:
        pytest.skip("gltf-transform CLI not installed (scripts/setup.sh installs it with npm)")
    src = tmp_path / "src"
    src.mkdir()
    subprocess.run([tool, "draco", str(FOX), str(src / "fox_draco.glb")], check=True, capture_output=True)
    assert inspect_glb(src / "fox_draco.glb").draco
    entries, skipped = prepare_assets(AssetsConfig(sources=["local"], local_dirs=[str(src)], test_fraction=0.0),
                                      tmp_path / "out")
    assert skipped == {} and [e.name for e in entries] == ["fox_draco"]
    plain = inspect_glb(tmp_path / "out" / "fox_draco.glb")
    assert not plain.draco and plain.meshes == 5 and plain.animations == inspect_glb(FOX).animations


@pytest.mark.slow
def test_procedural_assets_are_byte_identical_across_processes(tmp_path):
    # Seed 27 draws one asset of each family, with a UV sphere in the blob, the spinner and
    # the walker: Blender's UV-sphere primitive orders its faces differently in every process.
    cfg = AssetsConfig(procedural_count=4, procedural_seed=27, procedural_frames=24)
    first, second = generate_procedural(tmp_path / "a", cfg), generate_procedural(tmp_path / "b", cfg)
    assert sorted(p.stem.split("_")[-1] for p in first) == sorted(FAMILIES)
    assert [a.name for a, b in zip(first, second) if a.read_bytes() != b.read_bytes()] == []


def test_local_gltf_with_external_files_is_packed_into_one_glb(tmp_path):
    src, lone = tmp_path / "src", tmp_path / "lone"
    write_tiny_gltf(src, "tiny")
    write_tiny_gltf(lone, "lone", companions=False)  # its buffer and texture are not beside it
    cfg = AssetsConfig(sources=["local"], local_dirs=[str(src), str(lone)], test_fraction=0.0)
    entries, skipped = prepare_assets(cfg, tmp_path / "out")
    assert [(e.name, e.file, e.animations) for e in entries] == [("tiny", "tiny.glb", ["slide", "spin"])]
    doc, binary = glb_chunks(tmp_path / "out" / "tiny.glb")
    assert binary[:len(tiny_bin())] == tiny_bin() and "uri" not in doc["images"][0]
    (reason,) = skipped.values()
    assert "lone.gltf: references tiny%20data.bin, which cannot be read" in reason and "put the files" in reason
    assert not (tmp_path / "out" / "lone.glb").exists()


def test_gltf_1_text_file_is_refused_with_its_version(tmp_path):
    old = tmp_path / "old.gltf"
    old.write_text(json.dumps({"asset": {"version": "1.0"}, "meshes": {"m": {}}}))
    with pytest.raises(AssetError, match="old.gltf: glTF version 1.0, only glTF 2.0"):
        inspect_glb(old)


def test_named_test_assets_are_held_out_the_rest_split_by_hash():
    names = [f"asset{i}" for i in range(20)]
    assert split_assets(names, 0.25, seed=0, test_assets=[]) == split_assets(names, 0.25, seed=0)
    held = ["asset3", "asset17"]
    split = split_assets(names, 0.25, seed=0, test_assets=held)
    assert all(split[n] == "test" for n in held)
    rest = [n for n in names if n not in held]
    assert {n: split[n] for n in rest} == split_assets(rest, 0.25, seed=0)  # the others: the plain hash split
    assert sum(v == "test" for v in split.values()) == 2 + 5
    assert split_assets(list(reversed(names)), 0.25, seed=0, test_assets=held) == split
    assert [n for n, v in split_assets(names, 0.0, 0, held).items() if v == "test"] == held


def test_test_assets_in_prepare_and_their_errors(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(FOX, src / "fox.glb")
    shutil.copy(ROBOT, src / "robot.glb")
    variant(FOX, src / "still.glb", drop_animations=True)
    cfg = AssetsConfig(sources=["local"], local_dirs=[str(src)], test_fraction=0.0, test_assets=["robot"])
    entries, _ = prepare_assets(cfg, tmp_path / "out")
    assert {e.name: e.split for e in entries} == {"fox": "train", "robot": "test"}

    # a name that is not found stops the stage before any procedural asset is generated
    def no_blender(*args, **kwargs):
        raise AssertionError("generated before the names were checked")
    monkeypatch.setattr("fourreal.data_making.assets.generate_procedural", no_blender)
    missing = replace(cfg, sources=["procedural", "local"], procedural_count=3, test_assets=["robot", "knight"])
    with pytest.raises(ConfigError) as info:
        prepare_assets(missing, tmp_path / "out2")
    message = str(info.value)
    assert "\n" not in message and message.startswith("assets.test_assets: 'knight' is not among the assets found (proc0_")
    assert "fox, robot, still" in message and "remove it from assets.test_assets" in message
    assert "scripts/gather_assets.py" in message
    # a name found but not usable says why
    with pytest.raises(ConfigError, match=r"^assets.test_assets: 'still' was skipped \(.*has no animation"):
        prepare_assets(replace(cfg, test_assets=["still"]), tmp_path / "out3")


@pytest.mark.parametrize("values, message", [
    ({"test_assets": ["knight.glb"]}, r"assets.test_assets = \[knight.glb\]: each must be an asset name"),
    ({"test_assets": ["a", "a"]}, r"assets.test_assets = \[a, a\]: must not name an asset twice"),
    ({"procedural_motion": 0}, r"assets.procedural_motion = 0.0: must be in \(0, 4\]"),
])
def test_new_asset_params_are_validated(values, message):
    assert from_dict(AssetsConfig, {}, "params.yaml: assets").procedural_motion == 1.0
    with pytest.raises(ConfigError, match=f"^params.yaml: {message}"):
        from_dict(AssetsConfig, values, "params.yaml: assets")


# Measures, in a bpy worker, how far each asset's vertices travel over its animation, frame
# by frame (mean over vertices), relative to the asset's size: a path length, so a spin that
# turns twice as far counts twice (a distance from the first frame would not).
_MOTION = """
import json, sys
import numpy as np
from fourreal.data_making import blender
import bpy
out = {}
for path in sys.argv[1:]:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    objects = [o for o in blender.import_glb(path) if o.type == "MESH"]
    actions = [a for a in bpy.data.actions if a.users > 0]
    lo, hi = min(a.frame_range[0] for a in actions), max(a.frame_range[1] for a in actions)
    def points():
        graph = bpy.context.evaluated_depsgraph_get()
        pts = []
        for o in objects:
            e = o.evaluated_get(graph)
            mesh = e.to_mesh()
            co = np.empty(len(mesh.vertices) * 3)
            mesh.vertices.foreach_get("co", co)
            e.to_mesh_clear()
            m = np.array(e.matrix_world)
            pts.append(co.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3])
        return np.concatenate(pts)
    bpy.context.scene.frame_set(int(lo))
    last = points()
    size = float(np.linalg.norm(last.max(0) - last.min(0)))
    travelled = 0.0
    for f in range(int(lo) + 1, int(hi) + 1):
        bpy.context.scene.frame_set(f)
        now = points()
        travelled += float(np.linalg.norm(now - last, axis=1).mean()) / size
        last = now
    out[path] = travelled
print(json.dumps(out))
blender.exit_worker(0)
"""


@pytest.mark.slow
def test_larger_procedural_motion_moves_more(tmp_path):
    """assets.procedural_motion scales every family's motion: at 2.0 each asset's vertices
    travel clearly further (relative to its size) than at 1.0, same shapes and seeds."""
    cfg = AssetsConfig(procedural_count=4, procedural_seed=27, procedural_frames=24)  # one asset of each family
    calm = generate_procedural(tmp_path / "calm", cfg)
    lively = generate_procedural(tmp_path / "lively", replace(cfg, procedural_motion=2.0))
    proc = subprocess.run([sys.executable, "-c", _MOTION, *map(str, calm + lively)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    motion = json.loads(proc.stdout.strip().splitlines()[-1])
    for a, b in zip(calm, lively):
        assert a.name == b.name and motion[str(a)] > 0.01, a.name
        assert motion[str(b)] > 1.3 * motion[str(a)], (a.name, motion[str(a)], motion[str(b)])
