"""Two triggers at once, network exposure and shell safety."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO


@pytest.mark.slow
def test_two_concurrent_triggers_run_one_after_the_other(tmp_path):
    """Two `dvc repro` at once fail on each other's busy outputs; the flows' workspace lock
    makes a second trigger (a UI double-click) wait for the first instead, and both end with
    consistent outputs."""
    from flows.pipeline import _dvc, _env

    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True, env=_env())
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  slow:\n    cmd: python -c \"import time, pathlib; p = pathlib.Path('out.txt'); "
        "p.write_text('start\\n'); time.sleep(3); p.write_text(p.read_text() + 'end\\n')\"\n    outs:\n      - out.txt\n")
    locked = ("import subprocess, sys; from flows.pipeline import _dvc, _env, workspace_lock\n"
              "with workspace_lock(sys.argv[1]):\n"
              "    sys.exit(subprocess.run(_dvc(['repro', '--force', 'slow']), cwd=sys.argv[1], env=_env()).returncode)")

    def twice(cmd: list[str]) -> list[subprocess.Popen]:
        env = {**_env(), "PYTHONPATH": str(REPO)}
        return [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                for _ in range(2)]

    raw = twice(_dvc(["repro", "--force", "slow"]))
    assert sorted(p.wait(timeout=120) for p in raw) != [0, 0]  # without the lock one of them is refused
    runs = twice([sys.executable, "-c", locked, str(tmp_path)])
    codes = [p.wait(timeout=120) for p in runs]
    assert codes == [0, 0], [p.stdout.read() for p in runs]
    assert (tmp_path / "out.txt").read_text() == "start\nend\n"  # whole, not interleaved
    status = subprocess.run(_dvc(["status"]), cwd=tmp_path, env=_env(), capture_output=True, text=True)
    assert "up to date" in status.stdout


def test_servers_bind_to_localhost_by_default():
    from fourreal.running import viewer
    from fourreal.running.cli import build_parser

    assert inspect.signature(viewer.serve).parameters["host"].default == "127.0.0.1"
    assert build_parser().parse_args(["view", "x"]).host == "127.0.0.1"
    makefile = (REPO / "Makefile").read_text()
    assert "prefect server start --host 127.0.0.1" in makefile


def test_no_shell_strings_anywhere():
    """Subprocesses get argument lists: no shell=True, os.system or os.popen in the code."""
    offenders = []
    for folder in ("fourreal", "stages", "flows", "benchmarks"):
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.keyword) and node.arg == "shell" and getattr(node.value, "value", False):
                    offenders.append(f"{path}:{node.lineno} shell=True")
                if isinstance(node, ast.Attribute) and node.attr in ("system", "popen") and \
                        getattr(node.value, "id", "") == "os":
                    offenders.append(f"{path}:{node.lineno} os.{node.attr}")
    assert not offenders, offenders


def test_paths_with_spaces_quotes_and_non_ascii_work(tmp_path):
    from fourreal.formats.grid import Grid, load_grid, save_grid
    from fourreal.formats.preview import write_mp4
    from fourreal.running.cli import main
    from fourreal.sampling.video_to_4d import VideoTo4DConfig, read_input

    odd = tmp_path / "my dir" / "it's \"quoted\" – grüße"
    odd.mkdir(parents=True)
    rng = np.random.default_rng(0)
    grid = Grid(rgb=rng.integers(0, 255, (2, 3, 8, 8, 3), dtype=np.uint8), meta={"kind": "test", "fps": 8.0})
    path = save_grid(odd / "a b.grid.npz", grid)
    assert np.array_equal(load_grid(path).rgb, grid.rgb)
    assert main(["show", str(path), "--out", str(odd / "previews here"), "--no-mp4"]) == 0
    assert (odd / "previews here" / "a b.png").is_file()
    video = odd / "clip $HOME; rm -rf x.mp4"
    write_mp4(video, rng.integers(0, 255, (10, 32, 48, 3), dtype=np.uint8), fps=8)
    frames, _ = read_input(video, VideoTo4DConfig(times=4, height=16, width=24))
    assert frames.shape == (4, 16, 24, 3)


def test_to4d_command_passes_the_path_through_unchanged(tmp_path, monkeypatch):
    """`fourreal to4d` hands the user's path, shell characters and all, to the video_to_4d run
    as it is (no shell, no splitting), and names the run after it."""
    import fourreal.running.cli as cli
    import fourreal.sampling.video_to_4d as v2

    seen = {}
    monkeypatch.setattr(v2, "run_video_to_4d", lambda cfg, recon, out: seen.update(input=cfg.input, out=out) or {})
    odd = tmp_path / "a b; echo pwned.mp4"
    odd.write_bytes(b"x")
    assert cli.main(["to4d", str(odd), "--params", str(REPO / "params.yaml")]) == 0
    assert seen["input"] == str(odd) and seen["out"] == v2.RUNS / "a b; echo pwned"
    assert cli.main(["to4d", str(tmp_path / "missing.mp4")]) == 2
