#!/usr/bin/env bash
# Configures and builds privaudit (Release) into ./build. Extra arguments go to cmake's configure
# step, e.g. -DTorch_DIR=... for a CUDA LibTorch.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j "$(nproc)"
