#!/usr/bin/env bash
# One short GPU lease, end to end: generate fresh jets on the machine's own cores, pre-train a
# backbone on the GPU, then fine-tune it and its from-scratch twin at 1,000 labels.
#
#   bash benchmarks/gpu_session.sh STEP [STEP ...]
#
# steps (each returns; long work runs detached with setsid, so a lease split into several
# calls of <= 10 minutes keeps working between calls; state lives in $WORK):
#   setup            install carried wheels (.whl/, see docs/guide/pretraining.md), check CUDA
#   bench            the pre-training step benchmark (bench_pretrain_step.py): prints the table
#                    (jets/s old vs new path, model-only and end to end, MFU), JSON in $WORK
#   generate         labelled train/val/test (seeds 201/202/203) + unlabelled jets (seed 501)
#   pretrain         stop the unlabelled generation, pre-train on what is there ($STEPS steps;
#                    compiled static-shape step on device-resident batches, LR by the sqrt rule)
#   wait SECONDS     report progress every minute for SECONDS
#   study            wait for pre-training, fine-tune pretrained and scratch (3 seeds x LRs)
#   pack             results, logs and the checkpoint into $OUT as <= 15 MB parts
#
# Settings come from the environment (defaults below): WORK, SIZE, BATCH (1024), LR (empty:
# 5e-4 x sqrt(BATCH/256)), COMPILE (1), BENCH_ARGS, STEPS, PRE_JETS (per class), GEN_WORKERS,
# FT_PROCS, SEEDS, LRS, STUDY_WAIT, STUDY_LIMIT, OUT, EMB_LR (--embedding-lr-scale: 0 keeps the
# particle embedding frozen) and GROUP_DROPOUT (--group-dropout). Both default to 0: this is one
# stage from random weights; when continuing a backbone (`jetfm pretrain --init-from`), the
# shipped mpm-flow-base's last stage used EMB_LR=0.1 GROUP_DROPOUT=0.25.
# GPU_SESSION_DRY=1 rehearses every step on a CPU in minutes (tiny sizes, uncompiled, $WORK in
# /tmp); tests/test_benchmarks.py rehearses bench, pretrain and pack.
# Measured on an H100 with 16 cores: generation ~430 jets/s with 13 workers; one 250-step
# fine-tuning run ~40 s with six in parallel.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
if [ "${GPU_SESSION_DRY:-0}" = 1 ]; then
  : "${WORK:=/tmp/jetfm-gpu-dry}" "${LAB_JETS:=24}" "${PRE_JETS:=400}" "${PRE_CHUNK:=50}"
  : "${GEN_WORKERS:=2}" "${LAB_WORKERS:=1}" "${STEPS:=10}" "${FT_STEPS:=4}" "${FT_PROCS:=2}"
  : "${STUDY_WAIT:=600}" "${STUDY_LIMIT:=600}" "${SEEDS:=0}" "${LRS:=0.002}" "${SIZE:=tiny}" "${BATCH:=32}"
  # kernels take minutes to generate on a CPU: the rehearsal runs the same steps uncompiled
  : "${COMPILE:=0}" "${BENCH_ARGS:=--sizes tiny --batch-sizes 16 --jets 400 --rounds 1 --steps 2}"
else
  : "${WORK:=/root/jetfm-gpu}" "${LAB_JETS:=1500}" "${PRE_JETS:=60000}" "${PRE_CHUNK:=2500}"
  : "${GEN_WORKERS:=13}" "${LAB_WORKERS:=2}" "${STEPS:=3600}" "${FT_STEPS:=250}" "${FT_PROCS:=6}"
  : "${STUDY_WAIT:=300}" "${STUDY_LIMIT:=400}" "${SEEDS:=0 1 2}" "${LRS:=0.001 0.002}"
fi
: "${SIZE:=large}" "${BATCH:=1024}" "${LR:=}" "${SITE:=/tmp/jetfm-site}" "${COMPILE:=1}"
: "${BENCH_ARGS:=--sizes base,large --batch-sizes 256,1024 --compile}"
: "${EMB_LR:=0}" "${GROUP_DROPOUT:=0}"
CLASSES=QCD,Hbb,Hcc,Hgg,Zqq,Wqq,Tbqq,Tbl
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH=$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}
# pythia8mc installed with `pip --target` cannot find its settings files by itself
[ -d "$SITE/share/Pythia8/xmldoc" ] && export PYTHIA8DATA=$SITE/share/Pythia8/xmldoc
JETFM=(python3 -m jetfm.cli)
mkdir -p "$WORK"
say() { echo "[$(date +%H:%M:%S)] $*"; }
# `pkill -f` also matches the calling shell when the pattern is in its own command line; the
# bracket keeps the pattern from matching itself
stop() { pkill -f "[-]-$1" 2>/dev/null; sleep 2; pkill -9 -f "[-]-$1" 2>/dev/null; true; }
jets_in() { python3 -c "import glob, sys, uproot
print(sum(uproot.open(f)['tree'].num_entries for f in glob.glob(sys.argv[1] + '/*.root')))" "$1"; }

step_setup() {
  # (a rehearsal uses the local environment: the carried wheels are for the GPU machine)
  if [ "${GPU_SESSION_DRY:-0}" != 1 ] && compgen -G "$REPO/.whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$SITE" "$REPO"/.whl/*.whl || return 1
    [ -d "$SITE/share/Pythia8/xmldoc" ] && export PYTHIA8DATA=$SITE/share/Pythia8/xmldoc
  fi
  python3 -c "import torch, transformers, jetfm, uproot, pythia8mc, fastjet, zuko
print('torch', torch.__version__, 'transformers', transformers.__version__,
      'cuda', torch.cuda.is_available(), 'cores', __import__('os').cpu_count())"
}

step_bench() {  # before generation starts: the benchmark gets the machine to itself
  python3 "$REPO/benchmarks/bench_pretrain_step.py" $BENCH_ARGS --out "$WORK/bench_pretrain_step.json" \
    2>&1 | tee "$WORK/bench.log" | grep -v -i warning
  [ "${PIPESTATUS[0]}" = 0 ]
}

step_generate() {
  local lab=$LAB_JETS val=$(( LAB_JETS / 3 ))
  cd "$WORK" || return 1
  # the labelled sets first and on their own workers: the study needs them complete
  setsid nohup bash -c "
    ${JETFM[*]} generate --classes $CLASSES --jets-per-class $lab --chunk-size $lab --seed 201 --out data/train --workers $LAB_WORKERS --no-progress &&
    ${JETFM[*]} generate --classes $CLASSES --jets-per-class $val --chunk-size $val --seed 202 --out data/val --workers $LAB_WORKERS --no-progress &&
    ${JETFM[*]} generate --classes $CLASSES --jets-per-class $val --chunk-size $val --seed 203 --out data/test --workers $LAB_WORKERS --no-progress &&
    echo LABELLED_DONE" > gen_labelled.log 2>&1 < /dev/null &
  setsid nohup "${JETFM[@]}" generate --classes $CLASSES --jets-per-class "$PRE_JETS" \
    --chunk-size "$PRE_CHUNK" --seed 501 --out pretrain --workers "$GEN_WORKERS" --no-progress \
    > gen_pretrain.log 2>&1 < /dev/null &
  echo $! > gen_pretrain.pid  # a session leader: its process group holds the workers too
  cd "$REPO" && say "generation started in $WORK"
}

step_pretrain() {
  until grep -q LABELLED_DONE "$WORK/gen_labelled.log" 2>/dev/null; do
    grep -qE "generate: error|Traceback" "$WORK/gen_labelled.log" 2>/dev/null && { cat "$WORK/gen_labelled.log"; return 1; }
    sleep 5
  done
  # the whole process group (the spawned workers too); finished chunks are complete files,
  # a killed chunk leaves only a .tmp
  kill -- -"$(cat "$WORK/gen_pretrain.pid")" 2>/dev/null; stop "seed 501"
  rm -f "$WORK"/pretrain/.*.tmp
  say "pre-training on $(jets_in "$WORK/pretrain") jets: $SIZE, $STEPS steps of $BATCH"
  local extra=""
  [ -n "$LR" ] && extra="$extra --lr $LR"  # default: 5e-4 x sqrt(BATCH/256)
  [ "$COMPILE" = 1 ] && extra="$extra --compile"
  # two threads: the batches are built on the GPU (no loader workers), and more threads would
  # oversubscribe the cores the generator processes still use
  OMP_NUM_THREADS=2 setsid nohup bash -c "${JETFM[*]} pretrain --data $WORK/pretrain --val $WORK/data/val \
    --output $WORK/pretrained --size $SIZE --target diffusion --batch-size $BATCH $extra \
    --max-steps $STEPS --encoder-delay 0.1 --layer-scale-init 0.1 --embedding-lr-scale $EMB_LR --group-dropout $GROUP_DROPOUT \
    --save-steps 500 --logging-steps 100 --seed 42; echo PRETRAIN_EXIT \$?" \
    > "$WORK/pretrain.log" 2>&1 < /dev/null &
}

step_wait() {  # a progress line at once, then every minute until SECONDS have passed
  local end=$(( $(date +%s) + $1 )) left
  while :; do
    say "unlabelled: $(ls "$WORK"/pretrain/*.root 2>/dev/null | wc -l) files;" \
      "labelled: $(cat "$WORK/gen_labelled.log" 2>/dev/null | grep -c '^wrote')/3;" \
      "pre-training: $(grep -E "'loss'|PRETRAIN_EXIT|rror" "$WORK/pretrain.log" 2>/dev/null | tail -n 1 | cut -c1-120)"
    left=$(( end - $(date +%s) ))
    [ $left -gt 0 ] || break
    sleep $(( left < 60 ? left : 60 ))
  done
}

step_study() {
  local end=$(( $(date +%s) + STUDY_WAIT )) ckpt=$WORK/pretrained
  while ! grep -q PRETRAIN_EXIT "$WORK/pretrain.log" && [ "$(date +%s)" -lt $end ]; do sleep 5; done
  if ! grep -q "PRETRAIN_EXIT 0" "$WORK/pretrain.log"; then  # late or failed: its last checkpoint
    stop "output $WORK/pretrained"
    ckpt=$(ls -d "$WORK"/pretrained/checkpoint-* 2>/dev/null | sort -t- -k2 -n | tail -n 1)
    [ -n "$ckpt" ] || { tail -n 20 "$WORK/pretrain.log"; return 1; }
  fi
  echo "$ckpt" > "$WORK/checkpoint.txt"
  say "fine-tuning $ckpt and scratch: seeds $SEEDS, LRs $LRS, $FT_PROCS processes"
  local keys=() pids=() p
  for s in $SEEDS; do for lr in $LRS; do for m in pretrained scratch; do
    keys+=("main:$m:tagging:1000:$s:lr$lr"); done; done; done
  for (( p = 0; p < FT_PROCS; p++ )); do
    ( for (( i = p; i < ${#keys[@]}; i += FT_PROCS )); do
        OMP_NUM_THREADS=1 python3 "$REPO/studies/study_label_efficiency.py" --data "$WORK/data" \
          --out "$WORK/study/p$p" --checkpoints "pretrained=$ckpt" --labels 1000 --seeds 3 \
          --tasks tagging --extras "" --batch-size 100 --min-steps "$FT_STEPS" \
          --max-steps "$FT_STEPS" --evals 3 --lrs "${LRS// /,}" --only "${keys[$i]}" \
          >> "$WORK/study_p$p.log" 2>&1
      done ) &
    pids+=($!)
  done
  end=$(( $(date +%s) + STUDY_LIMIT ))
  while kill -0 "${pids[@]}" 2>/dev/null && [ "$(date +%s)" -lt $end ]; do sleep 5; done
  kill "${pids[@]}" 2>/dev/null; stop "out $WORK/study"
  # one table from the study's own summary (mean +- std, LR chosen on validation; plots too)
  mkdir -p "$WORK/study/all"
  cat "$WORK"/study/p*/results.jsonl > "$WORK/study/all/results.jsonl" 2>/dev/null
  cp "$WORK/study/all/results.jsonl" "$WORK/results.jsonl"
  python3 "$REPO/studies/study_label_efficiency.py" --data "$WORK/data" --out "$WORK/study/all" \
    --checkpoints "pretrained=$ckpt" --lrs "${LRS// /,}" --summarise
}

step_pack() {
  local out=${OUT:-$WORK/out} pack=$WORK/pack ckpt
  ckpt=$(cat "$WORK/checkpoint.txt" 2>/dev/null || echo "$WORK/pretrained")
  rm -rf "$pack" && mkdir -p "$pack/checkpoint" "$out"
  cp "$ckpt"/{model.safetensors,config.json,preprocessor_config.json} "$pack/checkpoint/" 2>/dev/null
  cp "$WORK"/*.log "$WORK/results.jsonl" "$WORK"/study/all/{summary.md,label_efficiency.png} \
    "$WORK/bench_pretrain_step.json" "$pack/" 2>/dev/null
  cp "$WORK/pretrain/manifest.json" "$pack/pretrain_manifest.json" 2>/dev/null
  tar czf "$WORK/pack.tgz" -C "$WORK" pack && split -b 15M "$WORK/pack.tgz" "$out/pack.tgz.part-"
  ls -l "$out"  # reassemble: cat pack.tgz.part-* | tar xz
}

# check the whole command line first: a typo must not cost a half-run call
for (( i = 1; i <= $#; i++ )); do
  case ${!i} in
    setup|bench|generate|pretrain|study|pack) ;;
    wait) i=$(( i + 1 )); [[ ${!i:-} =~ ^[0-9]+$ ]] || { echo "wait needs SECONDS" >&2; exit 2; } ;;
    *) echo "unknown step ${!i} (setup bench generate pretrain wait SECONDS study pack)" >&2; exit 2 ;;
  esac
done
while [ $# -gt 0 ]; do
  case $1 in
    setup|bench|generate|pretrain|study|pack) "step_$1" || { say "step $1 failed"; exit 1; } ;;
    wait) step_wait "$2"; shift ;;
  esac
  shift
done
