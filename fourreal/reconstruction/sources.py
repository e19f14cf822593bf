"""What the ``reconstruct`` stage fits and reports, over its sources: the grids of every
source directory (named ``<tag>/<grid>``, the tag standing for the directory), the depth
each grid is fitted with, and the mean scores of each source."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fourreal.formats.grid import Grid, list_grids
from fourreal.models.depth import load_depth_model, predict_depth
from fourreal.reconstruction.config import ReconstructConfig
from fourreal.running import layout
from fourreal.running.config import ConfigError

# the scores of a reconstruction that details.json averages per source
SUMMARY_KEYS = ("fit_psnr", "fit_ssim", "heldout_psnr", "heldout_ssim", "final_points")


def source_tag(source: str | Path) -> str:
    """The name of a source directory in the outputs: its path below ``data/`` joined by
    ``_`` (``data/render/grids/test``: ``render_grids_test``), else its last part."""
    parts = Path(source).parts
    return "_".join(parts[1:]) if parts[0] == layout.DATA else Path(source).name


def grid_jobs(cfg: ReconstructConfig) -> list[tuple[str, Path]]:
    """``(name, path)`` of every grid to reconstruct: the first ``max_grids`` (by name; 0:
    all) of every source, named ``<source tag>/<grid>``. FileNotFoundError for a source
    without grids."""
    jobs = []
    for source in cfg.sources:
        paths = list_grids(source)
        if not paths:
            raise FileNotFoundError(f"no grids in {source}; run the stage that writes it (dvc repro) or "
                                    "remove it from reconstruct.sources")
        tag = source_tag(source)
        jobs += [(f"{tag}/{p.name.removesuffix('.grid.npz')}", p) for p in (paths[: cfg.max_grids] if cfg.max_grids else paths)]
    return jobs


class GridDepth:
    """The depth a grid is fitted with (``reconstruct.depth``): the grid's own (``grid``, and
    ``auto`` for a grid that has depth) or the depth network's prediction (``model``, and
    ``auto`` for a grid without), the network loaded when a grid first needs it."""

    def __init__(self, cfg: ReconstructConfig) -> None:
        self.cfg, self.net = cfg, None

    def __call__(self, grid: Grid, path: str | Path) -> np.ndarray:
        """Depth ``[V, T, H, W]`` for ``grid`` (read from ``path``, named in errors)."""
        if grid.depth is not None and self.cfg.depth != "model":
            return grid.depth
        if self.cfg.depth == "grid":
            raise ConfigError(f"reconstruct: {path} has no depth; set reconstruct.depth to auto or model")
        if self.net is None:
            self.net = load_depth_model(self.cfg.depth_model)
        return predict_depth(self.net, grid.rgb.reshape(-1, *grid.rgb.shape[2:])).reshape(grid.rgb.shape[:4])


def source_means(scores: dict[str, dict], names: list[str]) -> dict[str, dict[str, float]]:
    """Per source tag (in the order of ``names``, the ``<tag>/<grid>`` names of the jobs), the
    mean of every :data:`SUMMARY_KEYS` score over its reconstructed grids (``scores`` by name;
    failed grids have none), rounded to 4 digits; a source without any is left out."""
    means = {}
    for tag in dict.fromkeys(name.split("/", 1)[0] for name in names):
        mine = [s for n, s in scores.items() if n.startswith(tag + "/")]
        if mine:
            means[tag] = {k: round(float(np.mean([s[k] for s in mine if k in s])), 4) for k in SUMMARY_KEYS}
    return means
