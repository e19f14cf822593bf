"""Stage `assets`: gather animated 3D assets (procedural, local directories, Objaverse cache).

Outputs under ``data/assets/``: ``glb/`` (every usable asset as one file),
``manifest.json`` (name, source, animations, train/test split), ``metrics.json`` (headline:
assets, held-out assets, skipped files) and ``details.json`` (also per source, split, static).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict

from fourreal.data_making.assets import AssetsConfig, prepare_assets
from fourreal.formats.files import atomic_dir, write_json
from fourreal.running.config import load_section
from fourreal.running.errors import UserError
from fourreal.running.stage import run_stage, stage_args, write_metrics

log = logging.getLogger("stages.assets")


def headline(details: dict) -> dict:
    """The stage's metrics from its details: usable assets, held-out assets, skipped files."""
    return {"assets": details["assets"], "held_out": details["test"], "skipped": details["skipped"]}


def main() -> None:
    args = stage_args("assets", __doc__)
    cfg = load_section(AssetsConfig, "assets", args.params)
    with atomic_dir(f"{args.out}/glb") as tmp:
        entries, skipped = prepare_assets(cfg, tmp)
        if not entries:
            raise UserError(f"assets: no usable asset (skipped: {skipped or 'none'}); check assets.sources in params.yaml")
    write_json(f"{args.out}/manifest.json", {"assets": [asdict(e) for e in entries], "skipped": skipped})
    sources = Counter(e.source for e in entries)
    splits = Counter(e.split for e in entries)
    details = {
        "assets": len(entries),
        **{f"source_{k}": v for k, v in sorted(sources.items())},
        "train": splits.get("train", 0),
        "test": splits.get("test", 0),
        "static": sum(not e.animated for e in entries),
        "skipped": len(skipped),
    }
    write_metrics(args.out, headline(details), details)


if __name__ == "__main__":
    run_stage(main)
