"""The parameters of the training stages, one class per ``params.yaml`` section:
``train_base`` (:class:`TrainBaseConfig`), ``train_upsampler`` (:class:`TrainUpsamplerConfig`)
and ``train_4d`` (:class:`Train4DConfig`, its variants :class:`Variant4D`); each holds its
optimizer settings as :class:`fourreal.training.optim.OptimConfig`, whose default blocks here set
only what differs from ``optim_defaults`` (the class's own defaults), as ``params.yaml`` does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from fourreal.models.dit import PRESETS, DiTConfig
from fourreal.models.model4d import ARCHITECTURES, Trainable
from fourreal.models.upsampler import upsampler_config
from fourreal.running import layout
from fourreal.running.config import require
from fourreal.training.optim import OptimConfig, Phase

# Every video source of the pipeline: real-video clips, pseudo-4D grids, rendered clips.
VIDEO_SOURCES = (layout.CLIPS, layout.PSEUDO_GRIDS, layout.RENDER_CLIPS)


@dataclass
class TrainBaseConfig:
    """Parameters of the ``train_base`` stage.

    Attributes:
        preset: model size, one of ``tiny``, ``small``, ``paper`` (see :data:`fourreal.models.dit.PRESETS`).
        sources: clip directories (``*.clip.npz``) and grid directories (``*.grid.npz``; rows
            are used as dynamic videos, columns as freeze-time videos).
        freeze_time_share: share of freeze-time videos in a batch.
        holdout_fraction: share of videos kept out of training for the held-out loss.
        eval_batches, eval_batch_size: size of the held-out evaluation.
        sample_steps, sampler, guidance: previews: ODE steps, ``euler``/``heun``, CFG scale.
        optim: optimizer and schedule.
    """

    preset: str = "tiny"
    sources: list[str] = field(default_factory=lambda: list(VIDEO_SOURCES))
    freeze_time_share: float = 0.5
    holdout_fraction: float = 0.1
    eval_batches: int = 4
    eval_batch_size: int = 4
    sample_steps: int = 20
    sampler: Literal["euler", "heun"] = "euler"
    guidance: float = 1.0
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        phases=[Phase(150, 20, 32, 8, 8), Phase(100, 36, 64, 8, 4)], context_dropout=0.1))

    def __post_init__(self) -> None:
        require(self.preset in PRESETS, "preset", f"must be one of {sorted(PRESETS)}")
        require(0 <= self.freeze_time_share <= 1, "freeze_time_share", "must be in [0, 1]")
        require(0 <= self.holdout_fraction < 1, "holdout_fraction", "must be in [0, 1)")

    def model_config(self) -> DiTConfig:
        return PRESETS[self.preset]


@dataclass
class TrainUpsamplerConfig:
    """Parameters of the ``train_upsampler`` stage.

    Attributes:
        preset: model size (see :data:`fourreal.models.dit.PRESETS`).
        scale: upsampling factor (paper: 4; each phase's size is the output size).
        sources: the video sources, as for the base model.
        holdout_fraction, eval_batches, eval_batch_size: held-out evaluation.
        sample_steps: ODE steps when upsampling.
        residual_scale: the generated residual is ``(truth - bilinear) / residual_scale``.
        optim: optimizer and schedule (phase sizes are output sizes).
    """

    preset: str = "tiny"
    scale: int = 2
    sources: list[str] = field(default_factory=lambda: list(VIDEO_SOURCES))
    holdout_fraction: float = 0.1
    eval_batches: int = 2
    eval_batch_size: int = 4
    sample_steps: int = 10
    residual_scale: float = 0.1
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(phases=[Phase(300, 36, 64, 2, 8)]))

    def __post_init__(self) -> None:
        require(self.preset in PRESETS, "preset", f"must be one of {sorted(PRESETS)}")
        require(self.scale in (2, 4), "scale", "must be 2 or 4")
        require(self.residual_scale > 0, "residual_scale", "must be > 0")
        for i, p in enumerate(self.optim.phases):
            require(p.height % self.scale == 0 and p.width % self.scale == 0, "optim.phases",
                    f"phase {i}: {p.height}x{p.width} must be divisible by scale = {self.scale}")

    def model_config(self) -> DiTConfig:
        return upsampler_config(self.preset)


@dataclass
class Variant4D:
    """One 4D model variant of the paper's ablation.

    Attributes:
        architecture: a sync mode (``hard``, ``soft``, ``hard_free``, ``soft_free``) or ``sequential``.
        seq_attention: for ``sequential``: ``time`` or ``view`` gets its own attention copy, or "".
        pseudo_trainable, render_trainable: what trains on pseudo-4D grids (phase 1) and on
            rendered grids (phase 2): ``all``, ``sync``, ``time_attention``, ``view_attention``.
    """

    architecture: str
    seq_attention: str = ""
    pseudo_trainable: str = "all"
    render_trainable: str = "sync"

    def __post_init__(self) -> None:
        require(self.architecture in ARCHITECTURES, "architecture", f"must be one of {list(ARCHITECTURES)}")
        require(self.seq_attention in ("", "time", "view"), "seq_attention", "must be '', 'time' or 'view'")
        for name in ("pseudo_trainable", "render_trainable"):
            require(getattr(self, name) in get_args(Trainable), name,
                    "must be all, sync, time_attention, view_attention or none")


@dataclass
class Train4DConfig:
    """Parameters of the ``train_4d`` and ``finetune_4d`` stages (paper Sec. 3.3: phase 1 on
    pseudo-4D grids, phase 2 on rendered grids, only the sync layers).

    Attributes:
        base_model: the trained base model directory.
        extra_known: probability of extra known leading rows/columns in training windows.
        variants: the trained variants, by name.
        pseudo, render: optimizer and schedule of each phase; a phase's ``frames`` is the
            side of the square training window (views = times = frames).
    """

    base_model: str = layout.BASE_MODEL
    extra_known: float = 0.25
    variants: dict[str, Variant4D] = field(default_factory=dict)
    pseudo: OptimConfig = field(default_factory=lambda: OptimConfig(
        phases=[Phase(80, 20, 32, 4, 4)], lr=5e-4, warmup=10, ema_decay=0.9, checkpoint_every=40))
    render: OptimConfig = field(default_factory=lambda: OptimConfig(
        phases=[Phase(40, 20, 32, 4, 4)], lr=5e-4, warmup=5, ema_decay=0.9, checkpoint_every=20))
