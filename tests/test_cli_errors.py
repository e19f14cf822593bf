"""User errors of the ``fourreal`` command and the stages: one or two lines naming the file and the
fix, no traceback (``--debug`` or ``FOURREAL_DEBUG=1`` shows it); every option has help."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fourreal.models.dit import DiT, DiTConfig
from fourreal.models.model4d import build_model4d
from fourreal.running.cli import build_parser
from fourreal.running.errors import DEBUG_ENV
from fourreal.training.model_files import export_model, model4d_config
from fourreal.training.optim import OptimConfig, Phase

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A directory with ``params.yaml`` (the repository's, its 4D model a tiny one here),
    ``bad.yaml`` (the same with ``video_to_4d.steps: 0``) and ``x.grid.npz`` (not an archive)."""
    tmp = tmp_path_factory.mktemp("inputs")
    torch.manual_seed(0)
    model = build_model4d(DiT(DiTConfig(patch=4, dim=24, depth=1, heads=2)), "soft")
    export_model(tmp / "m4d", model, model4d_config(model, OptimConfig(phases=[Phase(1, 16, 32, 4, 1)])), 15.0)
    text = (REPO / "params.yaml").read_text()
    start = text.index("\nvideo_to_4d:")
    text = text[:start] + text[start:].replace("  model_4d: ", f"  model_4d: {tmp / 'm4d'}  # ", 1)
    (tmp / "params.yaml").write_text(text)
    steps = text.index("  steps: ", start)
    (tmp / "bad.yaml").write_text(text[:steps] + "  steps: 0" + text[text.index("\n", steps):])
    (tmp / "x.grid.npz").write_text("not an archive")
    return tmp


def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    """``python -m ARGS`` from the repository root, without FOURREAL_DEBUG unless given."""
    base = {k: v for k, v in os.environ.items() if k != DEBUG_ENV}
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True,
                          env={**base, "PYTHONPATH": str(REPO), **env})


CLI = "fourreal.running.cli"
CASES = {  # name: (command after `python -m`, what the error line says)
    "non-video": ([CLI, "to4d", "README.md", "--params", "{tmp}/params.yaml", "--out", "{tmp}/o"],
                  "README.md: not a video that can be decoded"),
    "missing file": ([CLI, "to4d", "{tmp}/missing.mp4"], "missing.mp4: no such file"),
    "non-grid for show": ([CLI, "show", "README.md", "--out", "{tmp}/p"],
                          "README.md: not a grid file; `fourreal show` takes a .grid.npz file"),
    "grid name, not an npz": ([CLI, "show", "{tmp}/x.grid.npz", "--out", "{tmp}/p"],
                              "x.grid.npz: not a grid file (not an .npz archive)"),
    "bad param": ([CLI, "to4d", "README.md", "--params", "{tmp}/bad.yaml"], "bad.yaml: video_to_4d.steps = 0: must be >= 1"),
    "stage, non-video": (["stages.video_to_4d", "--input", "README.md", "--params", "{tmp}/params.yaml", "--out",
                          "{tmp}/o"], "README.md: not a video that can be decoded"),
    "stage, missing params": (["stages.check_params", "--params", "{tmp}/none.yaml"], "none.yaml: not found"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_user_errors_are_short_and_name_the_file(case, inputs):
    args, expected = CASES[case]
    out = run([a.format(tmp=inputs) for a in args])
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) <= 2 and "Traceback" not in out.stderr, out.stderr
    assert lines[0].startswith("error: ") and expected in lines[0], out.stderr


@pytest.mark.parametrize("case", ["non-video", "stage, non-video"])
def test_debug_shows_the_traceback(case, inputs):
    args, expected = CASES[case]
    args = [a.format(tmp=inputs) for a in args]
    out = run([CLI, "--debug", *args[1:]]) if args[0] == CLI else run(args, **{DEBUG_ENV: "1"})
    assert out.returncode != 0 and "Traceback" in out.stderr and expected in out.stderr


def test_debug_goes_before_or_after_the_command():
    parser = build_parser()
    assert parser.parse_args(["--debug", "show", "g.grid.npz"]).debug
    assert parser.parse_args(["show", "g.grid.npz", "--debug"]).debug
    assert not parser.parse_args(["show", "g.grid.npz"]).debug


def test_every_command_is_listed_and_every_option_has_help_and_its_default():
    parser = build_parser()
    (commands,) = [a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert "to4d" in commands
    listed = {line.split()[0] for line in parser.format_help().splitlines() if line.startswith("    ") and
              len(line.split()) > 1}
    assert set(commands) <= listed  # each with its one-line description
    for name, cmd in commands.items():
        formatter = cmd._get_formatter()
        for action in cmd._actions:
            if "-h" in action.option_strings:
                continue
            assert action.help and action.help.strip(), f"fourreal {name} {action.dest}: no help"
            empty = action.default is None or action.default is False or action.default in ("", argparse.SUPPRESS)
            if action.option_strings and not empty:
                assert "%(default)s" in formatter._get_help_string(action), f"fourreal {name} {action.dest}"
