"""The sections of ``params.yaml`` and the config class each one is checked against.

:func:`validate_params` checks the whole file at once (unknown or missing sections, and every
key, type and range of every section), so that a bad value stops a run before anything is
removed or recomputed: the ``check_params`` stage runs it ahead of every other stage of
``dvc repro``, and the Prefect flows call it before their first stage.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from fourreal.config import ConfigError, from_dict, read_params

# section -> (module, config class), imported only when checked
SECTIONS: dict[str, tuple[str, str]] = {
    "videos": ("fourreal.videos", "VideosConfig"),
    "pseudo4d": ("fourreal.pseudo4d", "Pseudo4DConfig"),
    "assets": ("fourreal.assets", "AssetsConfig"),
    "render": ("fourreal.render", "RenderConfig"),
    "train_base": ("fourreal.train_configs", "TrainBaseConfig"),
    "train_upsampler": ("fourreal.train_configs", "TrainUpsamplerConfig"),
    "train_4d": ("fourreal.train_configs", "Train4DConfig"),
    "sample_4d": ("fourreal.sample_4d", "Sample4DConfig"),
    "train_depth": ("fourreal.depth", "TrainDepthConfig"),
    "reconstruct": ("fourreal.reconstruction.config", "ReconstructConfig"),
    "baseline_4real": ("fourreal.baseline_4real", "Baseline4RealConfig"),
    "video_to_4d": ("fourreal.video_to_4d", "VideoTo4DConfig"),
    "evaluate": ("fourreal.evaluation", "EvaluateConfig"),
}


def config_class(section: str) -> type:
    """The config dataclass of ``section``."""
    module, name = SECTIONS[section]
    return getattr(importlib.import_module(module), name)


def validate_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Load every section of the params file as its config; returns ``{section: config}``.
    Raises :class:`ConfigError` (one line: the file, the key path, the value and what is
    allowed) at the first problem."""
    params = read_params(path)
    name = Path(path).name
    unknown = sorted(set(params) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{name}: {unknown[0]}: unknown section; the sections are {sorted(SECTIONS)}")
    missing = [s for s in SECTIONS if s not in params]
    if missing:
        raise ConfigError(f"{name}: section '{missing[0]}' missing; copy it from the repository's params.yaml")
    return {section: from_dict(config_class(section), params[section], f"{name}: {section}") for section in SECTIONS}
