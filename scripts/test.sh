#!/usr/bin/env bash
# Installs the dependencies, builds, and runs the whole test suite (the `slow` label included).
# Under CI=true a test whose dependency is missing fails instead of skipping (tests/test_util.h).
# Ends with the counts of tests passed, failed and skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
log=build/ctest.log
set +e
ctest --test-dir build --output-on-failure -j 2 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -cE 'Test +#[0-9]+: .* Passed' "$log" || true)
failed=$(grep -cE 'Test +#[0-9]+: .*\*\*\*(Failed|Exception|Timeout)|Test +#[0-9]+: .*Not Run' "$log" || true)
skipped=$(grep -cE 'Test +#[0-9]+: .*\*\*\*Skipped' "$log" || true)
echo "tests run: $((passed + failed + skipped)); skipped: $skipped; failed: $failed"
echo "$passed passed, $failed failed, $skipped skipped"
exit "$status"
