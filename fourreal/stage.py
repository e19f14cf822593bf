"""What every stage entry point shares: its command line, logging, and metrics output."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from rich.logging import RichHandler

from fourreal.files import write_json


def stage_args(name: str, description: str, default_out: str) -> argparse.Namespace:
    """Parse a stage's command line: ``--params`` (default ``params.yaml``) and ``--out``
    (default ``data/<stage>``), and set up logging."""
    parser = argparse.ArgumentParser(prog=f"stages.{name}", description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--out", default=default_out, help=f"output directory (default: {default_out})")
    args = parser.parse_args()
    setup_logging()
    return args


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
    """Write a stage's ``metrics.json`` (tracked by DVC with ``cache: false``)."""
    path = Path(out_dir) / "metrics.json"
    write_json(path, metrics)
    logging.getLogger("stage").info("metrics: %s", metrics)
    return path
