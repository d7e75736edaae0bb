#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/*_fuzz.cpp) with clang into ./build-fuzz and runs each for a
# bounded time, printing how many inputs it executed. Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]
# RUNS=N stops each target after N inputs instead (the time limit still applies: SECONDS then
# defaults to a day); TARGETS="a b" fuzzes only those targets.
# JOBS=N sets the build's parallelism (default 2). The model loader's seeds need torch in Python:
# PYTHON (default /usr/bin/python3, Debian's, which has it).
# The whole core library is compiled with -fsanitize=fuzzer-no-link,address so that libFuzzer
# sees coverage inside the parsers (not only in the thin target files) and ASan checks them.
# A crash leaves its input as build-fuzz/crash-*; the script then exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -n "${RUNS:-}" ]]; then seconds="${1:-86400}"; else seconds="${1:-60}"; fi
all=(idx_fuzz cifar10_fuzz svhn_mat_fuzz mat_layout_fuzz pickle_fuzz model_fuzz)
read -r -a targets <<< "${TARGETS:-${all[*]}}"
runs=()
[[ -n "${RUNS:-}" ]] && runs=(-runs="$RUNS")
flags="-fsanitize=fuzzer-no-link,address"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Release \
  -DPRIVAUDIT_BUILD_FUZZERS=ON -DPRIVAUDIT_BUILD_TESTS=OFF -DPRIVAUDIT_BUILD_BENCH=OFF \
  -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" >/dev/null
cmake --build build-fuzz -j "${JOBS:-2}" --target "${targets[@]}" model_fuzz
PRIVAUDIT_WRITE_SEED_CHECKPOINT=build-fuzz/seed-checkpoint.pt ASAN_OPTIONS=detect_leaks=0 \
  build-fuzz/model_fuzz
"${PYTHON:-/usr/bin/python3}" fuzz/make_seeds.py build-fuzz/corpus build-fuzz/seed-checkpoint.pt

status=0
for target in "${targets[@]}"; do
  log="build-fuzz/${target}.log"
  # Model archives (zip files of several entries) are larger than the data formats' records.
  max_len=8192
  [[ "$target" == model_fuzz ]] && max_len=32768
  echo "== ${target}: fuzzing for ${seconds} s${RUNS:+ or $RUNS inputs}"
  # LibTorch's own allocations are not leaks of ours; matio writes scratch files in /tmp.
  began=$(date +%s)
  if ! (cd build-fuzz && ASAN_OPTIONS=detect_leaks=0 "./${target}" -max_total_time="$seconds" \
          -max_len="$max_len" "${runs[@]}" -print_final_stats=1 "corpus/${target}") \
          >"$log" 2>&1; then
    echo "   FAILED: see $log (crash input saved in build-fuzz/)"
    status=1
  fi
  executed=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  coverage=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo "?")
  echo "   ${executed} executions in $(( $(date +%s) - began )) s, ${coverage} coverage points," \
       "corpus build-fuzz/corpus/${target}"
done
exit "$status"
