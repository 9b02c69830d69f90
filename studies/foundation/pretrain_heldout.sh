#!/bin/bash
# The held-out-class check: the truth recipe of pretrain_truth.sh, run from mpm-flow-base with the
# class objective supervising every class except the top classes (Tbqq, Tbl; their jets still
# pre-train through MPM and track origin). 1,200 steps with the encoder frozen (the truth heads
# learn to read it), a ramp over 1,200, then everything trains: the step count of the first truth
# stage. Options given here override pretrain_truth.sh's (the last occurrence wins). Run from the
# repository root; DATA and OUT may be set. Then fine-tune it on the test bed's top task
# (README.md, step 4).
OUT=${OUT:-/work/runs/mpm-truth-notop} bash "$(dirname "$0")/pretrain_truth.sh" \
  --init-from mpm-flow-base --supervised-classes QCD,Wqq,Zqq,Hbb,Hcc,Hgg \
  --max-steps 4200 --encoder-delay 0.2857 --save-steps 500 --seed 13 "$@"
