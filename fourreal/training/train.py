"""The training loop shared by the base video model, the upsampler and the 4D model.

Rectified-flow training (the losses: :mod:`fourreal.training.losses`) with AdamW, linear warmup,
gradient clipping, EMA weights, bf16 autocast on GPU, a progressive schedule of phases
(resolution, frames, batch size; the settings: :mod:`fourreal.training.optim`), safetensors
checkpoints with exact resume (model, EMA, optimizer, RNG state), TensorBoard logs plus a
``loss.csv`` for DVC plots (:mod:`fourreal.training.train_log`), and ``torchrun`` data parallelism
(DDP, or FSDP for the paper size; see ``fourreal.training.parallel``): the same entry point runs on
one CPU or many GPUs.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from fourreal.formats.checkpoint import list_checkpoints, load_checkpoint, read_optimizer, save_checkpoint
from fourreal.formats.files import write_json
from fourreal.training import parallel
from fourreal.training.faults import fault_point
from fourreal.training.optim import OptimConfig, Phase
from fourreal.training.train_log import LossLog, Meter, recorded_loss, throughput

log = logging.getLogger(__name__)
# Beside the checkpoints: the training time up to the newest one, over every run that reached
# it. Wall-clock time, so not in the checkpoints themselves (they are deterministic outputs).
TIME_FILE = "train_time.json"


def ema_decay_at(decay: float, step: int) -> float:
    """The EMA decay after optimizer step ``step`` (1-based): ``min(decay, (1 + step) / (10 + step))``.
    The warm-up keeps a short run's EMA from holding on to the initial weights (with
    adaLN-Zero those predict zero velocity): at step ``n`` it spans about the last ``n / 10``
    steps until ``decay`` takes over."""
    return min(decay, (1 + step) / (10 + step))


def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * model`` for every trainable parameter (buffers
    copied), in one fused update over all of them."""
    with torch.no_grad():
        pairs = [(e, p.detach()) for e, p in zip(ema.parameters(), model.parameters()) if p.requires_grad]
        if pairs:
            torch._foreach_lerp_([e for e, _ in pairs], [p for _, p in pairs], 1 - decay)
        for e, b in zip(ema.buffers(), model.buffers()):
            e.copy_(b)


# loss_fn(model, batch, generator) -> scalar loss
StepFn = Callable[[nn.Module, Any, torch.Generator], torch.Tensor]
# make_batch(phase, numpy rng, device) -> batch, its tensors on device
BatchFn = Callable[[Phase, np.random.Generator, torch.device], Any]


@dataclass
class TrainSummary:
    """What a :func:`train` run did, for its stage to export and report. The throughput fields are
    None when the run measured none (no ``flops_fn``, or no step left to train); the last two
    also off a GPU."""

    steps: int  # optimizer steps done in all, by this run and the runs it resumed
    resumed_from: int  # the step this run started at (0: from scratch)
    seconds: float  # this run's wall time, from the start of its loop
    seconds_all_runs: float  # plus the runs it resumed (each up to the checkpoint resumed from)
    final_loss: float | None  # mean of the last log interval as loss.csv records it (nothing left to train: its last row)
    peak_gpu_memory_gib: float  # 0.0 off a GPU
    rank: int
    world_size: int
    device: str
    ema: nn.Module | None  # the EMA weights as a whole module; None without EMA, and on ranks but 0 under FSDP
    model_tflops_per_s: float | None  # per GPU: median over the intervals between log steps
    matmul_ceiling_tflops: float | None  # the bf16 matmul ceiling, measured at the end of the run
    mfu: float | None  # model_tflops_per_s / matmul_ceiling_tflops


def train(model: nn.Module, cfg: OptimConfig, out_dir: str | Path, make_batch: BatchFn, loss_fn: StepFn,
          on_checkpoint: Callable[[nn.Module, int], None] | None = None, run_key: str = "",
          flops_fn: Callable[[Any], float] | None = None) -> TrainSummary:
    """Train ``model``'s parameters that require grad; resume from the newest checkpoint in
    ``out_dir/checkpoints`` made with the same ``run_key`` (a hash of everything the run
    depends on, :func:`fourreal.running.provenance.run_key`; checkpoints of another key are removed
    and training starts over).

    ``make_batch(phase, rng)`` draws a batch; ``loss_fn(model, batch, generator)`` returns a
    scalar loss. ``on_checkpoint(ema_model, step)`` runs on rank 0 after each checkpoint
    (previews). Rank 0 writes ``loss.csv``, TensorBoard logs and checkpoints.

    ``flops_fn(batch)``, the model FLOPs of a training step on a batch (forward + backward,
    :mod:`fourreal.training.flops`), adds the run's own throughput to the :class:`TrainSummary`:
    ``model_tflops_per_s`` (per GPU, median over the intervals between log steps of their FLOPs
    / wall time, batch drawing included, checkpoints and previews not) and on a GPU ``mfu``
    against the bf16 matmul ceiling measured at the end of the run.

    The loss is read back to the host only at log and checkpoint steps (a NaN is caught
    there, before a checkpoint is written), and a time limit is checked there too.
    """
    out = Path(out_dir)
    # set up the device and the EMA copy
    rank, world, device = parallel.setup()
    ema = _place(model, cfg, device)
    # resume this run's newest checkpoint, or start (run key check)
    checkpoint, state = _resume_or_start(out, model, ema, cfg.max_shard_mb, run_key, rank)
    step = resumed_from = state.get("step", 0)
    earlier_seconds = _earlier_seconds(out, run_key, resumed_from)
    # data parallelism and the optimizer; a resumed run's optimizer moments and RNG states
    run = _prepare(model, ema, cfg, rank, world, device)
    if checkpoint is not None and (moments := read_optimizer(checkpoint, state)) is not None:
        parallel.load_optimizer_state(model, run.opt, moments)
    _restore_rng(run, state, checkpoint)
    if cfg.compile:
        run.net = torch.compile(run.net, dynamic=False)  # one static graph per phase shape
    # the loop: batch, loss, backward and step, EMA, log, checkpoint, time limit
    logs = LossLog(out, rank, step, cfg.total_steps)
    start, meter = time.time(), Meter(flops_fn)
    while step < cfg.total_steps:
        batch = make_batch(cfg.phase_at(step), run.rng, device)
        lr = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup))  # linear warmup, then constant
        loss = _optimizer_step(run, cfg, loss_fn, batch, lr)
        if ema is not None:
            update_ema(ema, model, ema_decay_at(cfg.ema_decay, step + 1))
        step += 1
        meter.add(loss, batch)
        logs.bar.update(1)
        log_now = step % cfg.log_every == 0 or step == cfg.total_steps
        save_now = step % cfg.checkpoint_every == 0 or step == cfg.total_steps
        out_of_time = False
        if log_now or save_now:
            meter.read(step, out)  # waits for the GPU; raises on NaN before anything is saved
            # the last step needs no stop: a run that ends there has finished, however long it took
            out_of_time = step < cfg.total_steps and _out_of_time(cfg.time_limit_s, start, world, device)
        if rank == 0 and log_now:
            logs.write(step, meter.mean(cfg.log_every), lr)
        fault_point("train_step")
        if save_now or out_of_time:
            _save_checkpoint(run, out, step, run_key, cfg.max_shard_mb, on_checkpoint,
                             earlier_seconds + time.time() - start)
        if log_now or save_now:
            meter.restart()  # checkpoints and previews are not training time
        if out_of_time:
            log.warning("time limit of %.0f s reached at step %d of %d; rerun to continue", cfg.time_limit_s, step, cfg.total_steps)
            break
    # final export of the summary (a resumed finished run redoes its outputs)
    logs.close()
    final_model = run.finished_model()  # collective under FSDP
    if rank == 0 and step == resumed_from and on_checkpoint is not None:
        on_checkpoint(final_model, step)
    seconds = time.time() - start
    final_loss = recorded_loss(meter.mean(cfg.log_every)) if meter.losses else logs.last_loss()
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
    tflops, ceiling, mfu = throughput(meter.rates, device)
    return TrainSummary(steps=step, resumed_from=resumed_from, seconds=seconds,
                        seconds_all_runs=earlier_seconds + seconds, final_loss=final_loss,
                        peak_gpu_memory_gib=round(peak, 2), rank=rank, world_size=world, device=str(device),
                        ema=final_model if ema is not None else None, model_tflops_per_s=tflops,
                        matmul_ceiling_tflops=ceiling, mfu=mfu)


@dataclass
class _Run:
    """What one process trains with: ``model`` (its trainable ``params`` stepped by ``opt``),
    ``net`` (the same wrapped for data parallelism, maybe compiled: what the loss calls), the
    ``ema`` copy, rank 0's ``plain`` copy under FSDP (``sharded``: no rank holds whole weights
    there, previews and export need them), and the random generators: ``rng`` on the host (data
    order and masks), ``gen`` on the device (noise)."""

    model: nn.Module
    net: nn.Module
    ema: nn.Module | None
    plain: nn.Module | None
    params: list[nn.Parameter]
    opt: torch.optim.Optimizer
    rng: np.random.Generator
    gen: torch.Generator
    rank: int
    world: int
    device: torch.device
    sharded: bool

    def finished_model(self, weights: dict[str, torch.Tensor] | None = None) -> nn.Module | None:
        """The weights previews and export use (EMA if kept): the module itself, or under FSDP
        rank 0's plain copy loaded with the gathered ``weights`` (collective; None on other ranks)."""
        source = self.ema if self.ema is not None else self.model
        if not self.sharded:
            return source
        weights = parallel.model_state(source) if weights is None else weights
        if self.plain is not None:
            self.plain.load_state_dict(weights)
        return self.plain


def _place(model: nn.Module, cfg: OptimConfig, device: torch.device) -> nn.Module | None:
    """Move ``model`` to ``device`` with activation checkpointing as ``cfg`` says; returns its
    EMA copy (None when ``cfg.ema_decay`` is 0)."""
    model.to(device)
    for m in model.modules():  # every DiT inside (the 4D model's base included)
        if hasattr(m, "checkpointing"):
            m.checkpointing = cfg.activation_checkpointing
    return copy.deepcopy(model).requires_grad_(False) if cfg.ema_decay > 0 else None


def _earlier_seconds(out: Path, run_key: str, step: int) -> float:
    """The training time of the runs that reached the checkpoint at ``step`` of the run
    ``run_key`` (from ``out/`` :data:`TIME_FILE`; 0 when starting, or when it is missing or of
    another checkpoint)."""
    path = out / TIME_FILE
    if step == 0 or not path.is_file():
        return 0.0
    saved = json.loads(path.read_text())
    return float(saved["seconds"]) if (saved.get("run_key"), saved.get("step")) == (run_key, step) else 0.0


def _resume_or_start(out: Path, model: nn.Module, ema: nn.Module | None, max_shard_mb: float, run_key: str,
                     rank: int) -> tuple[Path | None, dict[str, Any]]:
    """Load the newest checkpoint of the run ``run_key`` names into ``model`` and ``ema``; returns it
    and its ``state.json`` (step, RNG states). Checkpoints of another run are removed (by rank 0);
    starting afresh, rank 0 saves the step-0 reference ``checkpoints/init`` unless it is there,
    and this returns ``(None, {})``."""
    checkpoints = list_checkpoints(out / "checkpoints")
    if checkpoints and json.loads((checkpoints[-1] / "state.json").read_text()).get("run_key") != run_key:
        log.warning("checkpoints in %s come from another run (its configs, input data, upstream weights or code "
                    "differ): starting over", out / "checkpoints")
        if rank == 0:
            shutil.rmtree(out / "checkpoints")
        checkpoints = []
    if checkpoints:
        state = load_checkpoint(checkpoints[-1], model, ema)
        log.info("resumed from %s (step %d)", checkpoints[-1], state["step"])
        return checkpoints[-1], state
    if rank == 0 and not list_checkpoints(out / "checkpoints" / "init"):
        save_checkpoint(out / "checkpoints" / "init", 0, parallel.model_state(model),
                        None if ema is None else parallel.model_state(ema), None, {}, max_shard_mb)
    return None, {}


def _prepare(model: nn.Module, ema: nn.Module | None, cfg: OptimConfig, rank: int, world: int,
             device: torch.device) -> _Run:
    """Wrap ``model`` for data parallelism (``cfg.parallel``; under FSDP ``ema`` is sharded too and
    rank 0 keeps a plain copy), make its AdamW optimizer and this rank's seeded generators."""
    sharded = world > 1 and cfg.parallel == "fsdp"
    plain = copy.deepcopy(ema if ema is not None else model) if sharded and rank == 0 else None
    bf16 = device.type == "cuda" and cfg.precision != "fp32"
    net = parallel.wrap(model, cfg.parallel, world, device, bf16)
    if sharded and ema is not None:
        parallel.shard(ema, device, bf16)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99),
                            fused=device.type == "cuda" and not sharded)
    rng = np.random.default_rng([cfg.seed, rank])
    gen = torch.Generator(device=device).manual_seed(cfg.seed * 1000 + rank)
    return _Run(model, net, ema, plain, params, opt, rng, gen, rank, world, device, sharded)


def _restore_rng(run: _Run, state: dict[str, Any], checkpoint: Path | None) -> None:
    """Continue this rank's generators from the states ``checkpoint`` saved (``state["rng"]``, one
    per rank of its run): ranks beyond the saved ones keep fresh seeds, and a noise generator
    saved on another kind of device starts afresh."""
    saved = state.get("rng")
    if saved is None or run.rank >= len(saved["numpy"]):
        return
    run.rng.bit_generator.state = saved["numpy"][run.rank]
    saved_gen = torch.tensor(saved["torch"][run.rank], dtype=torch.uint8)
    if saved_gen.numel() == run.gen.get_state().numel():
        run.gen.set_state(saved_gen)
    else:
        log.warning("%s was saved on another kind of device: its noise generator starts afresh", checkpoint)


def _optimizer_step(run: _Run, cfg: OptimConfig, loss_fn: StepFn, batch: Any, lr: float) -> torch.Tensor:
    """One AdamW step at learning rate ``lr`` on ``batch``'s loss (autocast as ``cfg.precision``
    says, gradients clipped to ``cfg.grad_clip``); returns the loss, left on the device."""
    for group in run.opt.param_groups:
        group["lr"] = lr
    with parallel.autocast(run.device, cfg.precision):
        loss = loss_fn(run.net, batch, run.gen)
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.params, cfg.grad_clip)
    run.opt.step()
    return loss


def _out_of_time(limit_s: float, start: float, world: int, device: torch.device) -> bool:
    """Whether the run has trained longer than ``limit_s`` seconds since ``start`` (0: no limit);
    under several ranks, whether any has, so that every rank stops at the same step."""
    if limit_s <= 0:
        return False
    return parallel.any_rank(time.time() - start > limit_s, world, device)


def _save_checkpoint(run: _Run, out: Path, step: int, run_key: str, max_shard_mb: float,
                     on_checkpoint: Callable[[nn.Module, int], None] | None, trained_seconds: float) -> None:
    """Save the weights, EMA, optimizer moments and every rank's RNG states at ``step`` to
    ``out/checkpoints`` and the training time so far (``trained_seconds``, over every run up to
    here) to ``out/`` :data:`TIME_FILE` (rank 0 writes), then run ``on_checkpoint`` on the
    finished model."""
    states = _gather_rng(run.rng, run.gen, run.world)
    if not (run.sharded or run.rank == 0):  # gathering full tensors is collective under FSDP; DDP's rank 0 has them
        return
    weights = parallel.model_state(run.model)
    ema_weights = None if run.ema is None else parallel.model_state(run.ema)
    moments = parallel.optimizer_state(run.model, run.opt)
    final_model = run.finished_model(weights if run.ema is None else ema_weights)
    if run.rank == 0:
        save_checkpoint(out / "checkpoints", step, weights, ema_weights, moments,
                        {"rng": states, "run_key": run_key},
                        max_shard_mb)
        write_json(out / TIME_FILE, {"run_key": run_key, "step": step, "seconds": round(trained_seconds, 3)})
        fault_point("checkpoint_saved")
        if on_checkpoint is not None:
            on_checkpoint(final_model, step)


def _gather_rng(rng: np.random.Generator, gen: torch.Generator, world: int) -> dict[str, list]:
    """Every rank's RNG states (numpy bit generator and torch generator) for exact resume."""
    states = parallel.gather_objects({"numpy": rng.bit_generator.state, "torch": gen.get_state().tolist()}, world)
    return {"numpy": [s["numpy"] for s in states], "torch": [s["torch"] for s in states]}
