#!/usr/bin/env bash
# ComiRec-SA with --logit-scale 2 and 4, seeds 19-21, on Beauty and Sports at once, on a lent GPU
# machine (the device tool; an H200 with 16 Xeon cores): Beauty's six runs share the GPU, Sports'
# six take one CPU core each, as scripts/device_sa_study.sh did for the default runs compared
# against (docs/study/<ds>/dev-sa-max-s*.npz). Run from the repository root with data/beauty,
# data/sports, python/comirec/_core.abi3.so and the faiss-cpu wheel in .whl/ carried. Results in
# one archive, $OUT/all.tgz: {beauty,sports}.txt, per-user files in study/<ds>/, each run's logs.
pip install -q --no-deps --target /tmp/site .whl/faiss_cpu-*.whl >/dev/null 2>&1; export PYTHONPATH=/tmp/site:$PWD/python
nvidia-smi -L > $OUT/smi.txt; python3 -c "import torch,faiss,comirec;print(torch.__version__)" > $OUT/env.txt 2>&1
A="--max-steps 20000 --eval-every 1000 --patience 5 --seeds 19,20,21 --jobs 6"
CUDA_VISIBLE_DEVICES= timeout ${CAP:-420} python3 scripts/model_study.py --data data/sports --out /tmp/r/sports $A --variant dev-sa-s2:comirec-sa:logit_scale=2,device=cpu --variant dev-sa-s4:comirec-sa:logit_scale=4,device=cpu --per-user $OUT/study/sports > $OUT/sports.txt 2>&1 &
timeout ${CAP:-420} python3 scripts/model_study.py --data data/beauty --out /tmp/r/beauty $A --variant dev-sa-s2:comirec-sa:logit_scale=2,device=cuda --variant dev-sa-s4:comirec-sa:logit_scale=4,device=cuda --per-user $OUT/study/beauty > $OUT/beauty.txt 2>&1 &
wait
mkdir -p $OUT/runs; for d in /tmp/r/*/*/; do t=$OUT/runs/$(basename $(dirname $d))/$(basename $d); mkdir -p $t; cp $d/log.jsonl $d/metrics.json $d/config.json $t/ 2>/dev/null; done
cd $OUT && tar czf /tmp/all.tgz study runs *.txt && rm -rf $OUT/* && mv /tmp/all.tgz $OUT/
