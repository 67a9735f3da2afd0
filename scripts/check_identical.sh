#!/bin/bash
# usage: scripts/check_identical.sh OLD_PYTHON_DIR NEW_PYTHON_DIR PREPARED_DATA
# Train each model briefly with two versions of the package (e.g. a worktree of an older commit and this one),
# then compare checkpoints, metrics.json and the λ table of comirec evaluate, byte for byte.
set -u
rm -rf /tmp/bit; mkdir -p /tmp/bit
for side in old new; do
  if [ $side = old ]; then P=$1; else P=$2; fi
  for m in mostpop youtube-dnn gru4rec mind comirec-dr comirec-sa; do
    PYTHONPATH=$P python -c 'import sys; from comirec.cli import main; sys.exit(main(sys.argv[1:]))' train --model $m --data $3 \
      --out /tmp/bit/$side/$m --max-steps 200 --eval-every 100 --threads 1 --seed 19 --no-progress > /tmp/bit/$side-$m.train.txt 2>&1
    PYTHONPATH=$P python -c 'import sys; from comirec.cli import main; sys.exit(main(sys.argv[1:]))' evaluate --run /tmp/bit/$side/$m \
      --split test --lam 0,0.05,0.1,0.25,1,inf --protocol comirec --no-progress > /tmp/bit/$side-$m.eval.txt 2>&1
  done
done
for m in mostpop youtube-dnn gru4rec mind comirec-dr comirec-sa; do
  python - $m <<'PY'
import sys, json, torch
m = sys.argv[1]
a = torch.load(f"/tmp/bit/old/{m}/best.pt", weights_only=True); b = torch.load(f"/tmp/bit/new/{m}/best.pt", weights_only=True)
same_w = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
ma = json.load(open(f"/tmp/bit/old/{m}/metrics.json")); mb = json.load(open(f"/tmp/bit/new/{m}/metrics.json"))
for d in (ma, mb):
    for k in ("train_seconds", "train_samples_per_s", "elapsed_s", "eval_seconds", "seconds"): d.pop(k, None)
same_m = ma == mb
ea = open(f"/tmp/bit/old-{m}.eval.txt").read(); eb = open(f"/tmp/bit/new-{m}.eval.txt").read()
drop = lambda t: [l for l in t.splitlines() if not l.startswith("retrieval") and "/tmp/bit/" not in l]
print(f"{m:12s} weights identical: {same_w}; metrics.json identical: {same_m}; λ table identical: {drop(ea) == drop(eb)}")
PY
done
