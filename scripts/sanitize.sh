#!/usr/bin/env bash
# Builds privaudit with AddressSanitizer and UndefinedBehaviorSanitizer into ./build-sanitize and
# runs the fast tests (ctest -LE slow) under them; ALL=1 runs the whole suite, the slow label
# included, CTEST_JOBS (default 2) suites at a time with one thread each, every CTest timeout 10x
# (ASan runs this suite ~5-10x slower). Where clang builds it and scripts/fuzz.sh has left
# corpora in build-fuzz/corpus, each corpus is also replayed once through a sanitized build of
# its fuzz target (no fuzzing: every saved input runs once, ASan and UBSan watching).
# Usage: scripts/sanitize.sh [CTEST_REGEX]   (only the tests matching the regex, e.g. 'Checkpoint')
# EXCLUDE=REGEX leaves out the tests matching it (e.g. suites a previous run passed).
# JOBS=N sets the build's parallelism (default 2); CC/CXX the compiler (default clang, else gcc).
# LibTorch itself is not instrumented (Debian's build): the sanitizers check our code and what it
# hands across LibTorch's boundary. Leak checking is off: LibTorch keeps allocations for life.
set -euo pipefail
cd "$(dirname "$0")/.."
regex="${1:-}"
if [[ -z "${CC:-}" ]]; then
  if command -v clang >/dev/null && command -v clang++ >/dev/null; then
    export CC=clang CXX=clang++
  else
    export CC=gcc CXX=g++
  fi
fi
fuzzers=OFF
if [[ "$CC" == *clang* && -d build-fuzz/corpus ]]; then fuzzers=ON; fi

flags="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
start=$(date +%s)
cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPRIVAUDIT_BUILD_BENCH=OFF \
  -DPRIVAUDIT_BUILD_FUZZERS="$fuzzers" -DPRIVAUDIT_TCMALLOC=OFF -DCMAKE_C_FLAGS="$flags" \
  -DCMAKE_CXX_FLAGS="$flags" -DPRIVAUDIT_PYTHON=OFF \
  >/dev/null
cmake --build build-sanitize -j "${JOBS:-2}"
echo "== built in $(( $(date +%s) - start )) s with $CC"

export ASAN_OPTIONS=detect_leaks=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
if [[ "${ALL:-0}" == 1 ]]; then
  # The Python module is not built here: Debian's python3 would have to preload libasan.
  export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
  export PRIVAUDIT_TEST_TIMEOUT_SCALE=10
  ctest_args=(--test-dir build-sanitize -j "${CTEST_JOBS:-2}" --output-on-failure)
else
  ctest_args=(--test-dir build-sanitize -LE slow --output-on-failure)
fi
if [[ -n "$regex" ]]; then ctest_args+=(-R "$regex"); fi
if [[ -n "${EXCLUDE:-}" ]]; then ctest_args+=(-E "$EXCLUDE"); fi
if ! ctest "${ctest_args[@]}"; then status=1; fi

if [[ "$fuzzers" == ON ]]; then
  for corpus in build-fuzz/corpus/*/; do
    target=$(basename "$corpus")
    [[ -x "build-sanitize/${target}" ]] || continue
    echo "== replaying ${corpus} through build-sanitize/${target}"
    if ! "build-sanitize/${target}" -runs=0 "$corpus" >"build-sanitize/${target}-replay.log" 2>&1
    then
      echo "   FAILED: see build-sanitize/${target}-replay.log"
      status=1
    fi
  done
fi
echo "== sanitize.sh: $( ((status == 0)) && echo passed || echo FAILED) in $(( $(date +%s) - start )) s"
exit "$status"
