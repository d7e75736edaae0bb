#!/usr/bin/env bash
# Installs the dependencies, builds, and runs the whole test suite (the `slow` label included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j 2
