"""What a training run records as it goes (:func:`fourreal.training.train.train`): its losses, read back
from the device only at log and checkpoint steps and checked for NaN there (:class:`Meter`),
its model FLOP/s between those reads (:func:`throughput`), and rank 0's ``loss.csv``,
TensorBoard logs and progress bar (:class:`LossLog`)."""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from fourreal.formats.checkpoint import list_checkpoints


class NonFiniteLoss(FloatingPointError):
    """The loss became NaN or inf; training stops with the step and batch sources named."""



class Meter:
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


def recorded_loss(loss: float) -> float:
    """``loss`` as ``loss.csv`` records it (6 decimals): a run's final loss is the same whether it
    trained to the end or resumed a finished run and read it back (:meth:`LossLog.last_loss`)."""
    return float(_loss_text(loss))


def _loss_text(loss: float) -> str:
    """``loss`` as written into ``loss.csv``."""
    return f"{loss:.6f}"


class LossLog:
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
            csv.writer(f).writerow([step, _loss_text(loss), f"{lr:.3g}"])

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


def throughput(rates: list[float], device: torch.device) -> tuple[float | None, float | None, float | None]:
    """The summary's ``model_tflops_per_s`` (median of the intervals' ``rates``), and on a GPU
    ``matmul_ceiling_tflops`` and ``mfu``; None where there is no rate or no GPU."""
    if not rates:
        return None, None, None
    tflops = float(np.median(rates)) / 1e12
    if device.type != "cuda":
        return float(f"{tflops:.4g}"), None, None
    from fourreal.training.flops import matmul_ceiling

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
