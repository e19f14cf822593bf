"""What every stage entry point shares: its command line, logging, and metrics output.

A stage writes its results to two files, both tracked by git and the same on every run of
the same inputs: ``metrics.json`` (a DVC metric) holds a few headline numbers under the shared
names of :data:`HEADLINE_KEYS`, so that ``dvc metrics show`` lines every stage up in a few
columns; ``details.json`` beside it (a DVC output with ``cache: false``, not a metric) holds
every number the stage computed, under its own names, and is what other stages and tools
read. How a run went (wall-clock seconds, throughput, MFU, peak memory, work reused from an
earlier run) goes to ``run.json``, which neither git nor DVC tracks.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Callable, Iterable

from rich.logging import RichHandler

from fourreal.formats.files import write_json
from fourreal.running.errors import DEBUG_ENV, report_user_errors
from fourreal.running.layout import STAGE_DIRS

# The names a stage's metrics.json may use (what each means), shared by every stage so that
# the same quantity falls in the same column of `dvc metrics show`; a stage uses at most six.
# Stages that compare 4D variants report the main one (fourreal.sampling.sample_4d.main_variant).
HEADLINE_KEYS: dict[str, str] = {
    "clips": "training clips written",
    "grids": "grids written, scored or reconstructed",
    "assets": "usable assets gathered",
    "held_out": "how many of those are held out for testing",
    "skipped": "inputs left out: unreadable videos, unusable assets, failed renders or reconstructions",
    "steps": "optimizer steps trained",
    "loss": "final training loss",
    "heldout_loss": "loss of the EMA weights on held-out data",
    "psnr": "PSNR (dB) against the truth on held-out data",
    "ssim": "SSIM against the truth on held-out data",
    "fg_psnr": "PSNR (dB) over the truth's foreground pixels only",
    "baseline_psnr": "PSNR (dB) of the best baseline the result is compared with",
    "margin_db": "psnr minus baseline_psnr (negative: the baseline wins)",
    "absrel": "mean absolute relative depth error on held-out frames",
    "warp_error_time": "optical-flow warping error along time (rows) of the generated grids",
}


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


def write_metrics(out_dir: str | Path, headline: dict, details: dict) -> Path:
    """Write a stage's ``metrics.json`` (``headline``: a few numbers named from
    :data:`HEADLINE_KEYS`; a name outside it is a ValueError, before anything is written) and
    ``details.json`` (``details``: every number the stage computed), both results that a
    rerun on the same inputs reproduces exactly, never timings (:func:`write_run`). Returns
    the path of ``metrics.json``."""
    unknown = [k for k in headline if k not in HEADLINE_KEYS]
    if unknown:
        raise ValueError(f"metrics.json: {', '.join(unknown)} not among HEADLINE_KEYS (fourreal.running.stage); "
                         "name a headline number from them or put it in details.json only")
    out_dir = Path(out_dir)
    write_json(out_dir / "details.json", details)
    path = out_dir / "metrics.json"
    write_json(path, headline)
    logging.getLogger("stage").info("metrics: %s", headline)
    return path


def versus_baseline(psnr: float, baselines: Iterable[float]) -> dict[str, float]:
    """``baseline_psnr``, the best of ``baselines`` (the PSNRs of what a result is compared
    with), and ``margin_db``, ``psnr`` above it; empty when there is no baseline."""
    best = max(baselines, default=None)
    return {} if best is None else {"baseline_psnr": best, "margin_db": round(psnr - best, 3)}


def write_run(out_dir: str | Path, facts: dict) -> Path:
    """Write a stage's ``run.json``: how this run went (wall-clock seconds, throughput, MFU,
    memory, work reused from an earlier run). Logged and kept beside the metrics but tracked
    by neither git nor DVC, since no two runs agree on them."""
    path = Path(out_dir) / "run.json"
    write_json(path, facts)
    logging.getLogger("stage").info("run: %s", facts)
    return path
