"""Write the HTML template `dvc plots show` fills (.dvc/plots_offline.html): DVC's page with
the Vega libraries inlined, so the training curves render without a network (DVC's own page
loads them from a CDN and is blank offline).

    python scripts/plots_template.py                      # npm pack the pinned versions
    python scripts/plots_template.py --packs a.tgz b.tgz c.tgz

The versions are the ones DVC's renderer targets (dvc_render's VegaRenderer.SCRIPTS); each
library's license is kept in the page beside its code. `.dvc/config` names the template
(`dvc config plots.html_template plots_offline.html`).
"""

from __future__ import annotations

import argparse
import subprocess
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# npm package -> the file of its build that defines the browser global
LIBRARIES = {"vega@5.20.2": "build/vega.min.js", "vega-lite@5.2.0": "build/vega-lite.min.js",
             "vega-embed@6.18.2": "build/vega-embed.min.js"}
PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot</title>
{libraries}
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def npm_pack(spec: str, directory: Path) -> Path:
    """Download the npm package ``spec`` (``name@version``) as a tarball into ``directory``."""
    out = subprocess.run(["npm", "pack", spec, "--silent"], cwd=directory, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"npm pack {spec} failed ({out.stderr.strip()[:200]}); pass the tarballs with --packs")
    return directory / out.stdout.strip().splitlines()[-1]


def script_block(pack: Path, build_file: str) -> str:
    """One ``<script>`` element holding the build file of the npm tarball ``pack``, its license
    in a comment before it."""
    with tarfile.open(pack) as tar:
        code = tar.extractfile(f"package/{build_file}").read().decode("utf8")
        license_text = tar.extractfile("package/LICENSE").read().decode("utf8")
    code = code.replace("</script", "<\\/script")  # the code must not close its own element
    return f"    <!-- {pack.name}: {build_file}\n{license_text.replace('--', '- -')}    -->\n    <script>{code}</script>"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packs", nargs=3, type=Path, metavar="TGZ",
                        help="npm tarballs of " + ", ".join(LIBRARIES) + " (in that order) instead of npm pack")
    parser.add_argument("--out", type=Path, default=ROOT / ".dvc" / "plots_offline.html", help="the template written")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        packs = args.packs or [npm_pack(spec, Path(tmp)) for spec in LIBRARIES]
        blocks = [script_block(pack, build) for pack, build in zip(packs, LIBRARIES.values())]
    page = PAGE.format(libraries="\n".join(blocks), refresh_tag="{refresh_tag}", plot_divs="{plot_divs}")
    tmp_out = args.out.with_suffix(".tmp")
    tmp_out.write_text(page, encoding="utf8")
    tmp_out.replace(args.out)
    print(f"wrote {args.out} ({len(page) / 2**20:.2f} MB)")


if __name__ == "__main__":
    main()
