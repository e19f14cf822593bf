"""Model bundles: the trained models a user runs without training, in one folder.

A bundle ``models/<name>/`` holds

- ``base/``: the base video DiT (``config.json`` + bf16 safetensors), as ``train_base`` exports it;
- ``model_4d/``: the 4D model. Its ``config.json`` names the base it was built on
  (``"base": "../base"``) and its weights are only those that differ from that base (the
  sync layers when they alone trained): the frozen base weights are stored once;
- ``depth/``: the monocular depth network of ``train_depth``;
- ``upsampler/`` (optional): the upsampler of ``train_upsampler``;
- ``README.md``: the model card, written by hand.

:func:`write_bundle` makes one from the training stages' outputs; :func:`bundle_paths`
finds the parts of one (``fourreal grid --models``, ``fourreal to4d --models``);
:func:`fourreal.model4d.load_model4d` follows the ``base`` link.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from fourreal.checkpoint import CheckpointError, load_tensors, save_tensors
from fourreal.files import atomic_dir

REQUIRED = ("base", "model_4d", "depth")
OPTIONAL = ("upsampler",)
BASE_LINK = "../base"


def bundle_paths(directory: str | Path) -> dict[str, Path]:
    """The parts of the bundle in ``directory``, by name (``base``, ``model_4d``, ``depth`` and
    ``upsampler`` when present); a missing part is an error naming it and the fix."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such model bundle; pass a directory like models/<name>")
    parts = {name: directory / name for name in REQUIRED + OPTIONAL if (directory / name / "config.json").is_file()}
    missing = [name for name in REQUIRED if name not in parts]
    if missing:
        raise CheckpointError(f"{directory}: not a model bundle (missing {', '.join(missing)}/config.json); "
                              "make one with fourreal.bundle.write_bundle")
    return parts


def _bf16(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating-point tensors in bf16 (what a bundle stores), others unchanged."""
    return {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in tensors.items()}


def _copy_weights(src: Path, dst: Path, prefix: str, max_shard_mb: float) -> None:
    """``src``'s ``config.json`` and its ``prefix`` weights (sharded or one file) in bf16 into ``dst``."""
    from safetensors.torch import load_file

    shutil.copy2(src / "config.json", dst / "config.json")
    single = src / f"{prefix}.safetensors"
    if single.is_file():  # one file (train_depth)
        from safetensors.torch import save_file

        save_file(_bf16(load_file(str(single))), str(dst / single.name))
    else:
        save_tensors(dst, prefix, _bf16(load_tensors(src, prefix)), max_shard_mb)


def write_bundle(out: str | Path, base: str | Path, model_4d: str | Path, depth: str | Path,
                 upsampler: str | Path | None = None, max_shard_mb: float = 15.0) -> dict[str, int]:
    """Write a bundle to ``out`` (atomically) from the stages' model directories; returns the
    bytes of each part. The 4D model's weights equal to the base model's (``base.*``, bit
    for bit in the trained precision) are left out and read from ``base/`` when loading; a
    4D model whose base weights trained (``soft_all``) keeps its own."""
    out = Path(out)
    sources = {"base": Path(base), "model_4d": Path(model_4d), "depth": Path(depth)}
    if upsampler:
        sources["upsampler"] = Path(upsampler)
    for name, src in sources.items():
        if not (src / "config.json").is_file():
            raise CheckpointError(f"{src / 'config.json'}: missing; train the {name} model first or fix its path")
    with atomic_dir(out) as tmp:
        for name in ("base", "depth", "upsampler"):
            if name in sources:
                (tmp / name).mkdir()
                _copy_weights(sources[name], tmp / name, "model", max_shard_mb)
        base_weights = load_tensors(sources["base"], "model")
        own = load_tensors(sources["model_4d"], "model")
        in_base = {k: base_weights.get(k.removeprefix("base.")) for k in own if k.startswith("base.")}
        shared = set(in_base) if all(b is not None and torch.equal(own[k], b) for k, b in in_base.items()) else set()
        spec = json.loads((sources["model_4d"] / "config.json").read_text())
        (tmp / "model_4d").mkdir()
        (tmp / "model_4d" / "config.json").write_text(json.dumps({**spec, "base": BASE_LINK} if shared else spec, indent=1))
        save_tensors(tmp / "model_4d", "model", _bf16({k: v for k, v in own.items() if k not in shared}), max_shard_mb)
    return {name: sum(f.stat().st_size for f in (out / name).iterdir()) for name in sources}
