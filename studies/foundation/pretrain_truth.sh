#!/bin/bash
# MPM + simulation truth on detector-level jets (both radii), continuing the released
# mpm-truth-det-base (backbone, decoder and truth heads; the optimiser starts afresh). One thread, niced,
# compile + bf16 (the fastest CPU step measured, docs/performance.md). Run from the repository
# root; DATA and OUT may be set.
. /work/venv/bin/activate
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1
DATA=${DATA:-/work/data/pre_det/*/*.root}
OUT=${OUT:-/work/runs/mpm-truth-det-next}
nice -n 5 python -m jetfm.cli pretrain --data "$DATA" --output "$OUT" \
  --init-from mpm-truth-det-base \
  --target diffusion --truth class=1,origin=0.5 --group-dropout 0.5 --buckets 64,128 \
  --batch-size 256 --max-steps 4000 --save-steps 250 --logging-steps 10 \
  --seed 12 --compile --bf16 "$@"
