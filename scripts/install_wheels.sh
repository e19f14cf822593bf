#!/usr/bin/env bash
# Install the Python packages a job on a GPU machine carries in `.whl/` into WORK/site (default
# /tmp/site), for packages the machine's image lacks (gsplat, open3d and its needs). Run from
# the repository root: `bash scripts/install_wheels.sh [WORK]`; then put WORK/site on PYTHONPATH
# and WORK/site/_syslibs on LD_LIBRARY_PATH.
#
# Two kinds of file are installed:
#   NAME.whl           a wheel, installed with pip;
#   NAME.site.tar.xz   a packed site folder (scripts/pack_site.sh: wheels installed for the
#                      image's Python, trimmed, with the system libraries their native modules
#                      load in _syslibs), unpacked into WORK/site.
# Either may sit in subfolders of `.whl/`, so that each job carries only some of them (a job
# names at most 8 paths). A file larger than one job may carry travels in parts, one folder
# per job, over several jobs of a chain (each started within the 30 s the machine stays warm,
# so WORK outlives it):
#   split -b 60M -d NAME NAME.           # NAME.00, NAME.01, ...: put each in its own .whl/pN/
#   echo N > .whl/p0/NAME.parts          # how many parts there are
# Each job keeps the parts it carries in WORK/wheels; a file is put together and installed in
# the job that brings its last part. Each file is installed once per machine.
set -u
WORK=${1:-/tmp}
store=$WORK/wheels site=$WORK/site
mkdir -p $store $site
if [ -d .whl ]; then
  find .whl -type f \( -name '*.whl' -o -name '*.site.tar.xz' -o -name '*.[0-9][0-9]' -o -name '*.parts' \) \
    | while read -r f; do
    part=$(basename "$f")
    case "$part" in *.whl|*.site.tar.xz) [ -f $store/$part ] || cp "$f" $store/ ;;
                    *) [ -f $store/${part%.*} ] || cp "$f" $store/ ;; esac
  done
fi
for count in $store/*.parts; do
  [ -e "$count" ] || continue
  whole=${count%.parts}
  [ -f $whole ] && continue
  have=$(ls $whole.[0-9][0-9] 2>/dev/null | wc -l)
  if [ "$have" -eq "$(cat $count)" ]; then
    cat $whole.[0-9][0-9] > $whole.tmp && mv $whole.tmp $whole && rm -f $whole.[0-9][0-9]
  else
    echo "$(basename $whole): $have of $(cat $count) parts here; the rest come with later jobs"
  fi
done
for packed in $store/*.site.tar.xz; do
  [ -e "$packed" ] && [ ! -e $packed.installed ] || continue
  xz -dc $packed | tar -C $site -xf - || { echo "unpacking $packed into $site failed" >&2; exit 1; }
  touch $packed.installed; echo "unpacked $(basename $packed) into $site"
done
new=()
for wheel in $store/*.whl; do [ -e "$wheel" ] && [ ! -e $wheel.installed ] && new+=("$wheel"); done
[ ${#new[@]} -eq 0 ] && exit 0
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $site "${new[@]}" \
  || { echo "installing ${new[*]} into $site failed" >&2; exit 1; }
for wheel in "${new[@]}"; do touch $wheel.installed; echo "installed $(basename $wheel) into $site"; done
