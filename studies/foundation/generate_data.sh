#!/bin/bash
# detector-level pre-training set (CMS card, tune 14) and the domain-shifted test bed (ATLAS card, tune 21)
set -x
. /work/venv/bin/activate
export OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1
J="nice -n 10 python -m jetfm.cli generate"
C=QCD,Tbqq,Wqq,Zqq,Hbb,Hcc,Hgg,Tbl
O="--detector cms --chunk-size 2000 --workers 1 --no-progress"
cd /work/data
$J $O --radius 0.8 --pt-min 500 --pt-max 1000 --seed 1001 --classes $C --jets-per-class 4000 --out pre_det/r08_500-1000
$J --detector atlas --tune 21 --radius 0.8 --pt-min 550 --pt-max 650 --classes QCD,Tbqq --jets-per-class 8000 --seed 9001 --chunk-size 4000 --workers 1 --no-progress --out shifted/top_r08_550-650
$J --detector atlas --tune 21 --radius 0.4 --pt-min 500 --pt-max 550 --classes QCD --jets-per-class 16000 --seed 9002 --chunk-size 4000 --workers 1 --no-progress --out shifted/qg_r04_500-550
$J $O --radius 0.4 --pt-min 500 --pt-max 1200 --seed 1004 --classes $C --jets-per-class 3000 --out pre_det/r04_500-1200
$J $O --radius 0.8 --pt-min 300 --pt-max 500 --seed 1002 --classes $C --jets-per-class 3000 --out pre_det/r08_300-500
$J $O --radius 0.4 --pt-min 300 --pt-max 600 --seed 1005 --classes QCD --jets-per-class 15000 --out pre_det/r04_qcd_300-600
$J $O --radius 0.8 --pt-min 500 --pt-max 1000 --seed 1006 --classes $C --jets-per-class 10000 --out pre_det/r08_500-1000_b
date
