"""Stage `check_params`: validate the whole ``params.yaml`` before any other stage runs.

Every stage of ``dvc.yaml`` depends on this stage's marker ``data/params.ok``, so ``dvc repro``
(of everything or of any one stage) checks every key, type and range first and stops with one
line naming the key, its value and what is allowed, before DVC removes a single output. The
marker's content never changes, so a passing check reruns nothing downstream by itself.
"""

from __future__ import annotations

from pathlib import Path

from fourreal.formats.files import atomic_path
from fourreal.running.params import validate_params
from fourreal.running.stage import run_stage, stage_args


def main() -> None:
    args = stage_args("check_params", __doc__)
    sections = validate_params(args.params)
    with atomic_path(Path(args.out) / "params.ok") as tmp:
        tmp.write_text("params.yaml passed validation (stages/check_params.py)\n")
    print(f"{args.params}: {len(sections)} sections valid")


if __name__ == "__main__":
    run_stage(main)
