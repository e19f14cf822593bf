import shutil
import subprocess

import pytest

from fourreal.assets import (
    AssetError, AssetsConfig, generate_procedural, inspect_glb, local_assets, objaverse_assets, prepare_assets,
    split_assets,
)
from fourreal.procedural import FAMILIES

from conftest import REPO
from glb_tools import objaverse_cache, variant

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
