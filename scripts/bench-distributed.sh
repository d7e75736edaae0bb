#!/bin/bash
# Measures how a `privaudit gradients` run scales from one process to P on this machine (each at
# --threads 1), and checks that every run writes the same figures (docs/distributed.md).
# Usage: scripts/bench-distributed.sh [P...]   (default: 2)
#   PRIVAUDIT: the binary (default ./build/privaudit). Uses Debian's Fashion-MNIST.
set -euo pipefail
bin=${PRIVAUDIT:-./build/privaudit}
counts=("${@:-2}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" train --arch cnn --train-size 1000 --test-size 200 --epochs 1 --quiet --out "$work/model"
# Eight batch-1 and two batch-4 shared gradients, iDLG and Inverting Gradients, the audit with probes.
args=(gradients --model "$work/model/model.pt" --test-size 100 --batch 1,4 --targets 8
      --attack idlg,ig --iterations 200 --audit-probes 2 --audit-probe-iterations 100
      --threads 1 --quiet)
seconds() {  # out processes
  local start end
  start=$(date +%s%N)
  if [ "$2" -le 1 ]; then "$bin" "${args[@]}" --out "$1"; else "$bin" "${args[@]}" --out "$1" --processes "$2"; fi
  end=$(date +%s%N)
  awk -v ns=$((end - start)) 'BEGIN { printf "%.2f", ns / 1e9 }' 
}
figures() {  # results.json without wall times, memory and the process count
  /usr/bin/python3 - "$1" <<'PY'
import json, sys
def strip(x):
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items()
                if k not in ("seconds", "probe_seconds", "processes", "peak_memory_mib",
                             "peak_memory_mib_per_rank")}
    if isinstance(x, list):
        return [strip(v) for v in x]
    return x
print(json.dumps(strip(json.load(open(sys.argv[1]))), sort_keys=True))
PY
}
one=$(seconds "$work/p1" 1)
printf 'processes 1: %.2f s\n' "$one"
for p in "${counts[@]}"; do
  t=$(seconds "$work/p$p" "$p")
  same=no
  [ "$(figures "$work/p1/results.json")" = "$(figures "$work/p$p/results.json")" ] && same=yes
  printf 'processes %d: %.2f s, speed-up %.2fx, same figures: %s\n' "$p" "$t" \
    "$(awk -v a="$one" -v b="$t" 'BEGIN { print a / b }')" "$same"
done
