"""Training hyper-parameters: the progressive schedule (:class:`Phase`) and the optimizer,
schedule and bookkeeping settings of a training run (:class:`OptimConfig`), read from the
optimizer blocks of the training stages' ``params.yaml`` sections (``train_base.optim``,
``train_upsampler.optim``, ``train_4d.pseudo``, ``train_4d.render``) over the shared
``optim_defaults`` section, and consumed by :func:`fourreal.training.train.train`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from fourreal.running.config import require
from fourreal.running.provenance import RESUME_NEUTRAL
from fourreal.training import parallel


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

    Every block of this class in ``params.yaml`` takes the keys it does not set from the
    section :attr:`DEFAULTS_SECTION` (``optim_defaults``), whose values are this class's
    field defaults; a block sets its ``phases`` and whatever else differs.

    Attributes:
        phases: the progressive schedule, run in order.
        lr, weight_decay, warmup, grad_clip: AdamW with linear warmup then constant rate.
        ema_decay: EMA of the weights (0 disables), after a warm-up (:func:`fourreal.training.train.ema_decay_at`).
        sigma_schedule, sigma_mean, sigma_std: distribution of training flow times:
            ``uniform`` on [0, 1] (the rectified flow the paper trains with, Liu et al. 2022),
            or ``logit_normal`` (``sigmoid(N(sigma_mean, sigma_std))``, Esser et al. 2024), which
            almost never draws the flow times near 1 where sampling starts.
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

    DEFAULTS_SECTION: ClassVar[str] = "optim_defaults"

    phases: list[Phase] = field(default_factory=lambda: [Phase(100, 16, 32, 8, 4)])
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup: int = 20
    grad_clip: float = 1.0
    ema_decay: float = 0.98
    sigma_schedule: Literal["uniform", "logit_normal"] = "uniform"
    sigma_mean: float = 0.0
    sigma_std: float = 1.0
    context_dropout: float = 0.0
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
