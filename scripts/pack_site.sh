#!/usr/bin/env bash
# Pack wheels into one compressed site folder for a GPU machine whose image lacks them and
# cannot download: what `scripts/install_wheels.sh` unpacks from `.whl/`.
#
#   bash scripts/pack_site.sh PYTHON OUT.site.tar.xz WHEEL...
#
# PYTHON: an interpreter of the image's Python version (its packages are not needed), e.g.
# ~/.pyenv/versions/3.12.1/bin/python for cp312 wheels. The wheels are installed without their
# dependencies (name each one), parts no pipeline stage uses are dropped (open3d's GUI
# resources and examples, Jupyter's shared files), and the system libraries their native
# modules load from outside the Python tree (open3d's libGL, libX11 and their needs, absent
# from headless images) are copied into `_syslibs/`, which goes on LD_LIBRARY_PATH. The C
# runtime, libstdc++ and libgomp are left to the image (torch brings them).
#
# Check the size against what one job may carry (64 MiB with the tree); split a larger file
# into parts as scripts/install_wheels.sh describes.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: bash scripts/pack_site.sh PYTHON OUT.site.tar.xz WHEEL..." >&2; exit 2; }
PY=$1 OUT=$2; shift 2
case "$OUT" in *.site.tar.xz) ;; *) echo "$OUT: the output must end in .site.tar.xz" >&2; exit 2 ;; esac
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
SITE=$TMP/site
"$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$@"
rm -rf "$SITE"/open3d/resources "$SITE"/open3d/examples "$SITE"/share
mkdir -p "$SITE/_syslibs"
find "$SITE" -name '*.so*' -type f | while read -r lib; do
  { ldd "$lib" 2>/dev/null || true; } | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
  case "$name" in
    libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|libstdc++.so.*|libgcc_s.so.*|libgomp.so.*|ld-linux*) ;;
    *) case "$path" in "$SITE"/*) ;; *) cp -L "$path" "$SITE/_syslibs/$name" ;; esac ;;
  esac
done
tar -C "$SITE" -cf - . | xz -T0 -6 > "$OUT.tmp" && mv "$OUT.tmp" "$OUT"
echo "$OUT: $(stat -c %s "$OUT") bytes; system libraries: $(ls "$SITE/_syslibs" | tr '\n' ' ')"
