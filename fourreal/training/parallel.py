"""Devices and data parallelism for training under ``torchrun``: DDP or FSDP, full state
dicts, the collectives that keep ranks in step, and bf16 autocast.

- ``ddp``: every rank holds the whole model; gradients are all-reduced (``DistributedDataParallel``).
- ``fsdp``: parameters, gradients and optimizer moments are sharded over the ranks
  (PyTorch's per-module ``fully_shard``, one unit per transformer block plus the root), the
  choice for the paper-size models on many GPUs.

Checkpoints always hold full (unsharded) tensors keyed by parameter name, so a run can
resume with another world size or another mode, and exported weights load anywhere.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict, get_optimizer_state_dict,
                                                     set_optimizer_state_dict)

Mode = Literal["ddp", "fsdp"]


def setup() -> tuple[int, int, torch.device]:
    """``(rank, world_size, device)``; initializes the process group under ``torchrun``
    (NCCL on GPUs, gloo on CPU) and picks this rank's GPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def autocast(device: torch.device, precision: str):
    """bf16 autocast on CUDA for ``auto``/``bf16``; nothing otherwise."""
    use = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16) if use else contextlib.nullcontext()


def any_rank(flag: bool, world: int, device: torch.device) -> bool:
    """Whether ``flag`` holds on any rank (collective when ``world > 1``), so that every rank
    takes the same branch."""
    if world == 1:
        return flag
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def gather_objects(obj: Any, world: int) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order (collective when ``world > 1``)."""
    if world == 1:
        return [obj]
    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, obj)
    return gathered


def _units(model: nn.Module) -> list[nn.Module]:
    """The sub-modules sharded as separate FSDP units: every transformer block found."""
    return [m for m in model.modules() if type(m).__name__ == "Block"]


def shard(model: nn.Module, device: torch.device, bf16: bool) -> nn.Module:
    """Shard ``model`` in place over all ranks with FSDP (blocks, then the root).

    With ``bf16`` the all-gathered parameters are cast to bf16 for compute while gradients
    are reduced in fp32; the fp32 master weights stay sharded.
    """
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 else MixedPrecisionPolicy()
    for unit in _units(model):
        fully_shard(unit, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    return model


def wrap(model: nn.Module, mode: Mode, world: int, device: torch.device, bf16: bool) -> nn.Module:
    """The module the training step calls: the model itself on one process, DDP around it,
    or the model sharded in place (FSDP)."""
    if world == 1:
        return model
    if mode == "fsdp":
        return shard(model, device, bf16)
    return nn.parallel.DistributedDataParallel(model)


_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Full weights of ``model`` (plain, DDP-free or FSDP-sharded) on the CPU. Collective
    under FSDP (every rank must call it); ranks other than 0 may get an empty dict."""
    if any(_is_dtensor(p) for p in model.parameters()):
        return get_model_state_dict(model, options=_FULL)
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Full optimizer state keyed by parameter name: ``{"state": {name: {key: tensor}},
    "param_groups": [...]}``. Collective under FSDP."""
    return get_optimizer_state_dict(model, optimizer, options=_FULL)


def load_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load a full, name-keyed optimizer state into ``optimizer`` (sharding it under FSDP)."""
    set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))


def _is_dtensor(t: torch.Tensor) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(t, DTensor)
