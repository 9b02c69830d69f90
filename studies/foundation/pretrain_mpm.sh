#!/bin/bash
# The pure-MPM control of pretrain_truth.sh: the same data, start (mpm-flow-base's backbone and
# decoder), steps, schedule and settings, without the truth objectives.
. /work/venv/bin/activate
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1
DATA=${DATA:-/work/data/pre_det/*/*.root}
OUT=${OUT:-/work/runs/mpm-only-det-2}
nice -n 5 python -m jetfm.cli pretrain --data "$DATA" --output "$OUT" --init-from mpm-flow-base \
  --target diffusion --group-dropout 0.5 --buckets 64,128 \
  --batch-size 256 --max-steps 4000 --save-steps 250 --logging-steps 10 \
  --seed 12 --compile --bf16 "$@"
