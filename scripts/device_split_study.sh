#!/usr/bin/env bash
# The three-seed table of docs/results.md on a fresh user split (`comirec prepare ... --seed 7`),
# models at their defaults, in one call on a lent GPU machine (the device tool: one H200, 16 cores).
# GPU_MODELS share the GPU, CPU_MODELS take one CPU core each (seeds 19-21). A wall-clock cap per
# run (CAP minutes, --max-minutes) keeps the call inside the device's limit. Carry $DATA,
# python/comirec/_core.abi3.so and the faiss-cpu wheel in .whl/. Results come back as one archive.
#   Sports (2026-12-04): DATA=data/sports-s7 (the defaults below)
#   Beauty (2026-12-04): DATA=data/beauty-s7 GPU_MODELS="sa-max:comirec-sa dr-max:comirec-dr" CPU_MODELS= CAP=4.5 LIMIT=290
DATA=${DATA:-data/sports-s7}; CAP=${CAP:-6.5}; LIMIT=${LIMIT:-470}
GPU_MODELS=${GPU_MODELS-"sa-max:comirec-sa dr-max:comirec-dr mind:mind"}
CPU_MODELS=${CPU_MODELS-"ytdnn:youtube-dnn gru4rec:gru4rec mostpop:mostpop"}
pip install -q --no-deps --target /tmp/site .whl/faiss_cpu-*.whl >/dev/null 2>&1; export PYTHONPATH=/tmp/site:$PWD/python
nvidia-smi -L > $OUT/smi.txt; lscpu | head -20 > $OUT/lscpu.txt
A="--data $DATA --max-steps 20000 --eval-every 1000 --patience 5 --seeds 19,20,21 --per-user $OUT/study/$(basename $DATA)"
variants() { for v in $1; do echo "--variant $v:device=$2,max_minutes=$CAP"; done; }
njobs() { echo $(( $(echo $1 | wc -w) * 3 )); }
[ -n "$GPU_MODELS" ] && timeout $LIMIT python3 scripts/model_study.py --out /tmp/split/gpu $A --jobs $(njobs "$GPU_MODELS") $(variants "$GPU_MODELS" cuda) > $OUT/gpu.txt 2>&1 &
[ -n "$CPU_MODELS" ] && CUDA_VISIBLE_DEVICES= timeout $LIMIT python3 scripts/model_study.py --out /tmp/split/cpu $A --jobs $(njobs "$CPU_MODELS") $(variants "$CPU_MODELS" cpu) > $OUT/cpu.txt 2>&1 &
wait
mkdir -p $OUT/runs; for d in /tmp/split/*/*/; do t=$OUT/runs/$(basename $d); mkdir -p $t; cp $d/log.jsonl $d/metrics.json $t/ 2>/dev/null; done
cd $OUT && tar czf /tmp/all.tgz study runs *.txt && rm -rf $OUT/* && mv /tmp/all.tgz $OUT/
