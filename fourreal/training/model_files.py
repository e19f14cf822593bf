"""Trained model directories as the training stages export them (``config.json`` beside
safetensors ``model-NN.safetensors`` shards, :mod:`fourreal.formats.checkpoint`): writing one
(:func:`export_model`, with the ``config.json`` of each model kind: :func:`base_model_config`,
:func:`upsampler_model_config`, :func:`model4d_config`), loading the base model,
the 4D model and the upsampler from one, and reading back the size they were trained on
(:func:`training_frames`, :func:`training_window`)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from torch import nn

from fourreal.formats.checkpoint import CheckpointError, load_tensors, load_weights, save_tensors
from fourreal.formats.files import atomic_dir
from fourreal.models.dit import DiT, DiTConfig
from fourreal.models.model4d import Model4D, build_model4d
from fourreal.models.upsampler import LOW_RES_CHANNELS
from fourreal.training.optim import OptimConfig
from fourreal.training.train_configs import TrainBaseConfig, TrainUpsamplerConfig

# how to make a missing model directory, by kind
_MAKE_BASE = "train the model first (dvc repro train_base) or pass its directory"
_MAKE_4D = "run `dvc repro train_4d` first or fix the model path"


def export_model(directory: str | Path, model: nn.Module, config: dict[str, Any], max_shard_mb: float) -> None:
    """Write final weights (safetensors shards) and ``config.json`` to ``directory`` atomically."""
    with atomic_dir(directory) as tmp:
        save_tensors(tmp, "model", model.state_dict(), max_shard_mb)
        (tmp / "config.json").write_text(json.dumps(config, indent=1))


def _read_config(directory: Path, make: str) -> dict[str, Any]:
    """``directory``'s ``config.json``; a missing one is a :class:`CheckpointError` saying how to ``make`` it."""
    config = directory / "config.json"
    if not config.is_file():
        raise CheckpointError(f"{config}: missing; {make}")
    return json.loads(config.read_text())


def load_model(directory: str | Path) -> DiT:
    """A trained model from ``directory`` (``config.json`` + ``model-NN.safetensors``, as the
    training stages export it); clear errors for a missing or mismatched model."""
    directory = Path(directory)
    model = DiT(DiTConfig(**_read_config(directory, _MAKE_BASE)["dit"]))
    load_weights(model, load_tensors(directory, "model"), str(directory))
    return model.eval()


def training_frames(directory: str | Path) -> int | None:
    """The video length (frames) the base model exported in ``directory`` was trained on (its
    last phase), or None for a model exported before it was recorded."""
    frames = _read_config(Path(directory), _MAKE_BASE).get("training_frames")
    return None if frames is None else int(frames)


def base_model_config(cfg: TrainBaseConfig) -> dict:
    """The ``config.json`` of a base model trained with ``cfg``: what :func:`load_model` needs to
    rebuild it, and the video length it was trained on (its last phase's ``frames``), which
    :func:`training_frames` reads back."""
    return {"preset": cfg.preset, "dit": asdict(cfg.model_config()), "training_frames": cfg.optim.phases[-1].frames}


def upsampler_model_config(cfg: TrainUpsamplerConfig) -> dict:
    """The ``config.json`` of an upsampler trained with ``cfg``: its size and the settings
    :func:`load_upsampler` reads back (scale, residual scale, sampling steps)."""
    return {"preset": cfg.preset, "scale": cfg.scale, "residual_scale": cfg.residual_scale,
            "sample_steps": cfg.sample_steps, "dit": asdict(cfg.model_config())}


def model4d_config(model: Model4D, optim: OptimConfig) -> dict:
    """What :func:`load_model4d` needs to rebuild ``model``, and the window it was trained on
    with ``optim`` (its last phase: ``frames`` is the side of the square window), which
    :func:`training_window` reads back."""
    last = optim.phases[-1]
    return {"architecture": model.architecture, "seq_attention": model.seq_attention or "", "dit": asdict(model.base.cfg),
            "training_window": {"views": last.frames, "times": last.frames, "height": last.height, "width": last.width}}


def training_window(directory: str | Path) -> int | None:
    """The side of the square window (views = times) the 4D model exported in ``directory``
    was trained on, or None for a model exported before the window was recorded."""
    record = _read_config(Path(directory), _MAKE_4D).get("training_window")
    return None if record is None else int(record["views"])


def load_model4d(directory: str | Path) -> Model4D:
    """A 4D model exported by the ``train_4d``/``finetune_4d`` stages, or the ``model_4d`` part
    of a bundle (:mod:`fourreal.running.bundle`), whose ``config.json`` links to the base model that
    holds its frozen weights (``"base": "../base"``)."""
    directory = Path(directory)
    spec = _read_config(directory, _MAKE_4D)
    tensors = load_tensors(directory, "model")
    if spec.get("base"):
        base_dir = directory / spec["base"]
        base = load_tensors(base_dir, "model")
        tensors = {**{f"base.{k}": v for k, v in base.items()}, **tensors}
        if json.loads((base_dir / "config.json").read_text())["dit"] != spec["dit"]:
            raise CheckpointError(f"{directory}: its base {base_dir} has another size (config.json 'dit' differs); "
                                  "rebuild the bundle from matching models")
    model = build_model4d(DiT(DiTConfig(**spec["dit"])), spec["architecture"], spec["seq_attention"])
    load_weights(model, tensors, str(directory))
    return model.eval()


def load_upsampler(directory: str | Path) -> tuple[DiT, TrainUpsamplerConfig]:
    """A trained upsampler from ``directory`` (as ``train_upsampler`` exports it) with the
    settings it was trained with (scale, residual scale, sampling steps)."""
    config = Path(directory) / "config.json"
    saved = json.loads(config.read_text()) if config.is_file() else {}
    if config.is_file() and ("scale" not in saved or saved.get("dit", {}).get("extra_channels") != LOW_RES_CHANNELS):
        raise CheckpointError(f"{directory}: not an upsampler (no scale or low-resolution input channels in config.json); "
                         "pass train_upsampler's model directory")
    model = load_model(directory)  # clear errors for a missing directory or weights
    cfg = TrainUpsamplerConfig(preset=saved["preset"], scale=saved["scale"], residual_scale=saved.get("residual_scale", 0.1),
                               sample_steps=saved.get("sample_steps", 10))
    return model, cfg
