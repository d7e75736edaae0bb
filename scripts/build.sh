#!/usr/bin/env bash
# Configures and builds privaudit (Release) into ./build with Ninja. Extra arguments go to cmake's
# configure step, e.g. -DTorch_DIR=... for a CUDA LibTorch. Ninja rebuilds what a changed command
# line or file needs, no more: with Makefiles, a new source file rewrote flags.make, which rebuilt
# the 600 MB precompiled header and so every object.
set -euo pipefail
cd "$(dirname "$0")/.."
generator=()
if command -v ninja >/dev/null 2>&1; then
  generator=(-G Ninja)
  # A folder configured with another generator cannot be reused.
  if [ -f build/CMakeCache.txt ] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' build/CMakeCache.txt; then
    rm -rf build
  fi
fi
cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j "$(nproc)"
