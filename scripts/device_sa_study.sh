#!/usr/bin/env bash
# ComiRec-SA's default against --pos-init zero, seeds 19-21, on Beauty and Sports at once, on a lent
# GPU machine (the device tool; one call of ~230 s on an H200 with 16 Xeon cores, 2026-12-04):
# Beauty's six runs share the GPU, Sports' six runs take one CPU core each. Run from the repository
# root with data/beauty, data/sports, python/comirec/_core.abi3.so and the faiss-cpu wheel in .whl/
# carried (see .library/device/README.md). Results: $OUT/{beauty,sports}.txt, per-user files in
# $OUT/study/<ds>/ (docs/results.md, "ComiRec-SA's convergence").
pip install -q --no-deps --target /tmp/site .whl/faiss_cpu-*.whl >/dev/null 2>&1; export PYTHONPATH=/tmp/site:$PWD/python
nvidia-smi -L > $OUT/smi.txt; lscpu | head -20 > $OUT/lscpu.txt; python3 -c "import torch,faiss,comirec;print(torch.__version__)" > $OUT/env.txt 2>&1
A="--max-steps 20000 --eval-every 1000 --patience 5 --seeds 19,20,21 --jobs 6"
CUDA_VISIBLE_DEVICES= timeout 555 python3 scripts/model_study.py --data data/sports --out /tmp/r/sports $A --variant sa-max:comirec-sa:device=cpu --variant sa-pos0:comirec-sa:pos_init=zero,device=cpu --per-user $OUT/study/sports > $OUT/sports.txt 2>&1 &
timeout 555 python3 scripts/model_study.py --data data/beauty --out /tmp/r/beauty $A --variant sa-max:comirec-sa:device=cuda --variant sa-pos0:comirec-sa:pos_init=zero,device=cuda --per-user $OUT/study/beauty > $OUT/beauty.txt 2>&1 &
wait
# the device returns at most 16 files: everything small goes back as one archive
mkdir -p $OUT/runs; for d in /tmp/r/*/*/; do t=$OUT/runs/$(basename $(dirname $d))/$(basename $d); mkdir -p $t; cp $d/log.jsonl $d/metrics.json $d/config.json $t/ 2>/dev/null; done
cd $OUT && tar czf /tmp/all.tgz study runs *.txt && rm -rf $OUT/* && mv /tmp/all.tgz $OUT/
