"""Run pipeline stages inside a batch job with a wall-clock limit, in a workspace that the
next job of a chain may find again (or not: then it starts from what travelled with it).

    python scripts/timed_job.py --workspace /tmp/ws --params run.yaml --budget 540 \\
        --unpack packed/clips=data/videos/clips --unpack packed/render_train=data/render/grids/train \\
        --stage pseudo4d --stage train_base --stage "@bf16 data/train_base/model" \\
        --stage "train_4d --variant soft --phase pseudo" \\
        --stage "@over-base data/train_4d/soft/model data/train_base/model" \\
        --collect data/train_base/model --out results/

- ``--unpack PACKED=DEST``: a directory written by ``fourreal pack`` (or a plain directory,
  copied) made into the workspace's ``DEST``, unless ``DEST`` is already there.
- ``--stage "NAME ARGS"``: ``python -m stages.NAME ARGS`` run in the workspace, in order, each
  only if it has not finished in an earlier job of the chain. A training stage gets its
  ``optim.time_limit_s`` set to the time left less its set-up (the limit is not part of a
  run's resume key): it stops with a checkpoint when the budget runs out and the next job
  continues it.
- Steps of the job itself, among the stages: ``"@bf16 MODEL"`` stores an exported model
  directory's weights in bf16 (what travels and ships; every later stage then starts from
  exactly those weights); ``"@over-base MODEL_4D BASE"`` rewrites an exported 4D model to hold
  only the weights that differ from its base model ``BASE`` (bf16; its ``config.json`` links
  to ``BASE``: :func:`fourreal.running.bundle.write_over_base`): the sync layers, a few MB.
- ``--collect PATH``: workspace files put into ``OUT/back.tar.NN`` (parts of at most
  ``--part-mb``), with ``OUT/status.json`` (per stage: done, seconds, exit status) and each
  stage's log beside them.

The workspace's ``params.yaml`` is ``--params`` (written again by every job); the code is
this checkout's (``PYTHONPATH``), so a job always runs the code that travelled with it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# The optim section a training stage reads, by stage name (and --phase for train_4d).
OPTIM_SECTIONS = {"train_base": ("train_base", "optim"), "train_upsampler": ("train_upsampler", "optim"),
                  "train_4d pseudo": ("train_4d", "pseudo"), "train_4d render": ("train_4d", "render")}
OUT_OF_TIME = "time limit of"  # what fourreal.training.train logs when it stops at time_limit_s
MARGIN_S = 45.0  # left for a stage's start, compile, export and the final packing
# A training stage's time_limit_s counts the training loop only: before it, loading the data
# and the model took up to ~70 s (train_base of the small profile, 26k clips, on an H200).
SETUP_S = 75.0


def _optim_section(argv: list[str]) -> tuple[str, str] | None:
    """The (section, key) of the optim block a stage's command line trains with, or None."""
    if argv[0] == "train_4d":
        return OPTIM_SECTIONS[f"train_4d {argv[argv.index('--phase') + 1]}"]
    return OPTIM_SECTIONS.get(argv[0])


def _slug(argv: list[str]) -> str:
    return "_".join(a.lstrip("-") for a in argv)


def _unpack(workspace: Path, spec: str) -> None:
    """Make ``DEST`` from the packed (or plain) directory ``PACKED`` of ``PACKED=DEST``."""
    src, dest = spec.split("=", 1)
    src, target = (ROOT / src).resolve(), workspace / dest
    if target.exists():
        return
    if (src / "index.json").is_file():
        from fourreal.formats.transport import unpack

        unpack(src, target)
    else:
        shutil.copytree(src, target)
    print(f"unpacked {src} -> {target}", flush=True)


def _run_stage(workspace: Path, argv: list[str], params: dict, deadline: float, logs: Path) -> dict:
    """Run one stage under the time left; returns its record (done, seconds, returncode)."""
    left = deadline - time.time()
    section = _optim_section(argv)
    if section is not None:
        stage_params = json.loads(json.dumps(params))
        stage_params[section[0]][section[1]]["time_limit_s"] = max(1.0, left - MARGIN_S - SETUP_S)
        params_path = workspace / f".params_{_slug(argv)}.yaml"
        params_path.write_text(yaml.safe_dump(stage_params, sort_keys=False))
    else:
        params_path = workspace / "params.yaml"
    cmd = [sys.executable, "-m", f"stages.{argv[0]}", *argv[1:], "--params", str(params_path)]
    path = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(path)), "PYTHONUNBUFFERED": "1"}
    log_path = logs / f"{_slug(argv)}.log"
    start = time.time()
    header = f"$ {shlex.join(cmd)}  ({left:.0f} s left)"
    with log_path.open("a") as log:
        print(header, flush=True)
        log.write(header + "\n")
        log.flush()
        try:
            rc = subprocess.run(cmd, cwd=workspace, env=env, stdout=log, stderr=subprocess.STDOUT,
                                timeout=max(1.0, left - 10.0)).returncode
        except subprocess.TimeoutExpired:
            rc = -9
    text = log_path.read_text(errors="replace")
    done = rc == 0 and OUT_OF_TIME not in text.rsplit(header, 1)[-1]
    print("\n".join(text.splitlines()[-6:]), flush=True)
    return {"done": done, "seconds": round(time.time() - start, 1), "returncode": rc}


def _bf16_model(workspace: Path, model: str) -> None:
    """Store the weights of the exported model directory ``model`` in bf16, atomically."""
    from fourreal.formats.files import atomic_dir
    from fourreal.running.bundle import copy_weights, read_weights

    src = workspace / model
    weights = read_weights(src)
    with atomic_dir(src) as tmp:
        copy_weights(src, weights, tmp, 15.0)


def _over_base(workspace: Path, model_4d: str, base: str) -> None:
    """Rewrite the exported 4D model directory ``model_4d`` over its base model ``base``."""
    from fourreal.formats.files import atomic_dir
    from fourreal.running.bundle import read_weights, write_over_base

    src, base_dir = workspace / model_4d, workspace / base
    own, base_weights = read_weights(src), read_weights(base_dir)
    with atomic_dir(src) as tmp:
        write_over_base(tmp, src, own, base_dir, base_weights, os.path.relpath(base_dir, src), 15.0)


STEPS = {"@bf16": _bf16_model, "@over-base": _over_base}


def _run_step(workspace: Path, argv: list[str]) -> dict:
    """Run one of the job's own steps (``STEPS``); returns its record like a stage's."""
    start = time.time()
    try:
        STEPS[argv[0]](workspace, *argv[1:])
        rc = 0
    except Exception as exc:  # recorded, and the job stops as after a failed stage
        print(f"{shlex.join(argv)} failed: {exc}", flush=True)
        rc = 1
    return {"done": rc == 0, "seconds": round(time.time() - start, 1), "returncode": rc}


def _collect(workspace: Path, paths: list[str], out: Path, part_mb: float) -> None:
    """Workspace ``paths`` into ``out/back.tar.NN`` parts of at most ``part_mb`` MiB."""
    tar_path = out / "back.tar"
    with tarfile.open(tar_path, "w") as tar:
        for p in paths:
            if (workspace / p).exists():
                tar.add(workspace / p, arcname=p)
    size, part = int(part_mb * 2**20), 0
    with tar_path.open("rb") as f:
        while chunk := f.read(size):
            (out / f"back.tar.{part:02d}").write_bytes(chunk)
            part += 1
    tar_path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, required=True, help="where data/ lives between jobs")
    parser.add_argument("--params", type=Path, required=True, help="the params file the stages run with")
    parser.add_argument("--budget", type=float, required=True, help="seconds this job may run")
    parser.add_argument("--unpack", action="append", default=[], help="PACKED=DEST (repeatable)")
    parser.add_argument("--stage", action="append", default=[],
                        help='"NAME ARGS" or "@STEP ARGS" (repeatable, in order)')
    parser.add_argument("--collect", action="append", default=[], help="workspace path to send back (repeatable)")
    parser.add_argument("--out", type=Path, required=True, help="directory for back.tar.NN, status.json, logs")
    parser.add_argument("--part-mb", type=float, default=15.0, help="size of each back.tar part in MiB (default 15)")
    args = parser.parse_args()

    deadline = time.time() + args.budget
    ws, out = args.workspace.resolve(), args.out.resolve()
    (ws / ".done").mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load(args.params.read_text())
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for spec in args.unpack:
        _unpack(ws, spec)
    status_path = ws / ".done" / "status.json"
    status = json.loads(status_path.read_text()) if status_path.is_file() else {}
    for stage in args.stage:
        argv = shlex.split(stage)
        record = status.get(stage, {})
        if record.get("done"):
            continue
        if deadline - time.time() < 2 * MARGIN_S:
            print(f"not started (too little time left): {stage}", flush=True)
            break
        if argv[0] in STEPS:
            result = _run_step(ws, argv)
        else:
            result = _run_stage(ws, argv, params, deadline, out / "logs")
        record = {"done": result["done"], "seconds": record.get("seconds", 0.0) + result["seconds"],
                  "runs": record.get("runs", []) + [result]}
        status[stage] = record
        status_path.write_text(json.dumps(status, indent=1))
        if not result["done"]:
            break  # later stages need this one
    status_path.write_text(json.dumps(status, indent=1))
    shutil.copy2(status_path, out / "status.json")
    _collect(ws, args.collect, out, args.part_mb)


if __name__ == "__main__":
    main()
