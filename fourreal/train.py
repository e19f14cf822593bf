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
from fourreal.checkpoint import list_checkpoints, load_checkpoint, read_optimizer, save_checkpoint
from fourreal.config import require
from fourreal.faults import fault_point
from fourreal.provenance import RESUME_NEUTRAL

log = logging.getLogger(__name__)


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


def train(model: nn.Module, cfg: OptimConfig, out_dir: str | Path, make_batch: BatchFn, loss_fn: StepFn,
          on_checkpoint: Callable[[nn.Module, int], None] | None = None, run_key: str = "",
          flops_fn: Callable[[Any], float] | None = None) -> dict[str, Any]:
    """Train ``model``'s parameters that require grad; resume from the newest checkpoint in
    ``out_dir/checkpoints`` made with the same ``run_key`` (a hash of everything the run
    depends on, :func:`fourreal.provenance.run_key`; checkpoints of another key are removed
    and training starts over).
    Returns a summary (steps, the step it resumed from, wall time, final loss, the EMA model).

    ``make_batch(phase, rng)`` draws a batch; ``loss_fn(model, batch, generator)`` returns a
    scalar loss. ``on_checkpoint(ema_model, step)`` runs on rank 0 after each checkpoint
    (previews). Rank 0 writes ``loss.csv``, TensorBoard logs and checkpoints.

    ``flops_fn(batch)``, the model FLOPs of a training step on a batch (forward + backward,
    :mod:`fourreal.flops`), adds the run's own throughput to the summary: ``model_tflops_per_s``
    (per GPU, median over the intervals between log steps of their FLOPs / wall time, batch
    drawing included, checkpoints and previews not) and on a GPU ``mfu`` against the bf16
    matmul ceiling measured at the end of the run.

    The loss is read back to the host only at log and checkpoint steps (a NaN is caught
    there, before a checkpoint is written), and a time limit is checked there too.
    """
    from torch.utils.tensorboard import SummaryWriter

    out = Path(out_dir)
    rank, world, device = parallel.setup()
    model.to(device)
    for m in model.modules():  # every DiT inside (the 4D model's base included)
        if hasattr(m, "checkpointing"):
            m.checkpointing = cfg.activation_checkpointing
    ema = copy.deepcopy(model).requires_grad_(False) if cfg.ema_decay > 0 else None
    step, state = 0, {}
    checkpoints = list_checkpoints(out / "checkpoints")
    if checkpoints and json.loads((checkpoints[-1] / "state.json").read_text()).get("run_key") != run_key:
        log.warning("checkpoints in %s come from another run (its configs, input data, upstream weights or code "
                    "differ): starting over", out / "checkpoints")
        if rank == 0:
            shutil.rmtree(out / "checkpoints")
        checkpoints = []
    if checkpoints:
        state = load_checkpoint(checkpoints[-1], model, ema)
        step = state["step"]
        log.info("resumed from %s (step %d)", checkpoints[-1], step)
    elif rank == 0 and not list_checkpoints(out / "checkpoints" / "init"):
        save_checkpoint(out / "checkpoints" / "init", 0, parallel.model_state(model),  # the step-0 reference
                        None if ema is None else parallel.model_state(ema), None, {}, cfg.max_shard_mb)
    resumed_from = step
    sharded = world > 1 and cfg.parallel == "fsdp"
    # under FSDP no rank holds whole weights: rank 0 keeps a plain copy for previews and export
    plain = copy.deepcopy(ema if ema is not None else model) if sharded and rank == 0 else None
    bf16 = device.type == "cuda" and cfg.precision != "fp32"
    net = parallel.wrap(model, cfg.parallel, world, device, bf16)
    if sharded and ema is not None:
        parallel.shard(ema, device, bf16)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99),
                            fused=device.type == "cuda" and not sharded)
    if checkpoints and (saved := read_optimizer(checkpoints[-1], state)) is not None:
        parallel.load_optimizer_state(model, opt, saved)
    rng = np.random.default_rng([cfg.seed, rank])  # data order and masks (host)
    gen = torch.Generator(device=device).manual_seed(cfg.seed * 1000 + rank)  # noise, where the model trains
    rng_state = state.get("rng")
    if rng_state is not None and rank < len(rng_state["numpy"]):  # ranks beyond the saved ones keep fresh seeds
        rng.bit_generator.state = rng_state["numpy"][rank]
        saved_gen = torch.tensor(rng_state["torch"][rank], dtype=torch.uint8)
        if saved_gen.numel() == gen.get_state().numel():
            gen.set_state(saved_gen)
        else:
            log.warning("%s was saved on another kind of device: its noise generator starts afresh", checkpoints[-1])
    if cfg.compile:
        net = torch.compile(net, dynamic=False)  # one static graph per phase shape

    def finished_model(weights: dict[str, torch.Tensor] | None = None) -> nn.Module | None:
        """The weights previews and export use (EMA if kept): the module itself, or under FSDP
        rank 0's plain copy loaded with the gathered ``weights`` (collective; None on other ranks)."""
        source = ema if ema is not None else model
        if not sharded:
            return source
        weights = parallel.model_state(source) if weights is None else weights
        if plain is not None:
            plain.load_state_dict(weights)
        return plain

    writer = SummaryWriter(str(out / "tensorboard")) if rank == 0 else None
    csv_path = out / "loss.csv"
    if rank == 0:
        rows = []
        if csv_path.exists():
            with open(csv_path) as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
        with open(csv_path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["step", "loss", "lr"])
            w.writeheader()
            w.writerows(rows)
    start, recent, first_step = time.time(), [], step
    bar = tqdm(total=cfg.total_steps, initial=step, desc="training", unit="step", disable=rank != 0,
               mininterval=0.5 if os.isatty(2) else 10.0)
    # Losses stay on the device until a log or checkpoint step reads them back: the host
    # never waits for the GPU in between. Throughput is measured between those reads.
    pending: list[tuple[torch.Tensor, Any]] = []
    rates, interval_flops, interval_start = [], 0.0, time.perf_counter()  # model FLOP/s of each interval
    while step < cfg.total_steps:
        phase = cfg.phase_at(step)
        batch = make_batch(phase, rng, device)
        lr = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup))
        for group in opt.param_groups:
            group["lr"] = lr
        with autocast(device, cfg.precision):
            loss = loss_fn(net, batch, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        if ema is not None:
            update_ema(ema, model, ema_decay_at(cfg.ema_decay, step + 1))
        step += 1
        pending.append((loss.detach(), getattr(batch, "sources", "n/a")))
        if flops_fn is not None:
            interval_flops += flops_fn(batch)
        bar.update(1)
        log_now = step % cfg.log_every == 0 or step == cfg.total_steps
        save_now = step % cfg.checkpoint_every == 0 or step == cfg.total_steps
        out_of_time = False
        if log_now or save_now:
            recent += _read_losses(pending, step, out)  # waits for the GPU; raises on NaN before anything is saved
            pending.clear()
            now = time.perf_counter()
            if interval_flops:
                rates.append(interval_flops / (now - interval_start))
            interval_flops = 0.0
            out_of_time = cfg.time_limit_s > 0 and time.time() - start > cfg.time_limit_s
            if world > 1 and cfg.time_limit_s > 0:  # every rank stops at the same step
                flag = torch.tensor([float(out_of_time)], device=device)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                out_of_time = bool(flag.item())
        if rank == 0 and log_now:
            mean = float(np.mean(recent[-cfg.log_every:]))
            bar.set_postfix(loss=f"{mean:.4f}")
            writer.add_scalar("loss/train", mean, step)
            writer.add_scalar("lr", lr, step)
            with open(csv_path, "a", newline="") as f:
                csv.writer(f).writerow([step, f"{mean:.6f}", f"{lr:.3g}"])
        fault_point("train_step")
        if save_now or out_of_time:
            states = _gather_rng(rng, gen, world)
            if sharded or rank == 0:  # gathering full tensors is collective under FSDP; DDP's rank 0 has them
                weights = parallel.model_state(model)
                ema_weights = None if ema is None else parallel.model_state(ema)
                moments = parallel.optimizer_state(model, opt)
                final_model = finished_model(weights if ema is None else ema_weights)
            if rank == 0:
                save_checkpoint(out / "checkpoints", step, weights, ema_weights, moments,
                                {"rng": states, "run_key": run_key}, cfg.max_shard_mb)
                fault_point("checkpoint_saved")
                if on_checkpoint is not None:
                    on_checkpoint(final_model, step)
        if log_now or save_now:
            interval_start = time.perf_counter()  # checkpoints and previews are not training time
        if out_of_time:
            log.warning("time limit of %.0f s reached at step %d of %d; rerun to continue", cfg.time_limit_s, step, cfg.total_steps)
            break
    bar.close()
    final_model = finished_model()
    if rank == 0 and step == first_step and on_checkpoint is not None:  # resumed a finished run: redo its outputs
        on_checkpoint(final_model, step)
    if writer is not None:
        writer.close()
    seconds = time.time() - start
    if recent:
        final = float(np.mean(recent[-cfg.log_every:]))
    else:  # nothing left to train: report the logged loss
        with open(csv_path) as f:
            logged = [float(r["loss"]) for r in csv.DictReader(f)]
        final = logged[-1] if logged else None
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
    throughput = {}
    if rates:
        tflops = float(np.median(rates)) / 1e12
        throughput["model_tflops_per_s"] = float(f"{tflops:.4g}")
        if device.type == "cuda":
            from fourreal.flops import matmul_ceiling

            ceiling = matmul_ceiling(device)
            throughput.update(matmul_ceiling_tflops=round(ceiling, 1), mfu=round(tflops / ceiling, 3))
    return {"steps": step, "resumed_from": resumed_from, "seconds": seconds, "final_loss": final, "peak_gpu_memory_gib": round(peak, 2), "rank": rank,
            "world_size": world, "device": str(device), "ema": final_model if ema is not None else None, **throughput}


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
    from fourreal.checkpoint import save_tensors
    from fourreal.files import atomic_dir

    with atomic_dir(directory) as tmp:
        save_tensors(tmp, "model", model.state_dict(), max_shard_mb)
        (tmp / "config.json").write_text(json.dumps(config, indent=1))
