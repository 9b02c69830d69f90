"""Does the backbone LR ramp of `full` fine-tuning blow the model up, and what avoids it?

Fine-tunes a checkpoint (and the same architecture from scratch) on a small labelled sample
with several ramp settings; records the validation curve, the largest gradient norm after the
freeze, and the test accuracy/AUC of the restored model. One JSON row per run.

    python studies/finetune_ramp/run.py --data DATA --out OUT --model mpm-flow-base \
        --settings "scale=1,ramp=0.1" "scale=0.5,ramp=0.1" "scale=1,ramp=0.3" --seeds 0
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from jetfm.evaluation import evaluate_checkpoint
from jetfm.finetuning import finetune


def parse(setting: str) -> dict[str, float]:
    return {k: float(v) for k, v in (kv.split("=") for kv in setting.split(","))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="folder with train/ val/ test/")
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="mpm-flow-base")
    ap.add_argument("--settings", nargs="+", default=["scale=1,ramp=0.1"])
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--scratch", action="store_true", help="also from scratch")
    ap.add_argument("--only-scratch", action="store_true", help="from scratch only")
    args = ap.parse_args()
    data, out = Path(args.data), Path(args.out)
    rows = out / "rows.jsonl"
    out.mkdir(parents=True, exist_ok=True)
    for seed in range(args.seeds):
        kinds = [True] if args.only_scratch else [False, True] if args.scratch else [False]
        for scratch in kinds:
            for setting in args.settings:
                s = parse(setting)
                name = f"{'scratch' if scratch else 'pre'}-{setting}-s{seed}".replace(",", "_")
                start = time.time()
                result = finetune(
                    args.model,
                    "tagging",
                    str(data / "train"),
                    str(data / "val"),
                    out / name,
                    from_scratch=scratch,
                    seed=seed,
                    backbone_lr_scale=s.get("scale", 1.0),
                    ramp_fraction=s.get("ramp", 0.1),
                    freeze_fraction=s.get("freeze", 0.1),
                    lr=s.get("lr", 2e-3),
                )
                hist = result.trainer.state.log_history
                hold = round(s.get("freeze", 0.1) * 250)
                grad = [h["grad_norm"] for h in hist if "grad_norm" in h and h["step"] > hold]
                test = evaluate_checkpoint(out / name, str(data / "test"), progress=False)
                row = {
                    "name": name,
                    "setting": s,
                    "scratch": scratch,
                    "seed": seed,
                    "val_curve": [
                        (h["step"], h["eval_loss"], h.get("eval_accuracy"))
                        for h in hist
                        if "eval_loss" in h
                    ],
                    "max_grad_norm_after_freeze": max(grad) if grad else None,
                    "test_accuracy": test["accuracy"],
                    "test_auc": test["auc"],
                    "steps": result.metrics["steps"],
                    "best_step": result.metrics["best_step"],
                    "seconds": round(time.time() - start),
                }
                with open(rows, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
