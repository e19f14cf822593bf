"""Where the deformable fit's time goes: ``--steps`` fit steps under ``torch.profiler``.

    python benchmarks/reconstruct_profile.py --grid data/render/grids/test/NAME.grid.npz --steps 200 [--compile]

The scene and settings are :mod:`reconstruct_speed`'s (same grid, ``--scale``, ``--stride``):
canonical init and floater pruning, ``--warmup`` fit steps (compilation with ``--compile``),
then the profiled steps. Prints the top ops by self device time and that time grouped into
the parts of a step (:data:`GROUPS`): forward ops by the innermost named range around them
(the fit's ``fit.*`` ranges, torch's ``Optimizer.*``; :func:`range_group`), backward ops by the
forward op that recorded them (autograd sequence numbers). Device time is CUDA time; on the
CPU (``--backend torch``, a smoke check) it is CPU time. Then the host's side (:func:`host_report`):
wall time per step, the host time spent in each named range and the top ops by self host
time, which is where a step that launches more than the device runs goes.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import torch
from torch.autograd import DeviceType
from torch.autograd.profiler_util import FunctionEvent
from torch.profiler import ProfilerActivity, profile

from fourreal.reconstruction.config import compute_device
from fourreal.reconstruction.fit import fit
from fourreal.reconstruction.init import background_color, canonical_init
from fourreal.reconstruction.prune import prune_floaters
from reconstruct_speed import benchmark_config, load_scene

GROUPS = ("rasterization", "deformation MLP", "offsets", "SSIM", "smoothness", "optimizer", "other")
"""The parts of a fit step the time is grouped into."""

_BACKWARD = "autograd::engine::evaluate_function: "
_RANGES = {"fit.render": "rasterization", "fit.deformation": "deformation MLP", "fit.ssim": "SSIM",
           "fit.smoothness": "smoothness"}


def range_group(name: str, compiled: bool) -> str | None:
    """The group of ops run inside the named range ``name``, or None when ``name`` is no such
    range. Ranges inside a compiled region are dropped, so under ``--compile`` the whole of
    ``fit.positions`` counts as deformation MLP (offsets included) and the whole of
    ``fit.loss`` as SSIM (smoothness and L1 included); run eagerly, what ``fit.positions``
    runs outside ``fit.deformation`` is the offsets, and ``fit.loss`` outside its parts the L1."""
    if name in _RANGES:
        return _RANGES[name]
    if name == "fit.positions":
        return "deformation MLP" if compiled else "offsets"
    if name == "fit.loss":
        return "SSIM" if compiled else "other"
    return "optimizer" if name.startswith("Optimizer.") else None


def group_of(event: FunctionEvent, forward_groups: dict[int, str], compiled: bool) -> str:
    """The group of a profiled op: a backward op takes its forward op's (by autograd sequence
    number, :func:`forward_group_map`), a forward op that of the innermost range around it."""
    e = event
    while e is not None:
        if e.name.startswith(_BACKWARD):
            name = e.name[len(_BACKWARD):].lower()
            return forward_groups.get(e.sequence_nr, "rasterization" if "rasteriz" in name or "projection" in name
                                      else "other")
        group = range_group(e.name, compiled)
        if group is not None:
            return group
        e = e.cpu_parent
    return "other"


def forward_group_map(events: list[FunctionEvent], compiled: bool) -> dict[int, str]:
    """``{autograd sequence number: group}`` of the forward ops (those that recorded a
    backward node: a sequence number, no backward evaluation above them)."""
    groups = {}
    for e in events:
        if e.sequence_nr >= 0 and not _in_backward(e):
            groups.setdefault(e.sequence_nr, group_of(e, {}, compiled))
    return groups


def is_op(event: FunctionEvent) -> bool:
    """Whether ``event`` is an op on the host (not a named range, not a device kernel)."""
    return event.device_type == DeviceType.CPU and not getattr(event, "is_user_annotation", False)


def _in_backward(event: FunctionEvent) -> bool:
    """Whether ``event`` runs inside a backward node's evaluation."""
    e = event
    while e is not None and not e.name.startswith(_BACKWARD):
        e = e.cpu_parent
    return e is not None


def self_time_us(event: FunctionEvent, cuda: bool) -> float:
    """``event``'s self time in microseconds: its kernels' on CUDA, its own CPU time on the CPU."""
    return event.self_device_time_total if cuda else event.self_cpu_time_total


def host_report(events: list[FunctionEvent], steps: int, wall_us: float, top: int) -> list[str]:
    """Lines on the host's time of ``steps`` profiled steps that took ``wall_us``: the wall time
    per step, the host time per step inside each named range (``fit.*``, ``Optimizer.*``,
    backward evaluation; children included) and the ``top`` ops by self host time."""
    ranges: dict[str, float] = defaultdict(float)
    by_op: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])  # name: [self host time, calls]
    for e in events:
        if e.device_type != DeviceType.CPU:
            continue
        name = e.name
        if name.startswith(_BACKWARD):
            if e.cpu_parent is None or not _in_backward(e.cpu_parent):  # outermost evaluations only
                ranges["backward (autograd)"] += e.cpu_time_total
        elif name.startswith("fit.") or name.startswith("Optimizer.step"):
            ranges[name] += e.cpu_time_total
        by_op[name][0] += e.self_cpu_time_total
        by_op[name][1] += 1
    lines = [f"host: {wall_us / steps:8.1f} us wall per step"]
    for name, us in sorted(ranges.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {name:<40} {us / steps:8.1f} us/step host (children included)")
    lines.append(f"top {top} ops by self host time")
    for name, (us, calls) in sorted(by_op.items(), key=lambda kv: -kv[1][0])[:top]:
        lines.append(f"  {us / 1e3:10.1f} ms  {calls:7d} calls  {name[:90]}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", required=True)
    parser.add_argument("--scale", type=int, default=1, help="upsample frames, depth and intrinsics by this factor")
    parser.add_argument("--stride", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200, help="profiled fit steps")
    parser.add_argument("--warmup", type=int, default=20, help="fit steps before profiling (compiles with --compile)")
    parser.add_argument("--compile", action="store_true", help="reconstruct.compile: true")
    parser.add_argument("--backend", default="gsplat", choices=["gsplat", "torch"], help="torch: a CPU smoke check")
    parser.add_argument("--top", type=int, default=25, help="rows of the top-ops table")
    args = parser.parse_args()
    rgb, depth, Ks = load_scene(args.grid, args.scale)
    cfg = benchmark_config(args.steps, args.stride, backend=args.backend, compile=args.compile)
    cuda = compute_device(cfg).type == "cuda"
    bg = background_color(rgb[:, 0], depth[:, 0])
    canonical, _ = prune_floaters(canonical_init(rgb[:, 0], depth[:, 0], Ks, cfg), rgb[:, 0], Ks, bg, cfg)
    model, _, _ = fit(rgb, Ks, canonical, bg, cfg, progress=False, steps=args.warmup)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        fit(rgb, Ks, canonical, bg, cfg, progress=False, model=model)
        if cuda:
            torch.cuda.synchronize()
        wall_us = (time.perf_counter() - start) * 1e6
    every = list(prof.events())
    events = [e for e in every if is_op(e)]  # kernels count in their ops' device time
    unit = "CUDA" if cuda else "CPU"
    forward_groups = forward_group_map(events, args.compile)
    by_op: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])  # name: [self time, calls]
    totals: dict[str, float] = defaultdict(float)
    for e in events:
        by_op[e.name][0] += self_time_us(e, cuda)
        by_op[e.name][1] += 1
        totals[group_of(e, forward_groups, args.compile)] += self_time_us(e, cuda)
    print(f"top {args.top} ops by self {unit} time ({args.steps} steps)")
    for name, (us, calls) in sorted(by_op.items(), key=lambda kv: -kv[1][0])[:args.top]:
        print(f"  {us / 1e3:10.1f} ms  {calls:7d} calls  {name[:90]}")
    whole = sum(totals.values()) or 1.0
    print(f"{len(canonical.cloud)} Gaussians, {args.steps} steps, compile={args.compile}: self {unit} time by part")
    for name in GROUPS:
        print(f"  {name:<16} {totals[name] / 1e3:10.1f} ms  {totals[name] / args.steps:8.1f} us/step  "
              f"{100 * totals[name] / whole:5.1f} %")
    print(f"  {'total':<16} {whole / 1e3:10.1f} ms  {whole / args.steps:8.1f} us/step")
    print("\n".join(host_report(every, args.steps, wall_us, args.top)))


if __name__ == "__main__":
    main()
