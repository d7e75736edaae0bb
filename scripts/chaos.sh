#!/usr/bin/env bash
# Kill -9 anywhere: runs a command to the end once (the reference), then runs it again into another
# folder, killing it with SIGKILL at N random moments and restarting the same command line each
# time, and checks that the interrupted run ends with the same figures as the reference (times and
# paths aside) and leaves no temporary or lock files behind.
#
#   bash scripts/chaos.sh [audit|train|invert] [N]     (default: audit 20)
#
# Needs ./build/privaudit and Fashion-MNIST. Prints one line per kill and a verdict; exit 0 = same.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-audit}
kills=${2:-20}
bin=$(pwd)/build/privaudit
work=$(mktemp -d /tmp/privaudit-chaos-XXXXXX)
trap 'rm -rf "$work"' EXIT

model_dir="$work/model"
case "$what" in
  audit) args=(audit --profile smoke --archs mlp,cnn --seed 3 --quiet) ;;
  train) args=(train --arch cnn --train-size 2000 --test-size 500 --epochs 4 --seed 3 --quiet) ;;
  invert)
    "$bin" train --arch mlp --train-size 500 --test-size 200 --epochs 2 --quiet --out "$model_dir"
    args=(invert --model "$model_dir/model.pt" --steps 300 --per-class 2 --stationarity-steps 100 --seed 3 --quiet) ;;
  *) echo "chaos.sh: unknown command $what (audit, train, invert)" >&2; exit 2 ;;
esac
resume=()
[ "$what" != audit ] && resume=(--resume)

start=$(date +%s.%N)
"$bin" "${args[@]}" --out "$work/reference"
reference_seconds=$(/usr/bin/python3 -c "print(round($(date +%s.%N) - $start, 1))")
echo "chaos: reference run of privaudit $what took ${reference_seconds} s"

# Kill moments: uniform in (0.2 s, 1.5 x the reference's share per kill), so that kills land in
# every stage while the run still makes progress between them.
share=$(/usr/bin/python3 -c "print($reference_seconds * 1.5 / $kills)")
landed=0
for i in $(seq 1 "$kills"); do
  delay=$(/usr/bin/python3 -c "import random; random.seed($i); print(round(0.2 + random.random() * $share, 2))")
  extra=()
  [ -e "$work/run" ] && extra=("${resume[@]}")
  setsid "$bin" "${args[@]}" "${extra[@]}" --out "$work/run" >"$work/log" 2>&1 &
  pid=$!
  sleep "$delay"
  if kill -0 "$pid" 2>/dev/null; then
    kill -9 -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    landed=$((landed + 1))
    echo "chaos: kill $i after ${delay} s"
  else
    wait "$pid" && code=0 || code=$?
    echo "chaos: run $i finished by itself after < ${delay} s (exit $code)"
    [ "$code" -ne 0 ] && { cat "$work/log"; exit 1; }
    break
  fi
done
extra=()
[ -e "$work/run" ] && extra=("${resume[@]}")
"$bin" "${args[@]}" "${extra[@]}" --out "$work/run"

/usr/bin/python3 - "$work/reference" "$work/run" "$landed" <<'PY'
import json, os, re, sys
reference, run, landed = sys.argv[1], sys.argv[2], int(sys.argv[3])
# Figures only: times, paths, command lines and logs differ between any two runs.
skip = re.compile(r"(second|^time|^date|command|^log)")
def strip(value, key=""):
    if isinstance(value, dict):
        return {k: strip(v, k) for k, v in value.items() if not skip.search(k)}
    if isinstance(value, list):
        return [strip(v) for v in value]
    if isinstance(value, str):
        return value.replace(reference, "OUT").replace(run, "OUT")
    return value
differences = []
def compare(a, b, where):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            compare(a.get(k), b.get(k), where + "/" + k)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            compare(x, y, where + "[%d]" % i)
    elif a != b:
        differences.append("%s: %r vs %r" % (where, a, b))
files = 0
for root, _, names in os.walk(reference):
    for name in names:
        if name == "results.json":
            path = os.path.join(root, name)
            twin = os.path.join(run, os.path.relpath(path, reference))
            if not os.path.exists(twin):
                differences.append("missing " + twin)
                continue
            files += 1
            compare(strip(json.load(open(path))), strip(json.load(open(twin))), os.path.relpath(path, reference))
stray = [os.path.join(r, n) for r, _, ns in os.walk(run) for n in ns
         if re.search(r"\.tmp-\d+$|^\.privaudit-write-test-|^privaudit\.lock$", n)]
for d in differences[:20]:
    print("chaos: DIFFERENT " + d)
for s in stray:
    print("chaos: STRAY FILE " + s)
ok = not differences and not stray
print("chaos: %d kills, %d results.json compared, %d differences, %d stray files: %s"
      % (landed, files, len(differences), len(stray), "SAME" if ok else "FAILED"))
sys.exit(0 if ok else 1)
PY
