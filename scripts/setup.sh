#!/usr/bin/env bash
# One idempotent set-up step: .venv with pinned dependencies, the Debian library open3d needs,
# the interface packages built into the venv, and embodied_aif installed (editable).
# Every stage is skipped when its inputs are unchanged (stamps in .venv/.stamps/), so a second
# run with nothing changed takes seconds.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${EMBODIED_AIF_VENV:-$REPO/.venv}"
PYTHON_BOOT="${PYTHON:-python3.11}"
STAMPS="$VENV/.stamps"
log() { printf '[setup] %s\n' "$*" >&2; }

command -v "$PYTHON_BOOT" >/dev/null 2>&1 || PYTHON_BOOT=python3
"$PYTHON_BOOT" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' 2>/dev/null || {
  log "error: Python 3.11 is required (the ROS 2 kilted wheels are cp311); found $($PYTHON_BOOT --version 2>&1)"
  exit 1
}

# Hash of the given files (missing files hash as empty), to decide whether a stage must rerun.
digest() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }
stage_done() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
mark_done() { mkdir -p "$STAMPS"; echo "$2" >"$STAMPS/$1"; }

# 1. The Debian library open3d needs (libusb-1.0).
if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then
  log "installing Debian package libusb-1.0-0 (needed by open3d)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libusb-1.0-0 >&2
fi

# 2. The virtual environment and pinned Python dependencies.
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PYTHON_BOOT" -m venv "$VENV"
fi
PY="$VENV/bin/python"
req_hash="$(digest "$REPO/requirements.txt")"
if ! stage_done requirements "$req_hash"; then
  log "installing pinned dependencies (requirements.txt); the first run takes a few minutes"
  "$PY" -m pip install -q --disable-pip-version-check -r "$REPO/requirements.txt" \
    >"$VENV/pip-install.log" 2>&1 \
    || { log "error: pip install failed; the log is $VENV/pip-install.log"; tail -30 "$VENV/pip-install.log" >&2; exit 1; }
  mark_done requirements "$req_hash"
fi

# 3. Interfaces: embodied_aif_msgs (and tf2_msgs where the environment has none) built with
#    plain cmake into the venv prefix.
build_interface() {  # name source_dir
  local name="$1" src="$2"
  local h
  h="$(cd "$src" && find . -type f -not -path './build/*' | sort | xargs cat | sha256sum | cut -c1-16)"
  if stage_done "iface-$name" "$h" && [ -d "$VENV/share/$name" ]; then return; fi
  log "building interface package $name"
  # The message wheels' CMake exports hard-code the wheel builder's Python and numpy include
  # folders; point them at this interpreter's.
  "$PY" "$REPO/scripts/fix_ros_cmake_exports.py" "$VENV"
  local build="$VENV/.build/$name"
  rm -rf "$build"; mkdir -p "$VENV/.build"
  AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH" \
    cmake -S "$src" -B "$build" -DCMAKE_INSTALL_PREFIX="$VENV" -DBUILD_TESTING=OFF \
    -DPython3_EXECUTABLE="$PY" -DCMAKE_BUILD_TYPE=Release >"$build.log" 2>&1 \
    && cmake --build "$build" -j"$(nproc)" >>"$build.log" 2>&1 \
    && cmake --install "$build" >>"$build.log" 2>&1 \
    || { log "error: building $name failed; the log is $build.log"; tail -30 "$build.log" >&2; exit 1; }
  mark_done "iface-$name" "$h"
}

has_system_tf2_msgs() {
  local p
  IFS=':' read -ra prefixes <<<"${AMENT_PREFIX_PATH:-}"
  for p in "${prefixes[@]}"; do
    [ -n "$p" ] && [ "$p" != "$VENV" ] && [ -d "$p/share/tf2_msgs" ] && return 0
  done
  return 1
}
if has_system_tf2_msgs; then
  log "using the environment's tf2_msgs"
else
  build_interface tf2_msgs "$REPO/compat/tf2_msgs"
fi
build_interface embodied_aif_msgs "$REPO/interfaces"

# 4. The package itself, editable (pip honours package_dir, so edits are live).
pkg_hash="$(digest "$REPO/setup.py" "$REPO/setup.cfg" "$REPO/package.xml"; ls "$REPO"/nodes/*.py 2>/dev/null)"
pkg_hash="$(echo "$pkg_hash" | sha256sum | cut -c1-16)"
if ! stage_done package "$pkg_hash" || ! "$PY" -c 'import embodied_aif.cli' 2>/dev/null; then
  log "installing embodied_aif (editable)"
  "$PY" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e "$REPO" >&2
  mark_done package "$pkg_hash"
fi
log "ready: $VENV"
