"""FP8 sampling quality of a trained 4D model: held-out grids generated from their first row and
column with the same noise in bf16 and in fp8, compared with each other and with the truth.

    python benchmarks/fp8_quality.py models/small data/render/grids/test
    python benchmarks/fp8_quality.py models/small data/render/grids/test --max-grids 16 --steps 16

BUNDLE is a model bundle (``models/<name>``: its ``model_4d/``, whose frozen weights are in
``base/``) or a 4D model directory; GRIDS a directory of held-out grids (docs/GRID_FORMAT.md),
such as ``sample_4d.test_grids``. The first ``--max-grids`` grids by name, each cut to one
window of the model (its training window and frame size unless ``--window``/``--height``/
``--width`` say otherwise; :func:`fourreal.sampling.sample_4d.truth_window`), are sampled
twice from the same noise: in ``bf16`` (autocast) and in ``fp8``
(:mod:`fourreal.models.fp8`: the block and sync linear layers in FP8 with per-row scales).
The PSNR of fp8 against bf16 over the generated cells (the given first row and column left
out) is the number to watch (target: >= 35 dB); each one's PSNR against the truth shows what
the difference costs. Prints one JSON line and appends it to ``--out``.

On CUDA the GPU must run fp8 (compute capability 8.9+). Elsewhere the reference is fp32 and
fp8 is emulated (the same quantization, fp32 arithmetic): a check of the logic on a tiny
model, slow for a real one.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
from pathlib import Path

import numpy as np
import torch

from fourreal.evaluation.metrics import psnr
from fourreal.formats.grid import list_grids
from fourreal.models.fp8 import convert_to_fp8
from fourreal.models.model4d import Model4D
from fourreal.sampling.grid_windows import sample_grids
from fourreal.sampling.precision import describe_device, fp8_supported
from fourreal.sampling.sample_4d import Sample4DConfig, load_truths, model_velocity, sampling_device
from fourreal.training.model_files import load_model4d, training_window

TARGET_DB = 35.0  # fp8 against bf16 over the generated cells
RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results" / "fp8_quality.jsonl"


def model_dir(bundle: str | Path) -> Path:
    """The 4D model directory of ``bundle``: its ``model_4d/``, or ``bundle`` itself when it
    is a 4D model directory."""
    bundle = Path(bundle)
    for candidate in (bundle / "model_4d", bundle):
        if (candidate / "config.json").is_file():
            return candidate
    raise SystemExit(f"{bundle}: neither a model bundle (model_4d/config.json) nor a 4D model directory (config.json)")


def precisions(device: torch.device) -> tuple[str, bool]:
    """The reference precision on ``device`` and whether fp8 is emulated there: ``bf16`` and
    real fp8 on a GPU that runs it, ``fp32`` and emulated fp8 on the CPU."""
    if device.type != "cuda":
        return "fp32", True
    if not fp8_supported(device):
        raise SystemExit(f"fp8 needs an NVIDIA GPU of compute capability 8.9+ (found {describe_device(device)}); "
                         "run this on one, or on the CPU (emulated, tiny models only)")
    return "bf16", False


def _finite(value: float) -> float | str:
    """``value`` rounded to 3 decimals, ``"inf"`` for infinity (identical grids), for JSON."""
    return "inf" if math.isinf(value) else round(value, 3)


def compare(model: Model4D, truths: dict[str, torch.Tensor], window: int, steps: int = 16, sampler: str = "euler",
            seed: int = 0, batch: int = 4) -> dict:
    """Sample every truth ``[V, T, 3, H, W]`` (values in [-1, 1], on the model's device) from its
    first row and column with ``model`` in the reference precision (:func:`precisions`) and
    with an fp8 copy of it, from the same noise (``seed``), in ``window x window`` windows.

    Returns ``reference`` and ``fp8`` (the precisions, fp8 marked ``emulated`` where it is),
    ``fp8_layers`` (linear layers converted) and ``per_grid``: by truth name, the PSNR (dB,
    over the generated cells) of the fp8 grid against the reference grid and of each against
    the truth.
    """
    device = next(model.parameters()).device
    reference, emulate = precisions(device)
    fp8_model = copy.deepcopy(model)
    layers = convert_to_fp8(fp8_model, emulate=emulate)
    runs = {"reference": model_velocity(model, reference), "fp8": model_velocity(fp8_model, "fp8")}
    names, per_grid = list(truths), {}
    for i in range(0, len(names), batch):
        chunk = names[i : i + batch]
        stacked = torch.stack([truths[n] for n in chunk]).to(device)
        grids = {key: sample_grids(velocity, stacked[:, 0], stacked[:, :, 0], (window, window), steps, sampler, seed,
                                   progress=False).cpu()
                 for key, velocity in runs.items()}
        for j, name in enumerate(chunk):
            ref, fp8, truth = grids["reference"][j, 1:, 1:], grids["fp8"][j, 1:, 1:], truths[name][1:, 1:].cpu()
            per_grid[name] = {"fp8_vs_reference_psnr": psnr(fp8, ref), "reference_psnr": psnr(ref, truth),
                              "fp8_psnr": psnr(fp8, truth)}
    return {"reference": reference, "fp8": "fp8 (emulated)" if emulate else "fp8", "fp8_layers": layers,
            "per_grid": per_grid}


def summary(result: dict) -> dict:
    """The means over grids of :func:`compare`'s PSNRs, the worst fp8-against-reference one,
    and whether the mean reaches :data:`TARGET_DB`."""
    grids = result["per_grid"].values()
    mean = {key: float(np.mean([g[key] for g in grids])) for key in ("fp8_vs_reference_psnr", "reference_psnr",
                                                                      "fp8_psnr")}
    worst = min(g["fp8_vs_reference_psnr"] for g in grids)
    return {**{k: _finite(v) for k, v in mean.items()}, "fp8_vs_reference_psnr_min": _finite(worst),
            "target_db": TARGET_DB, "meets_target": bool(mean["fp8_vs_reference_psnr"] >= TARGET_DB)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", help="a model bundle (models/<name>) or a 4D model directory")
    parser.add_argument("grids", help="a directory of held-out grids (*.grid.npz)")
    parser.add_argument("--max-grids", type=int, default=8, help="the first N grids by name (0: all)")
    parser.add_argument("--window", type=int, default=0, help="cells per side (0: the model's training window)")
    parser.add_argument("--height", type=int, default=0, help="frame height (0: the model's training size)")
    parser.add_argument("--width", type=int, default=0, help="frame width (0: the model's training size)")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--sampler", choices=["euler", "heun"], default="euler")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=4, help="grids sampled at once")
    parser.add_argument("--out", default=str(RESULTS), help="JSON lines file the record is appended to ('': none)")
    args = parser.parse_args(argv)
    directory = model_dir(args.bundle)
    trained = json.loads((directory / "config.json").read_text()).get("training_window") or {}
    window = args.window or training_window(directory) or 0
    height, width = args.height or trained.get("height", 0), args.width or trained.get("width", 0)
    if not (window and height and width):
        raise SystemExit(f"{directory} records no training window; pass --window, --height and --width")
    paths = list_grids(args.grids)
    paths = paths[: args.max_grids] if args.max_grids else paths
    if not paths:
        raise SystemExit(f"{args.grids}: no grids (*.grid.npz)")
    cfg = Sample4DConfig(views=window, times=window, height=height, width=width)
    truths = {name: truth.rgb for name, truth in load_truths(paths, cfg).items()}
    device = sampling_device()
    model = load_model4d(directory).to(device).eval()
    result = compare(model, truths, window, args.steps, args.sampler, args.seed, args.batch)
    record = {"device": describe_device(device), "bundle": str(args.bundle), "grids_dir": str(args.grids),
              "grids": len(truths), "window": window, "size": f"{height}x{width}", "steps": args.steps,
              "sampler": args.sampler, "seed": args.seed, "reference": result["reference"], "fp8": result["fp8"],
              "fp8_layers": result["fp8_layers"], **summary(result),
              "per_grid": {name: {k: _finite(v) for k, v in scores.items()} for name, scores in result["per_grid"].items()}}
    line = json.dumps(record)
    print(line)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "a") as f:
            f.write(line + "\n")
    return record


if __name__ == "__main__":
    main()
