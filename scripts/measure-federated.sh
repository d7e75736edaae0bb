#!/bin/bash
# Measures what an honest and a malicious FedAvg server reconstruct, per architecture, against the
# local steps, the local batch and the number of securely aggregated clients (docs/federated.md).
# Usage: scripts/measure-federated.sh OUT_DIR MODEL_DIR [ITERATIONS]
#   MODEL_DIR holds mlp/train/model.pt, cnn/train/model.pt, vit/train/model.pt (an audit's output).
set -euo pipefail
out=$1
models=$2
iterations=${3:-300}
bin=${PRIVAUDIT:-./build/privaudit}
mkdir -p "$out"
attacks=linear-layer,positional,features-then-invert,ig,unrolled-ig
run() {  # name arch flags...
  local name=$1 arch=$2
  shift 2
  "$bin" federated --model "$models/$arch/train/model.pt" --out "$out/$arch-$name" --force \
    --quiet --iterations "$iterations" --attack "$attacks" "$@"
}
for arch in mlp cnn vit; do
  # Local steps S over 4 images, full-batch steps (S = 1 is the batch-4 gradient).
  for s in 1 2 5; do run steps$s $arch --images-per-client 4 --local-batch 4 --local-steps $s; done
  # Local batch b, one epoch over 4 images.
  for b in 1 2; do run batch$b $arch --images-per-client 4 --local-batch $b; done
  # Clients M under secure aggregation, 1 image and one step each.
  for m in 2 4 8; do run clients$m $arch --clients $m --images-per-client 1 --secure-aggregation; done
  # The imprint server on the aggregate of 8 clients x 4 images (B = 32).
  "$bin" federated --model "$models/$arch/train/model.pt" --out "$out/$arch-imprint" --force --quiet \
    --clients 8 --images-per-client 4 --local-batch 4 --server imprint --bins 64 \
    --secure-aggregation --attack imprint
done
/usr/bin/python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
rows = []
for name in sorted(os.listdir(out)):
    path = os.path.join(out, name, "results.json")
    if not os.path.exists(path):
        continue
    r = json.load(open(path))
    f = r["federated"]
    view = [v for v in f["views"] if v["view"] == f["server_sees"]][0]
    best = view["strongest"]
    runs = {run["attack"]: run for run in view["runs"]}
    def psnr(a):
        p = runs.get(a, {}).get("psnr")
        return "n/a" if p is None else "%.1f" % p
    secs = sum(run["seconds"] for run in view["runs"])
    print("%-16s images %2d  strongest %6.1f dB (median %6.1f, recovered %.2f)  ig %6s  unrolled %6s  "
          "closed-form %6s/%6s/%6s  expected %s  %.0f s" % (
              name, view["images"], best["psnr"] or float("nan"), best["median_psnr"] or float("nan"),
              view["recovered_fraction"], psnr("ig"), psnr("unrolled-ig"), psnr("linear-layer"),
              psnr("positional"), psnr("features-then-invert"),
              "-" if view["expected_fraction"] is None else "%.2f" % view["expected_fraction"], secs))
PY
