"""Model bundles: the trained models a user runs without training, in one folder.

A bundle ``models/<name>/`` holds

- ``base/``: the base video DiT (``config.json`` + bf16 safetensors), as ``train_base`` exports it;
- ``model_4d/``: the 4D model. Its ``config.json`` names the base it was built on
  (``"base": "../base"``) and its weights are only those that differ from that base (the
  sync layers when they alone trained): the frozen base weights are stored once;
- ``depth/``: the monocular depth network of ``train_depth``;
- ``upsampler/`` (optional): the upsampler of ``train_upsampler``;
- ``README.md``: the model card (:func:`model_card`): what each part is, how it trained
  and scored (the stages' ``details.json`` and ``run.json`` beside each model), the data's
  licenses, and the commands that run it.

:func:`write_bundle` makes one from the training stages' outputs (``fourreal bundle``);
:func:`bundle_paths` finds the parts of one (``fourreal grid --models``, ``fourreal to4d
--models``); :func:`fourreal.training.model_files.load_model4d` follows the ``base`` link.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import torch

from fourreal.formats.checkpoint import CheckpointError, load_tensors, save_tensors
from fourreal.formats.files import atomic_dir

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
                              "make one with fourreal.running.bundle.write_bundle")
    return parts


def _bf16(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating-point tensors in bf16 (what a bundle stores), others unchanged."""
    return {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in tensors.items()}


def read_weights(src: Path) -> dict[str, torch.Tensor]:
    """A model directory's weights: ``model-NN.safetensors`` shards or one ``model.safetensors`` (train_depth)."""
    from safetensors.torch import load_file

    single = src / "model.safetensors"
    return load_file(str(single)) if single.is_file() else load_tensors(src, "model")


def copy_weights(src: Path, weights: dict[str, torch.Tensor], dst: Path, max_shard_mb: float) -> None:
    """``src``'s ``config.json`` and its ``weights`` in bf16 into ``dst``, in ``src``'s file layout."""
    from safetensors.torch import save_file

    shutil.copy2(src / "config.json", dst / "config.json")
    if (src / "model.safetensors").is_file():
        save_file(_bf16(weights), str(dst / "model.safetensors"))
    else:
        save_tensors(dst, "model", _bf16(weights), max_shard_mb)


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def model_card(name: str, sources: dict[str, Path], sizes: dict[str, int], parameters: dict[str, int],
               scores: dict | None = None, manifests: list[Path] = ()) -> str:
    """The bundle's ``README.md``: each part (its source, ``parameters``, stored size, and the
    ``details.json`` / ``run.json`` its stage wrote beside it), the 4D model's scores on the
    held-out grids (``sample_4d``'s details for the variant and the copy baselines, rendered and
    pseudo-4D), the
    licenses of the gathered data (``manifests``), and the commands that run it."""
    lines = [f"# {name}", "", "Trained models of the fourreal pipeline (4Real-Video), bf16 safetensors.", "",
             "| part | from | parameters | stored | training |", "|---|---|---|---|---|"]
    for part, src in sources.items():
        details = _json(src.parent / "details.json")
        trained = ", ".join(f"{k} {details[k]}" for k in ("steps", "trainable", "heldout_loss_ema", "test_absrel")
                            if k in details)
        lines.append(f"| {part} | `{src}` | {parameters[part]} | {sizes[part] / 2**20:.1f} MB | {trained or '-'} |")
    spec = _json(sources["model_4d"] / "config.json")
    window = spec.get("training_window", {})
    lines += ["", f"4D model: `{spec.get('architecture', '?')}` sync, trained on "
              f"{window.get('views', '?')}x{window.get('times', '?')} windows of {window.get('height', '?')}x"
              f"{window.get('width', '?')} frames (sampling uses that window by default)."]
    runs = {part: _json(src.parent / "run.json") for part, src in sources.items()}
    if any(runs.values()):
        lines += ["", "Training time (the stages' `run.json`):", ""]
        lines += [f"- {part}: {r.get('seconds_all_runs', r.get('seconds', '?'))} s, MFU {r.get('mfu', 'n/a')}"
                  for part, r in runs.items() if r]
    if scores:
        lines += ["", "Held-out grids (`sample_4d`): PSNR / SSIM on rendered assets, over whole frames and over the "
                  "object's pixels, and on pseudo-4D grids of held-out real videos.", "",
                  "| | PSNR | SSIM | fg PSNR | fg SSIM | real-video PSNR | real-video SSIM |",
                  "|---|---|---|---|---|---|---|"]
        keys = ("psnr", "ssim", "fg_psnr", "fg_ssim", "pseudo_psnr", "pseudo_ssim")
        for row, label in scores.items():
            lines.append(f"| {row} | " + " | ".join(str(label.get(k, "-")) for k in keys) + " |")
    licensed = [(m, f, e) for m in manifests if m.is_file() for f, e in _json(m).get("files", {}).items()]
    if licensed:
        lines += ["", "Data gathered for training and testing, with licenses:", "",
                  "| file | package | license |", "|---|---|---|"]
        lines += [f"| {f} | {e.get('package', '?')} | {e.get('license', '?')} |" for _, f, e in licensed]
    lines += ["", "Run it:", "", "```bash", f"fourreal grid --models models/{name} --row fixed.mp4 --column freeze.mp4",
              f"fourreal to4d --models models/{name} my_video.mp4", "```", ""]
    return "\n".join(lines)


def write_over_base(dst: Path, src: Path, own: dict[str, torch.Tensor], base: Path,
                    base_weights: dict[str, torch.Tensor], link: str, max_shard_mb: float) -> None:
    """Write the 4D model of directory ``src`` (its weights ``own``) into the existing directory
    ``dst`` in bf16, leaving out its ``base.*`` weights when they equal ``base_weights`` (the base
    model of directory ``base``, as read from its files and cast to the 4D model's dtype) bit for
    bit; its ``config.json`` then links to that base by
    ``link`` (a path relative to ``dst``). A 4D model whose base weights trained (``soft_all``)
    keeps its own; one already stored over a linked base must link to ``base``."""
    spec = json.loads((src / "config.json").read_text())
    if spec.get("base"):  # already stored as its own tensors over a linked base: that base must be ours
        linked = load_tensors(src / spec["base"], "model")
        if linked.keys() != base_weights.keys() or not all(torch.equal(v, base_weights[k]) for k, v in linked.items()):
            raise CheckpointError(f"{src}: its base ({spec['base']}) is not {base}; "
                                  "bundle it with the base model it was trained on")
    in_base = {k: base_weights.get(k.removeprefix("base.")) for k in own if k.startswith("base.")}
    shared = set(in_base) if all(b is not None and torch.equal(own[k], b.to(own[k].dtype))
                                 for k, b in in_base.items()) else set()
    linked_base = bool(shared or spec.get("base"))
    (dst / "config.json").write_text(json.dumps({**spec, "base": link} if linked_base else spec, indent=1))
    save_tensors(dst, "model", _bf16({k: v for k, v in own.items() if k not in shared}), max_shard_mb)


def write_bundle(out: str | Path, base: str | Path, model_4d: str | Path, depth: str | Path,
                 upsampler: str | Path | None = None, max_shard_mb: float = 15.0,
                 card: Callable[[dict[str, Path], dict[str, int], dict[str, int]], str] | None = None) -> dict[str, int]:
    """Write a bundle to ``out`` (atomically) from the stages' model directories; returns the
    bytes of each part. The 4D model's weights equal to the base model's (``base.*``, bit
    for bit in the trained precision) are left out and read from ``base/`` when loading; a
    4D model whose base weights trained (``soft_all``) keeps its own; one already stored over
    a linked base (``"base"`` in its ``config.json``) must link to ``base``. ``card(sources,
    sizes, parameters)`` gives the ``README.md`` (:func:`model_card`)."""
    out = Path(out)
    sources = {"base": Path(base), "model_4d": Path(model_4d), "depth": Path(depth)}
    if upsampler:
        sources["upsampler"] = Path(upsampler)
    for name, src in sources.items():
        if not (src / "config.json").is_file():
            raise CheckpointError(f"{src / 'config.json'}: missing; train the {name} model first or fix its path")
    weights = {name: read_weights(src) for name, src in sources.items()}  # each part read once
    with atomic_dir(out) as tmp:
        for name in ("base", "depth", "upsampler"):
            if name in sources:
                (tmp / name).mkdir()
                copy_weights(sources[name], weights[name], tmp / name, max_shard_mb)
        (tmp / "model_4d").mkdir()
        write_over_base(tmp / "model_4d", sources["model_4d"], weights["model_4d"], sources["base"], weights["base"],
                        BASE_LINK, max_shard_mb)
        sizes = {name: sum(f.stat().st_size for f in (tmp / name).iterdir()) for name in sources}
        if card is not None:
            parameters = {name: sum(t.numel() for t in w.values()) for name, w in weights.items()}
            (tmp / "README.md").write_text(card(sources, sizes, parameters))
    return sizes
