"""What every stage entry point shares: its command line, logging, and metrics output.

``metrics.json`` is tracked (git + ``dvc metrics``) and must be the same on every run of the
same inputs, so it holds results only. How a run went (wall-clock seconds, throughput, MFU,
peak memory, work reused from an earlier run) goes to ``run.json`` beside it, which neither
git nor DVC tracks.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Callable

from rich.logging import RichHandler

from fourreal.formats.files import write_json
from fourreal.running.errors import DEBUG_ENV, report_user_errors
from fourreal.running.layout import STAGE_DIRS


def stage_parser(name: str, description: str) -> argparse.ArgumentParser:
    """The argument parser of stage ``name``; its help is ``description`` (the module's
    docstring, laid out as written) and how to see the traceback of an error."""
    return argparse.ArgumentParser(prog=f"stages.{name}", description=description,
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog=f"An error in what was given is one line; {DEBUG_ENV}=1 shows its traceback.")


def stage_args(name: str, description: str) -> argparse.Namespace:
    """Parse the command line of stage ``name``: ``--params`` (default ``params.yaml``) and
    ``--out`` (default its directory in :data:`fourreal.running.layout.STAGE_DIRS`), and set up logging."""
    default_out = STAGE_DIRS[name]
    parser = stage_parser(name, description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--out", default=default_out, help=f"output directory (default: {default_out})")
    args = parser.parse_args()
    setup_logging()
    return args


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's ``main``. A user error (a bad parameter, a missing or wrong file, a
    missing or mismatched model) ends it with one line on stderr and exit status 2 instead of
    a traceback; ``FOURREAL_DEBUG=1`` shows the traceback (:mod:`fourreal.running.errors`)."""
    status = report_user_errors(main)
    if status:
        sys.exit(status)


def setup_logging(level: int = logging.INFO) -> None:
    """Readable log lines on stderr (plain when not on a terminal, e.g. under DVC/Prefect)."""
    if os.isatty(2):
        handler: logging.Handler = RichHandler(show_path=False, rich_tracebacks=False)
        fmt = "%(message)s"
    else:
        handler = logging.StreamHandler()
        fmt = "%(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level, format=fmt, handlers=[handler], force=True)


def write_metrics(out_dir: str | Path, metrics: dict) -> Path:
    """Write a stage's ``metrics.json`` (tracked by DVC with ``cache: false``): results that
    a rerun on the same inputs reproduces exactly, never timings (:func:`write_run`)."""
    path = Path(out_dir) / "metrics.json"
    write_json(path, metrics)
    logging.getLogger("stage").info("metrics: %s", metrics)
    return path


def write_run(out_dir: str | Path, facts: dict) -> Path:
    """Write a stage's ``run.json``: how this run went (wall-clock seconds, throughput, MFU,
    memory, work reused from an earlier run). Logged and kept beside the metrics but tracked
    by neither git nor DVC, since no two runs agree on them."""
    path = Path(out_dir) / "run.json"
    write_json(path, facts)
    logging.getLogger("stage").info("run: %s", facts)
    return path
