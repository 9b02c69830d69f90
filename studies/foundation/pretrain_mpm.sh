#!/bin/bash
# pure MPM control at the same compute, same data and start
. /work/venv/bin/activate
export OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1
cd /work/runs
nice -n 5 python -m jetfm.cli pretrain --data "/work/data/pre_det/r08_500-1000/*.root" \
  --output /work/runs/mpm-only-det --init-from mpm-flow-base --target diffusion \
  --group-dropout 0.5 --buckets 64,128 --batch-size 256 --max-steps 20000 --save-steps 100 \
  --logging-steps 10 --seed 11 "$@"
