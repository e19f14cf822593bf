#!/usr/bin/env bash
# Install everything the pipeline needs on a fresh Debian/Ubuntu machine:
# system packages (the default real videos), then a virtual environment with the project.
# Usage: bash scripts/setup.sh [VENV_DIR]   (default .venv)
set -euo pipefail
venv="${1:-.venv}"

# Debian's opencv-doc ships the real videos used by the default profile.
if [ ! -f /usr/share/doc/opencv-doc/examples/data/vtest.avi ]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq opencv-doc >/dev/null
  else
    echo "warning: no apt-get; install Debian's opencv-doc or set videos.input_dir in params.yaml to your videos" >&2
  fi
fi

# open3d (point clouds and meshes of the reconstruction) loads libusb-1.0 at import.
if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq libusb-1.0-0 >/dev/null
  else
    echo "warning: no apt-get; install libusb-1.0 or open3d will not import" >&2
  fi
fi

# glTF-Transform decompresses Draco meshes (common in Objaverse), which Blender's wheel cannot read.
if ! command -v gltf-transform >/dev/null 2>&1; then
  if command -v npm >/dev/null 2>&1; then
    npm install -g --silent @gltf-transform/cli@4.5.1 >/dev/null 2>&1 \
      || echo "warning: could not install @gltf-transform/cli; Draco-compressed assets will be skipped" >&2
  else
    echo "warning: no npm; Draco-compressed assets will be skipped (install @gltf-transform/cli to decode them)" >&2
  fi
fi

python="${PYTHON:-}"
if [ -z "$python" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
  done
fi
"$python" -c 'import sys; assert sys.version_info[:2] in ((3, 11), (3, 12)), "Python 3.11 or 3.12 is required"'
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
"$venv/bin/python" -m pip install -q -e ".[dev]" 2>&1 | grep -v '^WARNING: Location' || true
"$venv/bin/python" -c 'import fourreal, torch, prefect, dvc, av, cv2, open3d' 
echo "installed into $venv"
