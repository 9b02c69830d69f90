#!/usr/bin/env bash
# Re-package the shipped mpm-flow-base: weights from its pre-training run, card text, metrics
# (from the study rows in studies/results) and figures from this repository.
#
#   bash studies/releases/mpm-flow-base/release.sh PRETRAINED_RUN OUT   # e.g. OUT=model_cards
#
# PRETRAINED_RUN is the fourth stage's `jetfm pretrain` output (session 27, `cont4-gd25`; the
# commands are in commands.txt). mpm_reconstruction.png is that run's jet-mass check
# (studies/check_reconstruction.py). HF_HUB_OFFLINE=1 is set: nothing is uploaded.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: bash $0 PRETRAINED_RUN OUT" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
PRE=$(realpath "$1")
OUT=$(realpath -m "$2")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export HF_HUB_OFFLINE=1
# every input side by side in one folder, so that the card's "Reproduce" names them plainly
cp "$HERE"/{data.json,commands.txt,summary.md,mpm_reconstruction.png} "$TMP"/
cp "$REPO"/docs/figures/label_efficiency_tuned.png "$TMP"/
python "$HERE/make_metrics.py" "$TMP/metrics.json" > /dev/null
python "$HERE/make_recall_figure.py" "$TMP/per_class_recall.png"
cd "$TMP"
jetfm release --name mpm-flow-base --out "$OUT" --pretrained "$PRE" --data-info data.json --commands-file commands.txt --summary-file summary.md --metrics metrics.json --attach label_efficiency_tuned.png --attach per_class_recall.png --attach mpm_reconstruction.png --target diffusion --size base --max-steps 19400 --batch-size 128 --lr 3e-4 --hardware 'AMD EPYC, 2 logical cores (shared), 2 torch threads, no GPU' --limitation 'Beats training from scratch by 3.3 points at 1k labels (0.694 ± 0.002 vs 0.661 ± 0.012, LR chosen on validation for both), ahead on all 3 seeds, but the issue-8 target (+10 points) is not reached, and pre-trained at 1k labels stays below scratch at 10k (0.757 ± 0.002); at 10k labels the gain is 1.2 points, track origin is within the spread of scratch and vertex finding 0.4 points of ARI below it.' --limitation 'Fine-tuned on kinematics only it beats scratch on average (0.562 ± 0.033 vs 0.519 ± 0.021) but not on every seed (4 of 5).' --limitation 'Pre-trained on 680,000 simulated Pythia 8 jets for 19,400 steps in four stages on a 2-core CPU; the papers pre-train on 100M JetClass jets.' --limitation 'Simulation only (Pythia 8 + FastJet with a parametric impact-parameter smearing, no detector simulation).'
