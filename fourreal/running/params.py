"""The sections of ``params.yaml`` and the config class each one is checked against.

:func:`validate_params` checks the whole file at once (unknown or missing sections, and every
key, type and range of every section), so that a bad value stops a run before anything is
removed or recomputed: the ``check_params`` stage runs it ahead of every other stage of
``dvc repro``, and the Prefect flows call it before their first stage.

Besides the stage sections, the file holds sections of shared defaults (:data:`SHARED`):
``optim_defaults`` fills the keys every optimizer block leaves out
(:func:`fourreal.running.config.block_data`).
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from pathlib import Path
from typing import Any

from fourreal.running.config import ConfigError, from_dict, read_params

# section -> (module, config class), imported only when checked
SECTIONS: dict[str, tuple[str, str]] = {
    "videos": ("fourreal.data_making.videos", "VideosConfig"),
    "pseudo4d": ("fourreal.data_making.pseudo4d", "Pseudo4DConfig"),
    "assets": ("fourreal.data_making.assets", "AssetsConfig"),
    "render": ("fourreal.data_making.render", "RenderConfig"),
    "train_base": ("fourreal.training.train_configs", "TrainBaseConfig"),
    "train_upsampler": ("fourreal.training.train_configs", "TrainUpsamplerConfig"),
    "train_4d": ("fourreal.training.train_configs", "Train4DConfig"),
    "sample_4d": ("fourreal.sampling.sample_4d", "Sample4DConfig"),
    "train_depth": ("fourreal.models.depth", "TrainDepthConfig"),
    "reconstruct": ("fourreal.reconstruction.config", "ReconstructConfig"),
    "baseline_4real": ("fourreal.baseline.baseline_4real", "Baseline4RealConfig"),
    "video_to_4d": ("fourreal.sampling.video_to_4d", "VideoTo4DConfig"),
    "evaluate": ("fourreal.evaluation.tables", "EvaluateConfig"),
}


# section of shared defaults -> (module, config class of the blocks it fills; the class
# names the section in its DEFAULTS_SECTION)
SHARED: dict[str, tuple[str, str]] = {
    "optim_defaults": ("fourreal.training.optim", "OptimConfig"),
}


def config_class(section: str) -> type:
    """The config dataclass of ``section`` (a stage section or a section of shared defaults)."""
    module, name = SECTIONS[section] if section in SECTIONS else SHARED[section]
    return getattr(importlib.import_module(module), name)


def _block_classes(cls: type) -> list[type]:
    """The config classes of ``cls``'s blocks: its dataclass fields (also as the values of a
    mapping or the items of a list), at any depth, ``cls`` included."""
    found = [cls]
    for tp in typing.get_type_hints(cls).values():
        for inner in (tp, *typing.get_args(tp)):
            if dataclasses.is_dataclass(inner) and inner not in found:
                found += [c for c in _block_classes(inner) if c not in found]
    return found


def block_class(path: list[str]) -> type | None:
    """The config class of the block at key path ``path`` of the params file
    (``["train_4d", "pseudo"]``: ``OptimConfig``); None where there is no block."""
    if not path or path[0] not in SECTIONS and path[0] not in SHARED:
        return None
    cls: Any = config_class(path[0])
    for key in path[1:]:
        tp = typing.get_type_hints(cls).get(key) if dataclasses.is_dataclass(cls) else None
        if tp is None and typing.get_origin(cls) is dict:  # a mapping's value, e.g. train_4d.variants.soft
            tp = typing.get_args(cls)[1]
        if tp is None:
            return None
        cls = tp
    return cls if dataclasses.is_dataclass(cls) else None


def shared_sections(key: str) -> list[str]:
    """The sections of shared defaults that the blocks under ``key`` (a section, or a dotted
    key path such as ``train_4d.pseudo``) read: what a stage that reads ``key`` also depends on."""
    cls = block_class(key.split("."))
    return [s for s in SHARED if cls is not None and config_class(s) in _block_classes(cls)]


def missing_shared_params(stages: dict[str, Any]) -> dict[str, list[str]]:
    """For each stage of a parsed ``dvc.yaml`` (its ``stages`` mapping; ``foreach`` stages by
    their template), the sections of shared defaults its ``params`` read but do not list
    (``scripts/dvc_deps.py`` adds them; a test checks that none is missing)."""
    missing = {}
    for name, stage in stages.items():
        listed = [str(p) for p in stage.get("do", stage).get("params", []) if isinstance(p, str)]
        needed = [s for key in listed for s in shared_sections(key) if s not in listed]
        if needed:
            missing[name] = list(dict.fromkeys(needed))
    return missing


def validate_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Load every section of the params file as its config, blocks filled from the shared
    sections; returns ``{section: config}`` (the shared sections included).
    Raises :class:`ConfigError` (one line: the file, the key path, the value and what is
    allowed) at the first problem."""
    params = read_params(path)
    name = Path(path).name
    known = [*SHARED, *SECTIONS]  # the shared sections first: a bad value there is named there
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ConfigError(f"{name}: {unknown[0]}: unknown section; the sections are {sorted(known)}")
    missing = [s for s in known if s not in params]
    if missing:
        raise ConfigError(f"{name}: section '{missing[0]}' missing; copy it from the repository's params.yaml")
    return {section: from_dict(config_class(section), params[section], f"{name}: {section}", params) for section in known}
