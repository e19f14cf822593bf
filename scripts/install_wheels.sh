#!/usr/bin/env bash
# Install the Python wheels a job on a GPU machine carries in `.whl/` into WORK/site (default
# /tmp/site), for packages the machine's image lacks (gsplat, open3d and its needs). Run from
# the repository root: `bash scripts/install_wheels.sh [WORK]`; then put WORK/site on PYTHONPATH.
#
# Wheels may sit in subfolders of `.whl/`, so that each job carries only some of them (a job
# names at most 8 paths). A wheel larger than one job may carry travels in parts, one folder
# per job, over several jobs of a chain (each started within the 30 s the machine stays warm,
# so WORK outlives it):
#   split -b 40M -d NAME.whl NAME.whl.    # NAME.whl.00, .01, ...: put each in its own .whl/pN/
#   echo N > .whl/p0/NAME.whl.parts       # how many parts there are
# Each job keeps the parts it carries in WORK/wheels; a wheel is put together and installed in
# the job that brings its last part. A wheel is installed once per machine.
set -u
WORK=${1:-/tmp}
store=$WORK/wheels site=$WORK/site
mkdir -p $store
if [ -d .whl ]; then
  find .whl -type f \( -name '*.whl' -o -name '*.whl.[0-9][0-9]' -o -name '*.whl.parts' \) | while read -r f; do
    part=$(basename "$f"); [ "$part" != "${part%.whl}" ] || [ ! -f $store/${part%.*} ] && cp "$f" $store/
  done
fi
for count in $store/*.whl.parts; do
  [ -e "$count" ] || continue
  wheel=${count%.parts}
  [ -f $wheel ] && continue
  have=$(ls $wheel.[0-9][0-9] 2>/dev/null | wc -l)
  if [ "$have" -eq "$(cat $count)" ]; then
    cat $wheel.[0-9][0-9] > $wheel.tmp && mv $wheel.tmp $wheel && rm -f $wheel.[0-9][0-9]
  else
    echo "$(basename $wheel): $have of $(cat $count) parts here; the rest come with later jobs"
  fi
done
new=()
for wheel in $store/*.whl; do [ -e "$wheel" ] && [ ! -e $wheel.installed ] && new+=("$wheel"); done
[ ${#new[@]} -eq 0 ] && exit 0
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $site "${new[@]}" \
  || { echo "installing ${new[*]} into $site failed" >&2; exit 1; }
for wheel in "${new[@]}"; do touch $wheel.installed; echo "installed $(basename $wheel) into $site"; done
