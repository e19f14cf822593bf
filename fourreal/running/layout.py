"""Where the pipeline's data lives: every stage's output directory under ``data/`` and the
paths in them that other stages read, written once.

The stages take their output directory and their fixed inputs from here, and the config
dataclasses the defaults of their path parameters (``params.yaml`` holds the same values,
``tests/test_defaults_match_params.py``). ``dvc.yaml`` names the same paths, checked by
``tests/test_layout.py``: every output of a stage lies in its directory of
:data:`STAGE_DIRS`, every path a stage's entry point takes from here is among its
dependencies or outputs, and every ``data/`` path of its parameters among its dependencies.
"""

from __future__ import annotations

DATA = "data"
PARAMS_OK = f"{DATA}/params.ok"  # check_params' marker, a dependency of every other stage

VIDEOS = f"{DATA}/videos"
CLIPS = f"{VIDEOS}/clips"  # the training clips of the real videos
TEST_CLIPS = f"{VIDEOS}/test_clips"  # the clips of the held-out videos

PSEUDO4D = f"{DATA}/pseudo4d"
PSEUDO_GRIDS = f"{PSEUDO4D}/grids"
PSEUDO_TEST_GRIDS = f"{PSEUDO4D}/test_grids"

ASSETS = f"{DATA}/assets"
ASSET_FILES = f"{ASSETS}/glb"
ASSET_MANIFEST = f"{ASSETS}/manifest.json"

RENDER = f"{DATA}/render"
RENDER_GRIDS = f"{RENDER}/grids"
RENDER_TRAIN = f"{RENDER_GRIDS}/train"
RENDER_TEST = f"{RENDER_GRIDS}/test"
RENDER_CLIPS = f"{RENDER}/clips"

TRAIN_BASE = f"{DATA}/train_base"
BASE_MODEL = f"{TRAIN_BASE}/model"
TRAIN_UPSAMPLER = f"{DATA}/train_upsampler"
TRAIN_4D = f"{DATA}/train_4d"  # phase 1 (pseudo-4D grids), a directory per variant
FINETUNE_4D = f"{DATA}/finetune_4d"  # phase 2 (rendered grids), a directory per variant
SAMPLE_4D = f"{DATA}/sample_4d"
TRAIN_DEPTH = f"{DATA}/train_depth"
DEPTH_MODEL = f"{TRAIN_DEPTH}/model"
RECONSTRUCT = f"{DATA}/reconstruct"
BASELINE_4REAL = f"{DATA}/baseline_4real"
VIDEO_TO_4D = f"{DATA}/video_to_4d"
VIDEO_TO_4D_RUNS = f"{DATA}/video_to_4d_runs"  # video_to_4d on inputs other than params.yaml's
EVAL = f"{DATA}/eval"

# The output directory of every stage of dvc.yaml (train_4d and finetune_4d: one
# subdirectory per variant, :func:`variant_dir`).
STAGE_DIRS = {
    "check_params": DATA,
    "videos": VIDEOS,
    "pseudo4d": PSEUDO4D,
    "assets": ASSETS,
    "render": RENDER,
    "train_base": TRAIN_BASE,
    "train_upsampler": TRAIN_UPSAMPLER,
    "train_4d": TRAIN_4D,
    "finetune_4d": FINETUNE_4D,
    "sample_4d": SAMPLE_4D,
    "train_depth": TRAIN_DEPTH,
    "reconstruct": RECONSTRUCT,
    "baseline_4real": BASELINE_4REAL,
    "video_to_4d": VIDEO_TO_4D,
    "evaluate": EVAL,
}


def variant_dir(phase: str, variant: str) -> str:
    """The output directory of a 4D variant's training phase: ``pseudo`` (``train_4d``) or
    ``render`` (``finetune_4d``)."""
    return f"{TRAIN_4D if phase == 'pseudo' else FINETUNE_4D}/{variant}"


def model_4d(variant: str, phase: str = "render") -> str:
    """The exported model of a 4D variant after ``phase`` (by default the finished model)."""
    return f"{variant_dir(phase, variant)}/model"
