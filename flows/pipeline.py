"""Prefect flows over the DVC pipeline.

Each Prefect task runs ``dvc repro`` for one stage in a subprocess and streams its output to
the run's logger, so ``dvc.lock`` stays the single source of truth: a stage whose code,
params and inputs did not change is skipped, exactly as with ``dvc repro`` by hand. Every
flow first checks the whole ``params.yaml``: a bad value fails the run with one line naming
it, before any stage (and so before DVC removes any output).

    python -m flows.pipeline                 # the whole pipeline, locally (ephemeral server)
    python -m flows.pipeline pseudo4d -f     # one stage, forced
    python -m flows.serve                    # deployments for the Prefect UI
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

from prefect import flow, get_run_logger, task
from prefect.exceptions import FailedRun
from prefect.states import Failed, State

from fourreal.running.config import ConfigError
from fourreal.running.params import validate_params

REPO = Path(__file__).resolve().parents[1]
_RUNNING = re.compile(r"^Running stage '([^']+)'")


def _dvc(args: list[str]) -> list[str]:
    """The command line of a DVC call that waits for DVC's lock instead of failing."""
    return [sys.executable, "-m", "dvc", "--wait-for-lock", *args]


def _env() -> dict[str, str]:
    """Environment for DVC: the interpreter running this flow comes first on PATH, so
    stage commands (``python -m stages...``) run in the same environment."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("DO_NOT_TRACK", "1")
    return env


@contextlib.contextmanager
def workspace_lock(repo: str | Path) -> Iterator[None]:
    """One DVC command of these flows at a time per workspace: a second trigger (a UI
    double-click, two deployments at once) waits here, since concurrent ``dvc repro`` calls
    fail on each other's busy outputs."""
    path = Path(repo) / ".dvc" / "tmp" / "fourreal-flows.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def list_stages(repo: str | Path = REPO) -> list[str]:
    """All stages of ``dvc.yaml`` in the order ``dvc repro`` runs them."""
    out = subprocess.run(_dvc(["repro", "--dry", "--force"]), cwd=repo, env=_env(),
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"dvc repro --dry failed in {repo}:\n{out.stdout}\n{out.stderr}")
    return [m.group(1) for line in out.stdout.splitlines() if (m := _RUNNING.match(line))]


@task(task_run_name="dvc repro {stage}")
def repro_stage(stage: str, repo: str, force: bool = False, upstream: bool = False) -> str:
    """Run ``dvc repro`` for one stage; returns ``"ran"`` or ``"skipped"`` (up to date).

    Output lines stream to the Prefect logger; a failing stage raises with its last lines.
    """
    args = ["repro", *([] if upstream else ["--single-item"]), *(["--force"] if force else []), stage]
    with workspace_lock(repo):
        lines = _stream(_dvc(args), repo, f"stage {stage}")
    return "ran" if any(_RUNNING.match(line) for line in lines) else "skipped"


def _stream(cmd: list[str], repo: str, what: str) -> list[str]:
    """Run ``cmd`` (an argument list, never a shell string) in ``repo``, streaming its output
    to the run's logger; raise with the last lines if it fails. Returns the output lines."""
    logger = get_run_logger()
    logger.info("$ %s", " ".join(cmd[2:]))
    proc = subprocess.Popen(cmd, cwd=repo, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        if not line:
            continue
        lines.append(line)
        logger.info(line)
    if proc.wait() != 0:
        tail = "\n".join(lines[-20:])
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return lines


def bad_params(repo: str | Path) -> State | None:
    """A failed state naming the first bad value of ``repo``'s params.yaml (one line, no
    traceback), or None when the whole file is valid."""
    try:
        validate_params(Path(repo) / "params.yaml")
    except ConfigError as exc:
        get_run_logger().error("%s", exc)
        return Failed(message=str(exc))
    return None


@flow(name="pipeline", description="Reproduce every stage of dvc.yaml in order (only what changed, unless forced).")
def pipeline(force: bool = False, repo: str = str(REPO)) -> dict[str, str] | State:
    """Run all stages in DVC's order; returns ``{stage: "ran" | "skipped"}``."""
    if (failed := bad_params(repo)) is not None:
        return failed
    return {stage: repro_stage(stage, repo, force) for stage in list_stages(repo)}


@flow(name="stage", description="Reproduce one DVC stage (optionally with its changed upstream stages).")
def stage(name: str, force: bool = False, upstream: bool = False, repo: str = str(REPO)) -> str | State:
    """Run one stage; returns ``"ran"`` or ``"skipped"``."""
    if (failed := bad_params(repo)) is not None:
        return failed
    stages = list_stages(repo)
    if name not in stages:
        raise ValueError(f"unknown stage {name!r}; dvc.yaml has {stages}")
    return repro_stage(name, repo, force, upstream)


@task(task_run_name="video_to_4d {video}")
def run_video_to_4d(video: str, out: str, repo: str) -> str:
    """The ``video_to_4d`` stage on one file (outside DVC: a user's own input); returns the
    output directory the stage reports (its default when ``out`` is empty)."""
    cmd = [sys.executable, "-m", "stages.video_to_4d", "--input", video] + (["--out", out] if out else [])
    lines = _stream(cmd, repo, f"video_to_4d on {video}")
    wrote = [line.split(";")[0].removeprefix("wrote ") for line in lines if line.startswith("wrote ")]
    if not wrote:
        raise RuntimeError(f"video_to_4d on {video} finished without reporting its output directory")
    return wrote[-1]


@flow(name="video_to_4d", description="One video (or image) in, a 4D grid and its deformable 3D Gaussians out.")
def video_to_4d(video: str, out: str = "", repo: str = str(REPO)) -> str | State:
    """Run the video -> 4D path on ``video``; outputs go to ``out`` (default
    ``data/video_to_4d_runs/<name>``). Returns the output directory."""
    if (failed := bad_params(repo)) is not None:
        return failed
    if not Path(video).exists():
        raise FileNotFoundError(f"{video}: no such file; give the path of a video or image on this machine")
    return run_video_to_4d(video, out, repo)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the pipeline, or one stage, as a Prefect flow.")
    parser.add_argument("stage", nargs="?", help="stage name (default: the whole pipeline)")
    parser.add_argument("-f", "--force", action="store_true", help="rerun even if up to date")
    args = parser.parse_args()
    try:
        result = stage(args.stage, args.force) if args.stage else pipeline(args.force)
    except FailedRun as exc:
        sys.exit(f"error: {exc}")
    print(result)


if __name__ == "__main__":
    main()
