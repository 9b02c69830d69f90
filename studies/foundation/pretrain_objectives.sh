#!/bin/bash
# The effect of each objective at equal steps: the one-run truth recipe of pretrain_heldout.sh
# (from mpm-flow-base, 1,200 steps with the encoder frozen, a ramp over 1,200, 4,200 steps in
# all, seed 13) with every class supervised, at the MPM loss weight given as the first argument:
#   bash studies/foundation/pretrain_objectives.sh 1   # MPM + truth
#   bash studies/foundation/pretrain_objectives.sh 0   # truth alone (no decoder pass)
# Run from the repository root; DATA and OUT may be set. Other arguments go to jetfm pretrain.
W=${1:?usage: pretrain_objectives.sh MPM_WEIGHT [jetfm pretrain options]}
shift
OUT=${OUT:-/work/runs/truth-mpm$W} bash "$(dirname "$0")/pretrain_truth.sh" \
  --init-from mpm-flow-base --mpm-weight "$W" \
  --max-steps 4200 --encoder-delay 0.2857 --save-steps 500 --seed 13 "$@"
