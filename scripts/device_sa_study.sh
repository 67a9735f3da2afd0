#!/usr/bin/env bash
# ComiRec-SA variants, seeds 19-21, on Beauty and Sports at once, on a lent GPU machine (the device
# tool; an H200 with 16 Xeon cores): Beauty's runs share the GPU, Sports' runs take one CPU core
# each. VARIANTS lists NAME:OPTIONS pairs (OPTIONS: ModelConfig field=value, comma-separated, may be
# empty). Run from the repository root with data/beauty, data/sports, python/comirec/_core.abi3.so
# and the faiss-cpu wheel in .whl/ carried (see .library/device/README.md). Results come back as one
# archive, $OUT/all.tgz: {beauty,sports}.txt, per-user files in study/<ds>/, each run's logs
# (docs/results.md, "ComiRec-SA's convergence"). The calls of 2026-12-04:
#   --pos-init zero (~230 s; the files renamed dev-sa-max, dev-sa-pos0 afterwards):
#     VARIANTS="sa-max: sa-pos0:pos_init=zero" CAP=555 scripts/device_sa_study.sh
#   --logit-scale (258 s): VARIANTS="dev-sa-s2:logit_scale=2 dev-sa-s4:logit_scale=4" scripts/device_sa_study.sh
VARIANTS=${VARIANTS:-"sa-max: sa-pos0:pos_init=zero"}; CAP=${CAP:-420}
pip install -q --no-deps --target /tmp/site .whl/faiss_cpu-*.whl >/dev/null 2>&1; export PYTHONPATH=/tmp/site:$PWD/python
nvidia-smi -L > $OUT/smi.txt; lscpu | head -20 > $OUT/lscpu.txt; python3 -c "import torch,faiss,comirec;print(torch.__version__)" > $OUT/env.txt 2>&1
A="--max-steps 20000 --eval-every 1000 --patience 5 --seeds 19,20,21 --jobs $(( $(echo $VARIANTS | wc -w) * 3 ))"
variants() { for v in $VARIANTS; do o=${v#*:}; echo "--variant ${v%%:*}:comirec-sa:${o:+$o,}device=$1"; done; }
CUDA_VISIBLE_DEVICES= timeout $CAP python3 scripts/model_study.py --data data/sports --out /tmp/r/sports $A $(variants cpu) --per-user $OUT/study/sports > $OUT/sports.txt 2>&1 &
timeout $CAP python3 scripts/model_study.py --data data/beauty --out /tmp/r/beauty $A $(variants cuda) --per-user $OUT/study/beauty > $OUT/beauty.txt 2>&1 &
wait
# the device returns at most 8 files: everything small goes back as one archive
mkdir -p $OUT/runs; for d in /tmp/r/*/*/; do t=$OUT/runs/$(basename $(dirname $d))/$(basename $d); mkdir -p $t; cp $d/log.jsonl $d/metrics.json $d/config.json $t/ 2>/dev/null; done
cd $OUT && tar czf /tmp/all.tgz study runs *.txt && rm -rf $OUT/* && mv /tmp/all.tgz $OUT/
