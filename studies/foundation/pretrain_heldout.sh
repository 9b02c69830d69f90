#!/bin/bash
# The held-out-class check: mpm-flow-base continued on the detector-level jets with MPM + truth,
# the class objective supervising every class except the top classes (Tbqq, Tbl; their jets
# still pre-train through MPM and track origin). 1,200 steps with the encoder frozen (the truth
# heads learn to read it), a ramp over 1,200, then everything trains: the step count of the
# first truth stage. One thread, niced, compile + bf16. Run from the repository root; DATA and
# OUT may be set. Then fine-tune it on the test bed's top task (README.md, step 4).
. /work/venv/bin/activate
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1
DATA=${DATA:-/work/data/pre_det/*/*.root}
OUT=${OUT:-/work/runs/mpm-truth-notop}
nice -n 5 python -m jetfm.cli pretrain --data "$DATA" --output "$OUT" \
  --init-from mpm-flow-base --target diffusion --truth class=1,origin=0.5 \
  --supervised-classes QCD,Wqq,Zqq,Hbb,Hcc,Hgg --group-dropout 0.5 --buckets 64,128 \
  --batch-size 256 --max-steps 4200 --encoder-delay 0.2857 --save-steps 500 --logging-steps 10 \
  --seed 13 --compile --bf16 "$@"
