#!/usr/bin/env bash
# Measures how far the slow tests' statistical figures move from seed to seed: runs every slow test
# with PRIVAUDIT_TEST_SEED_OFFSET = 0, 1, 2 (or the offsets given) and prints the "figure:" lines
# each test writes, one table per test. Used to set each assertion several spreads away from what
# was observed (the numbers are quoted in the tests' comments and in docs/).
#
#   bash scripts/test-spread.sh [OFFSET ...]        (needs ./build/privaudit_tests)
set -euo pipefail
cd "$(dirname "$0")/.."
offsets=("$@")
[ "${#offsets[@]}" -eq 0 ] && offsets=(0 1 2)
log=$(mktemp /tmp/privaudit-spread-XXXXXX)
for offset in "${offsets[@]}"; do
  echo "== seed offset $offset" | tee -a "$log"
  PRIVAUDIT_TEST_SEED_OFFSET=$offset ./build/privaudit_tests --gtest_filter='*Slow.*-SmokeAuditSlow.*:*LoadsDebianFiles:*LoadsRealPackage' \
    2>&1 | grep -E '^(figure:|\[  (FAILED|PASSED|  OK) )' | sed "s/^/offset $offset: /" | tee -a "$log"
done
echo
echo "== per test"
grep 'figure:' "$log" | sort -s -k4,4
rm -f "$log"
