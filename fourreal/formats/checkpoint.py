"""Checkpoints as safetensors: tensors only, so loading never executes code from a file.

A checkpoint is a directory ``step_XXXXXXX/`` written atomically:

- ``model-NN.safetensors`` (weights, sharded to at most ``max_shard_mb`` each),
- ``ema-NN.safetensors`` (EMA weights, same sharding),
- ``optimizer-NN.safetensors`` (AdamW moments as ``<parameter name>:<moment>``),
- ``state.json`` (step, optimizer hyper-parameters, RNG states, free-form metadata).

Pickle checkpoints (``.pt``/``.pth``/``.ckpt``) are refused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from fourreal.formats.files import atomic_dir
from fourreal.running.errors import UserError

_STEP = re.compile(r"^step_(\d{7})$")


class CheckpointError(UserError, RuntimeError):
    """A checkpoint or model file is missing, truncated, of another architecture or kind, or
    not in its format (safetensors, TorchScript)."""


def save_tensors(directory: Path, prefix: str, tensors: dict[str, torch.Tensor], max_shard_mb: float) -> None:
    """Write ``tensors`` as ``prefix-00.safetensors``, ``prefix-01...``, each under ``max_shard_mb``."""
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, t in tensors.items():
        nbytes = t.numel() * t.element_size()
        if shards[-1] and size + nbytes > max_shard_mb * 2**20:
            shards.append({})
            size = 0
        shards[-1][name] = t.detach().contiguous().cpu()
        size += nbytes
    for i, shard in enumerate(shards):
        save_file(shard, str(directory / f"{prefix}-{i:02d}.safetensors"))


def load_tensors(directory: Path, prefix: str) -> dict[str, torch.Tensor]:
    """Read every ``prefix-NN.safetensors`` shard of ``directory`` into one mapping."""
    for bad in ("*.pt", "*.pth", "*.ckpt", "*.bin"):
        if any(directory.glob(bad)):
            raise CheckpointError(f"{directory}: has pickle files ({bad}); only safetensors are loaded (pickles can run code)")
    files = sorted(directory.glob(f"{prefix}-*.safetensors"))
    if not files:
        raise CheckpointError(f"{directory}: no {prefix}-NN.safetensors files")
    out: dict[str, torch.Tensor] = {}
    for f in files:
        try:
            out.update(load_file(str(f)))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{f}: unreadable or truncated safetensors ({exc}); delete it to fall back to an earlier checkpoint") from None
    return out


def load_weights(model: torch.nn.Module, tensors: dict[str, torch.Tensor], where: str, strict: bool = True) -> None:
    """Load ``tensors`` into ``model``, with an error naming missing, unexpected or
    mis-shaped parameters (a different architecture) and ``where`` they came from."""
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors)) if strict else []
    unexpected = sorted(set(tensors) - set(own))
    shapes = [f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(own[k].shape)}" for k in tensors
              if k in own and tensors[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        raise CheckpointError(f"{where}: does not match the model (wrong architecture or preset?): "
                              f"missing {missing[:3]}, unexpected {unexpected[:3]}, shapes {shapes[:3]}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in tensors.items()}, strict=strict)


def save_checkpoint(root: Path, step: int, model: dict[str, torch.Tensor], ema: dict[str, torch.Tensor] | None,
                    optimizer: dict[str, Any] | None, state: dict[str, Any], max_shard_mb: float = 15.0,
                    keep: int = 2) -> Path:
    """Write checkpoint ``root/step_XXXXXXX`` atomically and keep only the newest ``keep``.

    ``model`` and ``ema`` are full state dicts; ``optimizer`` is a full optimizer state keyed
    by parameter name (``fourreal.training.parallel.optimizer_state``)."""
    final = Path(root) / f"step_{step:07d}"
    with atomic_dir(final) as tmp:
        save_tensors(tmp, "model", model, max_shard_mb)
        if ema is not None:
            save_tensors(tmp, "ema", ema, max_shard_mb)
        extra: dict[str, Any] = {}
        if optimizer is not None:
            flat = {f"{name}:{k}": v for name, s in optimizer["state"].items() for k, v in s.items() if torch.is_tensor(v)}
            if flat:
                save_tensors(tmp, "optimizer", flat, max_shard_mb)
            extra["optimizer_groups"] = optimizer["param_groups"]
        (tmp / "state.json").write_text(json.dumps({"step": step, **extra, **state}, indent=1))
    for old in list_checkpoints(root)[:-keep] if keep else []:
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    return final


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoint directories under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if _STEP.match(p.name) and (p / "state.json").is_file())


def load_checkpoint(path: Path, model: torch.nn.Module, ema: torch.nn.Module | None = None) -> dict[str, Any]:
    """Restore a checkpoint's weights into ``model`` (and ``ema``); returns ``state.json``."""
    path = Path(path)
    try:
        state = json.loads((path / "state.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}/state.json: unreadable ({exc})") from None
    load_weights(model, load_tensors(path, "model"), str(path))
    if ema is not None:
        load_weights(ema, load_tensors(path, "ema"), str(path))
    return state


def read_optimizer(path: Path, state: dict[str, Any]) -> dict[str, Any] | None:
    """The optimizer state saved in checkpoint ``path`` (keyed by parameter name), or None."""
    if "optimizer_groups" not in state:
        return None
    flat = load_tensors(Path(path), "optimizer") if list(Path(path).glob("optimizer-*.safetensors")) else {}
    per: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        name, k = key.rsplit(":", 1)
        per.setdefault(name, {})[k] = value
    return {"state": per, "param_groups": state["optimizer_groups"]}


def load_torchscript(path: str | Path, what: str, fix: str) -> torch.jit.ScriptModule:
    """A pretrained network from a local TorchScript file (TorchScript archives hold the
    network's code in a restricted language, not arbitrary pickled objects), on the CPU in
    eval mode. ``what`` names it and ``fix`` says what to set, for clear errors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} not found; {fix}")
    try:
        return torch.jit.load(str(path), map_location="cpu").eval()
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: not a TorchScript {what} ({str(exc).splitlines()[0]}); {fix}") from None
