"""The training loop shared by the base video model and the 4D model.

Rectified-flow training with AdamW, linear warmup, gradient clipping, EMA weights, bf16
autocast on GPU, a progressive schedule of phases (resolution, frames, batch size),
safetensors checkpoints with exact resume (model, EMA, optimizer, RNG state), TensorBoard
logs plus a ``loss.csv`` for DVC plots, and ``torchrun`` data parallelism (DDP, or FSDP for
the paper size; see ``fourreal.parallel``): the same entry point runs on one CPU or many GPUs.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from fourreal import parallel
from fourreal.checkpoint import list_checkpoints, load_checkpoint, read_optimizer, save_checkpoint, save_tensors
from fourreal.config import require
from fourreal.faults import fault_point
from fourreal.files import atomic_dir, write_json
from fourreal.provenance import RESUME_NEUTRAL

log = logging.getLogger(__name__)
# Beside the checkpoints: the training time up to the newest one, over every run that reached
# it. Wall-clock time, so not in the checkpoints themselves (they are deterministic outputs).
TIME_FILE = "train_time.json"


@dataclass
class Phase:
    """One phase of the progressive schedule: ``steps`` optimizer steps on batches of
    ``batch_size`` videos of ``frames`` frames at ``height x width``."""

    steps: int
    height: int
    width: int
    frames: int
    batch_size: int

    def __post_init__(self) -> None:
        for name in ("steps", "frames", "batch_size"):
            require(getattr(self, name) >= 1, name, "must be >= 1")
        for name in ("height", "width"):
            require(getattr(self, name) >= 4, name, "must be >= 4")


@dataclass
class OptimConfig:
    """Optimizer, schedule and bookkeeping of a training run.

    Attributes:
        phases: the progressive schedule, run in order.
        lr, weight_decay, warmup, grad_clip: AdamW with linear warmup then constant rate.
        ema_decay: EMA of the weights (0 disables), after a warm-up (:func:`ema_decay_at`).
        sigma_schedule, sigma_mean, sigma_std: distribution of training flow times.
        context_dropout: probability of replacing the mode by the null context (for
            classifier-free guidance at sampling).
        checkpoint_every, log_every: in steps.
        max_shard_mb: checkpoint shard size.
        (These two and ``time_limit_s`` are left out of the run key: a run resumes under
        other values of them.)
        precision: ``auto`` (bf16 autocast on CUDA, fp32 on CPU), ``fp32`` or ``bf16``.
        seed: seed of data order, noise and masks.
        time_limit_s: stop (with a checkpoint) once a run has trained this long, checked at
            log and checkpoint steps; 0 = no limit. A rerun (with any limit) continues from there.
        compile: run the model through ``torch.compile`` (on an H200 it doubles paper-size
            training throughput; the first steps are slower while it compiles).
        parallel: under ``torchrun`` with several processes, ``ddp`` (replicated weights) or
            ``fsdp`` (weights, gradients and optimizer moments sharded over the ranks).
        activation_checkpointing: recompute every transformer block's activations in the
            backward pass instead of storing them (less memory, about a third more compute).
    """

    phases: list[Phase] = field(default_factory=lambda: [Phase(100, 16, 32, 8, 4)])
    lr: float = 3e-4
    weight_decay: float = 0.0
    warmup: int = 20
    grad_clip: float = 1.0
    ema_decay: float = 0.99
    sigma_schedule: Literal["uniform", "logit_normal"] = "logit_normal"
    sigma_mean: float = 0.0
    sigma_std: float = 1.0
    context_dropout: float = 0.1
    checkpoint_every: int = field(default=50, metadata=RESUME_NEUTRAL)
    log_every: int = field(default=10, metadata=RESUME_NEUTRAL)
    max_shard_mb: float = field(default=15.0, metadata=RESUME_NEUTRAL)
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    seed: int = 0
    time_limit_s: float = field(default=0.0, metadata=RESUME_NEUTRAL)
    compile: bool = False
    parallel: parallel.Mode = "ddp"
    activation_checkpointing: bool = False

    def __post_init__(self) -> None:
        require(len(self.phases) > 0, "phases", "need at least one phase")
        require(self.lr > 0, "lr", "must be > 0")
        require(0 <= self.ema_decay < 1, "ema_decay", "must be in [0, 1)")
        require(0 <= self.context_dropout < 1, "context_dropout", "must be in [0, 1)")
        require(self.checkpoint_every >= 1, "checkpoint_every", "must be >= 1")
        require(self.log_every >= 1, "log_every", "must be >= 1")

    @property
    def total_steps(self) -> int:
        return sum(p.steps for p in self.phases)

    def tokens_done(self, steps: int, patch: int, grid: bool = False, start: int = 0) -> int:
        """Tokens (``p x p`` patches of a frame) processed by steps ``start`` to ``steps`` (the
        steps a resumed run did itself when ``start`` is where it resumed); with ``grid`` a
        batch item is a ``frames x frames`` window of a 4D grid, not a video."""
        if start > 0:
            return self.tokens_done(steps, patch, grid) - self.tokens_done(start, patch, grid)
        total = 0
        for p in self.phases:
            n = min(steps, p.steps)
            cells = p.frames * p.frames if grid else p.frames
            total += n * p.batch_size * cells * (p.height // patch) * (p.width // patch)
            steps -= n
        return total

    def phase_at(self, step: int) -> Phase:
        """The phase that optimizer step ``step`` (0-based) belongs to."""
        for phase in self.phases:
            if step < phase.steps:
                return phase
            step -= phase.steps
        return self.phases[-1]


class NonFiniteLoss(FloatingPointError):
    """The loss became NaN or inf; training stops with the step and batch sources named."""


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


def autocast(device: torch.device, precision: str):
    """bf16 autocast on CUDA for ``auto``/``bf16``; nothing otherwise."""
    use = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16) if use else contextlib.nullcontext()


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
    final_loss: float | None  # mean of the last log interval (nothing left to train: the last logged loss)
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
    depends on, :func:`fourreal.provenance.run_key`; checkpoints of another key are removed
    and training starts over).

    ``make_batch(phase, rng)`` draws a batch; ``loss_fn(model, batch, generator)`` returns a
    scalar loss. ``on_checkpoint(ema_model, step)`` runs on rank 0 after each checkpoint
    (previews). Rank 0 writes ``loss.csv``, TensorBoard logs and checkpoints.

    ``flops_fn(batch)``, the model FLOPs of a training step on a batch (forward + backward,
    :mod:`fourreal.flops`), adds the run's own throughput to the :class:`TrainSummary`:
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
    logs = _LossLog(out, rank, step, cfg.total_steps)
    start, meter = time.time(), _Meter(flops_fn)
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
            out_of_time = _out_of_time(cfg.time_limit_s, start, world, device)
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
    final_loss = meter.mean(cfg.log_every) if meter.losses else logs.last_loss()
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
    tflops, ceiling, mfu = _throughput(meter.rates, device)
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
    with autocast(run.device, cfg.precision):
        loss = loss_fn(run.net, batch, run.gen)
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.params, cfg.grad_clip)
    run.opt.step()
    return loss


def _out_of_time(limit_s: float, start: float, world: int, device: torch.device) -> bool:
    """Whether the run has trained longer than ``limit_s`` seconds since ``start`` (0: no limit);
    under several ranks, whether any has, so that every rank stops at the same step."""
    out_of_time = limit_s > 0 and time.time() - start > limit_s
    if world > 1 and limit_s > 0:
        flag = torch.tensor([float(out_of_time)], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        out_of_time = bool(flag.item())
    return out_of_time


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


class _Meter:
    """A run's losses and model FLOP/s. Losses stay on the device until a log or checkpoint step
    reads them back (:meth:`read`): the host never waits for the GPU in between. Throughput is
    measured between those reads, checkpoints and previews left out (:meth:`restart`)."""

    def __init__(self, flops_fn: Callable[[Any], float] | None):
        self.flops_fn = flops_fn
        self.pending: list[tuple[torch.Tensor, Any]] = []  # (loss on the device, batch sources) not read yet
        self.losses: list[float] = []  # every loss read back
        self.rates: list[float] = []  # model FLOP/s of each interval between reads
        self.flops = 0.0  # model FLOPs of the current interval
        self.since = time.perf_counter()  # start of the current interval

    def add(self, loss: torch.Tensor, batch: Any) -> None:
        """Count a training step: its loss, left on the device, and its batch's model FLOPs."""
        self.pending.append((loss.detach(), getattr(batch, "sources", "n/a")))
        if self.flops_fn is not None:
            self.flops += self.flops_fn(batch)

    def read(self, step: int, out: Path) -> None:
        """Read back the losses of the steps up to ``step`` (:func:`_read_losses`) and end the
        current throughput interval."""
        self.losses += _read_losses(self.pending, step, out)
        self.pending.clear()
        now = time.perf_counter()
        if self.flops:
            self.rates.append(self.flops / (now - self.since))
        self.flops = 0.0

    def restart(self) -> None:
        """Start the next throughput interval."""
        self.since = time.perf_counter()

    def mean(self, n: int) -> float:
        """The mean of the last ``n`` losses read back."""
        return float(np.mean(self.losses[-n:]))


class _LossLog:
    """Rank 0's record of the loss: ``loss.csv`` (DVC plots), TensorBoard and a progress bar (on
    other ranks a disabled one)."""

    def __init__(self, out: Path, rank: int, step: int, total_steps: int):
        """Open the logs of a run that starts at ``step``: ``loss.csv`` keeps its rows up to it."""
        from torch.utils.tensorboard import SummaryWriter

        self.csv = out / "loss.csv"
        self.writer = SummaryWriter(str(out / "tensorboard")) if rank == 0 else None
        if rank == 0:
            rows = []
            if self.csv.exists():
                with open(self.csv) as f:
                    rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
            with open(self.csv, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=["step", "loss", "lr"])
                w.writeheader()
                w.writerows(rows)
        self.bar = tqdm(total=total_steps, initial=step, desc="training", unit="step", disable=rank != 0,
                        mininterval=0.5 if os.isatty(2) else 10.0)

    def write(self, step: int, loss: float, lr: float) -> None:
        """Log the mean ``loss`` of the interval that ends at ``step`` and the learning rate."""
        self.bar.set_postfix(loss=f"{loss:.4f}")
        self.writer.add_scalar("loss/train", loss, step)
        self.writer.add_scalar("lr", lr, step)
        with open(self.csv, "a", newline="") as f:
            csv.writer(f).writerow([step, f"{loss:.6f}", f"{lr:.3g}"])

    def close(self) -> None:
        """Close the progress bar and the TensorBoard writer."""
        self.bar.close()
        if self.writer is not None:
            self.writer.close()

    def last_loss(self) -> float | None:
        """The last loss ``loss.csv`` holds (None if it holds none): a finished run's final loss."""
        with open(self.csv) as f:
            logged = [float(r["loss"]) for r in csv.DictReader(f)]
        return logged[-1] if logged else None


def _throughput(rates: list[float], device: torch.device) -> tuple[float | None, float | None, float | None]:
    """The summary's ``model_tflops_per_s`` (median of the intervals' ``rates``), and on a GPU
    ``matmul_ceiling_tflops`` and ``mfu``; None where there is no rate or no GPU."""
    if not rates:
        return None, None, None
    tflops = float(np.median(rates)) / 1e12
    if device.type != "cuda":
        return float(f"{tflops:.4g}"), None, None
    from fourreal.flops import matmul_ceiling

    ceiling = matmul_ceiling(device)
    return float(f"{tflops:.4g}"), round(ceiling, 1), round(tflops / ceiling, 3)


def _read_losses(pending: list[tuple[torch.Tensor, Any]], step: int, out: Path) -> list[float]:
    """The losses of the last ``len(pending)`` steps (up to ``step``) as floats; raises
    :class:`NonFiniteLoss` naming the first step whose loss is NaN or inf."""
    values = torch.stack([loss for loss, _ in pending]).float().cpu().tolist()
    for i, value in enumerate(values):
        if not np.isfinite(value):
            raise NonFiniteLoss(f"loss is {value} at step {step - len(values) + 1 + i} (batch from {pending[i][1]}); "
                                f"last good checkpoint: {list_checkpoints(out / 'checkpoints')[-1:]}; lower optim.lr")
    return values


def _gather_rng(rng: np.random.Generator, gen: torch.Generator, world: int) -> dict[str, list]:
    """Every rank's RNG states (numpy bit generator and torch generator) for exact resume."""
    mine = {"numpy": rng.bit_generator.state, "torch": gen.get_state().tolist()}
    if world > 1:
        allstates: list[Any] = [None] * world
        dist.all_gather_object(allstates, mine)
    else:
        allstates = [mine]
    return {"numpy": [s["numpy"] for s in allstates], "torch": [s["torch"] for s in allstates]}


def export_model(directory: str | Path, model: nn.Module, config: dict[str, Any], max_shard_mb: float) -> None:
    """Write final weights (safetensors shards) and ``config.json`` to ``directory`` atomically."""
    with atomic_dir(directory) as tmp:
        save_tensors(tmp, "model", model.state_dict(), max_shard_mb)
        (tmp / "config.json").write_text(json.dumps(config, indent=1))
