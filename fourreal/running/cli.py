"""The ``fourreal`` command: run stages, look at grids, apply parameter profiles.

    fourreal run                    # dvc repro: every stage that changed
    fourreal run pseudo4d           # one stage (and its changed upstream stages)
    fourreal run pseudo4d --single --force
    fourreal show data/pseudo4d/grids/x.grid.npz   # summary + previews (PNG, mp4, HTML)
    fourreal sample first.png       # a dynamic and a freeze-time video from one frame
    fourreal grid --row fixed.mp4 --column freeze.mp4   # a 4D grid from the two videos
    fourreal to4d my.mp4            # one video in, a 4D grid and its reconstruction out
    fourreal profile apply small    # merge profiles/small.yaml into params.yaml
    fourreal bundle models/small    # the trained models, bf16, with a model card
    fourreal pack data/render/grids/train packed/   # grids small for travel (fourreal unpack there)
    fourreal view data/reconstruct/grids/render_grids_test/Fox   # 3D viewer of a reconstruction
    fourreal export data/reconstruct/grids/render_grids_test/Fox --times 0 3   # per-frame PLY, mesh, mp4

An error in what was given (a missing or wrong file, a bad parameter) is one line; --debug
(before or after the command) shows its traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fourreal.formats.files import atomic_path
from fourreal.formats.grid import SUFFIX, GridFormatError, load_grid
from fourreal.formats.preview import PreviewConfig, write_grid_previews
from fourreal.running import layout
from fourreal.running.config import ConfigError, block_data, load_section
from fourreal.running.errors import DEBUG_ENV, UserError, report_user_errors
from fourreal.running.params import block_class


def _run(args: argparse.Namespace) -> int:
    """``dvc repro`` with the current interpreter's environment first on PATH (and, with
    ``--debug``, the stages' tracebacks of user errors)."""
    cmd = [sys.executable, "-m", "dvc", "--wait-for-lock", "repro"]
    if args.single:
        cmd.append("--single-item")
    if args.force:
        cmd.append("--force")
    if args.stage:
        cmd.append(args.stage)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if args.debug:
        env[DEBUG_ENV] = "1"
    return subprocess.call(cmd, env=env)


def _show(args: argparse.Namespace) -> int:
    """Print a grid's summary and write its previews."""
    if not str(args.grid).endswith(SUFFIX):
        raise GridFormatError(f"{args.grid}: not a grid file; `fourreal show` takes a {SUFFIX} file written by the "
                              f"pipeline, e.g. one in {layout.RENDER_TEST} or {layout.PSEUDO_GRIDS}")
    grid = load_grid(args.grid)
    v, t, h, w = grid.shape
    table = Table(title=str(args.grid), show_header=False)
    table.add_row("views x times", f"{v} x {t}")
    table.add_row("frame size", f"{h} x {w}")
    table.add_row("depth", "yes" if grid.depth is not None else "no")
    table.add_row("cameras", "yes" if grid.cam_to_world is not None else "no")
    table.add_row("conditioning cells", str(int(grid.cond_mask.sum())))
    for key in ("source", "kind", "seed", "fps"):
        if key in grid.meta:
            table.add_row(key, str(grid.meta[key]))
    console = Console()
    console.print(table)
    name = Path(args.grid).name.removesuffix(SUFFIX)
    cfg = PreviewConfig(cell_height=args.cell_height, mp4=not args.no_mp4)
    written = write_grid_previews(grid, args.out, name, cfg)
    for path in written:
        console.print(f"wrote {path}")
    return 0


def _read_first_frame(path: Path, height: int, width: int):
    """The first frame of an image or video file, center-cropped and resized: ``[3, H, W]`` in [-1, 1]."""
    from fourreal.sampling.video_to_4d import read_image_or_video
    from fourreal.training.data import to_unit

    frames, _ = read_image_or_video(path, 1.0, height, width)
    return to_unit(frames[0].copy())


def _sample(args: argparse.Namespace) -> int:
    """Sample a dynamic and a freeze-time video from one first frame with the base model."""
    import numpy as np

    from fourreal.formats.clip import MODES
    from fourreal.formats.preview import contact_sheet, write_mp4, write_png
    from fourreal.sampling.video_sampling import sample_from_first_frame
    from fourreal.training.data import to_uint8
    from fourreal.training.model_files import load_model

    model = load_model(args.model)
    first = _read_first_frame(Path(args.input), args.height, args.width)[None]
    out = Path(args.out)
    rows = []
    for mode in MODES:
        video = to_uint8(sample_from_first_frame(model, first, args.frames, mode, args.steps, args.sampler,
                                                 args.guidance, args.seed, args.sigma_max))[0]
        write_mp4(out / f"{mode}.mp4", video.repeat(4, axis=1).repeat(4, axis=2), fps=8)
        rows.append(video)
        print(f"wrote {out / f'{mode}.mp4'}")
    write_png(out / "samples.png", contact_sheet(np.stack(rows), 96))
    print(f"wrote {out / 'samples.png'} (row 0: dynamic, row 1: freeze-time)")
    return 0


def _flow_time(text: str) -> float:
    """A ``--sigma-max`` value: a flow time in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a flow time in (0, 1]; e.g. 1 or 0.95")
    return value


# fourreal.sampling.precision.PRECISIONS, without importing torch for the command line
GRID_PRECISIONS = ["auto", "fp32", "bf16", "fp8"]


def _grid(args: argparse.Namespace) -> int:
    """Generate a 4D grid from a fixed-view video (first row) and a freeze-time video (first column),
    on the GPU when there is one, in ``--precision``."""
    import torch

    from fourreal.data_making.videos import VideoReadError, read_video
    from fourreal.formats.grid import Grid, save_grid
    from fourreal.running.bundle import bundle_paths
    from fourreal.sampling.grid_windows import sample_grid
    from fourreal.sampling.precision import prepare_model, resolve_precision
    from fourreal.sampling.sample_4d import model_velocity, resolve_window, sampling_device
    from fourreal.training.data import to_uint8, to_unit
    from fourreal.training.model_files import load_model4d

    def frames(path: str, count: int) -> torch.Tensor:
        video = read_video(Path(path), args.fps, args.height, args.width)
        if len(video) < count:
            raise VideoReadError(f"{path}: {len(video)} frames at {args.fps} fps, {count} needed; lower the count "
                                 "or the fps")
        return to_unit(video[:count].copy())

    if args.models:
        args.model = str(bundle_paths(args.models)["model_4d"])
    window = resolve_window(args.window, args.model, force=args.force_window, key="--window", force_key="--force-window")
    device = sampling_device()
    precision = resolve_precision(args.precision, device, key="--precision")
    model = prepare_model(load_model4d(args.model).to(device), precision)
    row, col = frames(args.row, args.times).to(device), frames(args.column, args.views).to(device)

    with torch.no_grad():
        grid = sample_grid(model_velocity(model, precision), row, col, (window, window), args.steps, args.sampler,
                           args.seed, sigma_max=args.sigma_max).cpu()
    if args.upsampler:
        from fourreal.sampling.video_sampling import upsample_grid
        from fourreal.training.model_files import load_upsampler

        upsampler, up_cfg = load_upsampler(args.upsampler)
        grid = upsample_grid(upsampler, grid, up_cfg, seed=args.seed)
    out = Path(args.out)
    name = Path(args.row).stem
    result = Grid(rgb=to_uint8(grid), meta={"kind": "generated", "source": f"{args.row} + {args.column}",
                                            "seed": args.seed, "fps": args.fps, "model": str(args.model)})
    save_grid(out / f"{name}.grid.npz", result)
    for path in write_grid_previews(result, out, name, PreviewConfig(cell_height=96)):
        print(f"wrote {path}")
    print(f"wrote {out / f'{name}.grid.npz'}")
    return 0


def _to4d(args: argparse.Namespace) -> int:
    """One video or image in, a 4D scene out: the ``video_to_4d`` stage's work on any file."""
    from fourreal.reconstruction.config import ReconstructConfig
    from fourreal.running.stage import setup_logging
    from fourreal.sampling.video_to_4d import VideoTo4DConfig, run_video_to_4d, runs_dir, with_bundle

    setup_logging()
    path = Path(args.input)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file; pass a video, an image or a directory of frames")
    cfg = replace(load_section(VideoTo4DConfig, "video_to_4d", args.params), input=str(path))
    if args.models:
        cfg = with_bundle(cfg, args.models)
    out = Path(args.out) if args.out else runs_dir(path)
    run_video_to_4d(cfg, load_section(ReconstructConfig, "reconstruct", args.params), out)
    print(f"wrote {out}; look at it with: fourreal view {out}/reconstruction")
    return 0


def _bundle(args: argparse.Namespace) -> int:
    """Gather the trained models into a bundle with its model card."""
    from functools import partial

    from fourreal.running.bundle import model_card, write_bundle

    scores = {}
    details = json.loads(Path(args.scores).read_text()) if args.scores and Path(args.scores).is_file() else {}
    for row in (args.variant, "copy_row_baseline", "copy_column_baseline"):
        if f"{row}_psnr" in details:
            scores[row] = {k: details.get(f"{row}_{k}", "-") for k in ("psnr", "ssim", "fg_psnr", "fg_ssim")}
            scores[row].update({f"pseudo_{k}": details.get(f"pseudo_{row}_{k}", "-") for k in ("psnr", "ssim")})
    out = Path(args.out)
    card = partial(model_card, out.name, scores=scores, manifests=[Path(m) for m in args.manifests])
    sizes = write_bundle(out, args.base, args.model_4d, args.depth, args.upsampler or None, card=card)
    print(f"wrote {out}: " + ", ".join(f"{k} {v / 2**20:.1f} MB" for k, v in sizes.items())
          + f"; {sum(sizes.values()) / 2**20:.1f} MB in all")
    return 0


def _pack(args: argparse.Namespace) -> int:
    """Pack grid or clip files small for travel, or unpack them."""
    from fourreal.formats.transport import pack, unpack

    if args.action == "pack":
        sizes = pack(args.src, args.out, args.crf, args.depth)
        print(f"packed the {sizes['kind']} of {args.src} ({sizes['bytes'] / 2**20:.1f} MB) into {args.out} "
              f"({sizes['packed_bytes'] / 2**20:.1f} MB)")
    else:
        print(f"unpacked {len(unpack(args.src, args.out))} files into {args.out}")
    return 0


def _view(args: argparse.Namespace) -> int:
    """Serve the interactive viewer of a reconstruction."""
    from fourreal.running.viewer import serve

    serve(args.reconstruction, args.host, args.port)
    return 0


def _export(args: argparse.Namespace) -> int:
    """Write per-frame exports of a reconstruction (3DGS PLY, point cloud, mesh; a sweep mp4)."""
    from fourreal.reconstruction.export import export_reconstruction

    out = Path(args.out) if args.out else Path("exports") / Path(args.reconstruction).name
    summary = export_reconstruction(args.reconstruction, out, args.times, args.views, args.backend)
    print(f"wrote {out}: times {summary['times']} (3DGS PLY, point cloud, mesh from views {summary['views']}), "
          f"sweep.mp4; coordinates: {summary['frame']}")
    return 0


def _deep_merge(base, override, where: str, root=None, path: tuple[str, ...] = ()) -> None:
    """Merge ``override`` into ``base`` in place; every key must already exist in ``base``, or
    (a block that takes the keys it leaves out from a section of shared defaults, such as an
    optimizer block over ``optim_defaults``) in that section of ``root``, the whole file."""
    root = base if root is None else root
    cls = block_class(list(path))
    known = block_data(cls, dict(base), root) if cls is not None else base
    for key, value in override.items():
        if key not in known:
            raise ConfigError(f"{where}.{key}: not a key of params.yaml")
        if isinstance(value, dict):
            if not isinstance(known[key], dict):
                raise ConfigError(f"{where}.{key}: params.yaml has a value here, the profile a section")
            if key not in base:
                base[key] = {}
            _deep_merge(base[key], value, f"{where}.{key}", root, (*path, key))
        else:
            base[key] = value


def _profile(args: argparse.Namespace) -> int:
    """Merge ``profiles/<name>.yaml`` into the params file, keeping its comments."""
    from ruamel.yaml import YAML

    yaml = YAML()
    profile_path = Path(args.profiles) / f"{args.name}.yaml"
    if not profile_path.is_file():
        names = sorted(p.stem for p in Path(args.profiles).glob("*.yaml"))
        raise UserError(f"profile {profile_path} not found; available: {names}")
    params_path = Path(args.params)
    params = yaml.load(params_path.read_text())
    _deep_merge(params, yaml.load(profile_path.read_text()) or {}, profile_path.stem)
    with atomic_path(params_path) as tmp:
        with open(tmp, "w") as f:
            yaml.dump(params, f)
    print(f"applied {profile_path} to {params_path}; now run `dvc repro` (or `git diff {params_path}` to review)")
    return 0


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Help that keeps the description's layout and shows each option's default, except an
    empty one (``None``, ``False``, ``""``), whose meaning the option's help says."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.default == "":
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The ``fourreal`` command line; long because it declares every subcommand's options in one place."""
    debug = f"show the traceback of an error in what was given (or set {DEBUG_ENV}=1)"
    parser = argparse.ArgumentParser(prog="fourreal", description=__doc__, formatter_class=_HelpFormatter)
    parser.add_argument("--debug", action="store_true", help=debug)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str, func) -> argparse.ArgumentParser:
        """A subcommand described by ``text`` (in the list and its own help) that runs ``func``;
        it takes ``--debug`` too, which leaves the one given before the command as it is."""
        cmd = sub.add_parser(name, help=text, description=text, formatter_class=_HelpFormatter)
        cmd.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug)
        cmd.set_defaults(func=func)
        return cmd

    def sampling(cmd: argparse.ArgumentParser) -> None:
        """The frame size and sampler options ``sample`` and ``grid`` share."""
        cmd.add_argument("--height", type=int, default=36, help="frame height in pixels")
        cmd.add_argument("--width", type=int, default=64, help="frame width in pixels")
        cmd.add_argument("--steps", type=int, default=30, help="ODE solver steps")
        cmd.add_argument("--sampler", choices=["euler", "heun"], default="euler", help="ODE solver")
        cmd.add_argument("--sigma-max", type=_flow_time, default=1.0,
                         help="highest flow time the model is asked at, in (0, 1] (1: every one)")
        cmd.add_argument("--seed", type=int, default=0, help="random seed of the initial noise")

    run = command("run", "reproduce the pipeline or one stage with DVC", _run)
    run.add_argument("stage", nargs="?", help="stage name from dvc.yaml (default: every stage that changed)")
    run.add_argument("--single", action="store_true", help="only this stage, not its upstream stages")
    run.add_argument("--force", action="store_true", help="rerun even if nothing changed")

    show = command("show", "summarize a grid file and write its previews", _show)
    show.add_argument("grid", help=f"a grid file ({SUFFIX}) written by the pipeline")
    show.add_argument("--out", default="previews", help="where previews go")
    show.add_argument("--cell-height", type=int, default=128, help="upscale frames to this height")
    show.add_argument("--no-mp4", action="store_true", help="skip the per-row/column mp4s")

    smp = command("sample", "a dynamic and a freeze-time video from one frame (base model)", _sample)
    smp.add_argument("input", help="an image, or a video whose first frame is used")
    smp.add_argument("--model", default=layout.BASE_MODEL, help="trained base model directory")
    smp.add_argument("--out", default="samples", help="output directory")
    smp.add_argument("--frames", type=int, default=8, help="frames per video")
    sampling(smp)
    smp.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale on the mode")

    grid = command("grid", "a 4D grid from a fixed-view and a freeze-time video (4D model)", _grid)
    grid.add_argument("--row", required=True, help="fixed-view video: the grid's first row")
    grid.add_argument("--column", required=True, help="freeze-time video from the same first frame: the first column")
    grid.add_argument("--model", default=layout.model_4d("soft"), help="trained 4D model directory")
    grid.add_argument("--models", default="", help="a model bundle (models/<name>): its 4D model instead of --model")
    grid.add_argument("--out", default="grids", help="output directory")
    grid.add_argument("--views", type=int, default=8, help="grid rows (frames read from --column)")
    grid.add_argument("--times", type=int, default=8, help="grid columns (frames read from --row)")
    grid.add_argument("--fps", type=float, default=8.0, help="frame rate the videos are resampled to")
    grid.add_argument("--window", type=int, default=0, help="cells per side of the model's window (sliding windows "
                      "beyond); 0: the window the model was trained on")
    grid.add_argument("--force-window", action="store_true", help="sample with a --window the model was not "
                      "trained on (a warning instead of an error)")
    grid.add_argument("--precision", choices=GRID_PRECISIONS, default="fp32", help="the 4D model's arithmetic on "
                      "the GPU: bf16 (autocast), fp8 (linear layers in FP8, compute capability 8.9+), auto (fp8 where "
                      "it runs, else bf16 on CUDA, fp32 on the CPU); fp8/bf16 where the device lacks them fall back "
                      "with a warning")
    sampling(grid)
    grid.add_argument("--upsampler", default="", help="upsample every cell with this trained upsampler directory "
                      "(e.g. data/train_upsampler/model)")

    to4d = command("to4d", "one video or image in; a 4D grid and its 3D Gaussians out", _to4d)
    to4d.add_argument("input", help="a video file or a directory of frames (the fixed-view row), or an image "
                      "(the base model animates it)")
    to4d.add_argument("--out", default="", help="output directory (default: data/video_to_4d_runs/<input name>)")
    to4d.add_argument("--params", default="params.yaml", help="models and settings: the video_to_4d and reconstruct "
                      "sections")
    to4d.add_argument("--models", default="", help="a model bundle (models/<name>): its base, 4D and depth models "
                      "instead of those in the params")

    bundle = command("bundle", "gather trained models into models/<name> with a model card", _bundle)
    bundle.add_argument("out", help="the bundle directory, e.g. models/small (bf16 weights, the base model's once)")
    bundle.add_argument("--base", default=layout.BASE_MODEL, help="trained base model directory")
    bundle.add_argument("--model-4d", default=layout.model_4d("soft"), help="trained 4D model directory")
    bundle.add_argument("--depth", default=layout.DEPTH_MODEL, help="trained depth model directory")
    bundle.add_argument("--upsampler", default="", help="also the upsampler, e.g. data/train_upsampler/model")
    bundle.add_argument("--variant", default="soft", help="the 4D model's row in --scores")
    bundle.add_argument("--scores", default=f"{layout.SAMPLE_4D}/details.json", help="sample_4d's details.json (every "
                        "mean score) for the card")
    bundle.add_argument("--manifests", nargs="*", default=["media/videos/manifest.json", "media/assets/manifest.json"],
                        help="gathered data manifests whose licenses the card lists")

    for action, text in (("pack", "pack a directory of grids (or clips) small for travel"),
                         ("unpack", "unpack a packed directory into grid or clip files")):
        travel = command(action, text, _pack)
        travel.set_defaults(action=action)
        travel.add_argument("src", help="grid or clip directory" if action == "pack" else "packed directory "
                            "(unpacking needs OpenCV only)")
        travel.add_argument("out", help="packed directory" if action == "pack" else "grid or clip directory")
        if action == "pack":
            travel.add_argument("--crf", type=int, default=12, help="x264 quality of the H.264 RGB videos (0 lossless "
                                "in YUV)")
            travel.add_argument("--depth", action="store_true", help="keep grids' depth (float16)")

    view = command("view", "3D viewer of a reconstruction in the browser (viser)", _view)
    view.add_argument("reconstruction", help="a directory of the reconstruct stage, data/reconstruct/grids/<source>/<name>")
    view.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 exposes the viewer to the network: "
                      "only on a trusted one)")
    view.add_argument("--port", type=int, default=8080, help="port of the viewer's web page")

    export = command("export", "per-frame exports of a reconstruction: at each time step the deformed Gaussians as "
                     "a 3DGS PLY, a point cloud and a mesh fused from rendered depth; a sweep mp4", _export)
    export.add_argument("reconstruction", help="a directory of the reconstruct stage, data/reconstruct/grids/<source>/<name>")
    export.add_argument("--times", type=int, nargs="*", default=[], metavar="T",
                        help="time indices to export (none given: every time step)")
    export.add_argument("--views", type=int, nargs="*", default=[], metavar="V",
                        help="views whose renders are fused into each mesh (none given: every view)")
    export.add_argument("--out", default="", help="output directory ('': ./exports/<reconstruction name>)")
    export.add_argument("--backend", choices=["auto", "gsplat", "torch"], default="auto",
                        help="rasterizer (auto: gsplat on CUDA, the torch compositor on CPU)")

    profile = command("profile", "apply a parameter profile (profiles/*.yaml) to params.yaml", _profile)
    profile.add_argument("action", choices=["apply"], help="what to do with the profile")
    profile.add_argument("name", help="profile name, e.g. small or paper")
    profile.add_argument("--params", default="params.yaml", help="the params file to change")
    profile.add_argument("--profiles", default="profiles", help="directory of the profiles")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``fourreal`` command; an error in what was given ends it with one line on stderr
    and exit status 2, its traceback only with ``--debug`` (:mod:`fourreal.running.errors`)."""
    args = build_parser().parse_args(argv)
    return report_user_errors(lambda: args.func(args), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
