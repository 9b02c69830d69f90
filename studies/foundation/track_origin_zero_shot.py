"""Track origin with no labels: a checkpoint's pre-trained track-origin head, as the track-id
head ``jetfm finetune`` starts from, evaluated on labelled jets before any fine-tuning step.

The head is the one :func:`jetfm.finetuning.load_model_for_task` puts on the backbone
(``start_head_from_truth``); the metrics are those of ``jetfm evaluate`` (balanced accuracy,
recall per origin, confusion matrix). One JSON row per checkpoint is appended to ``--out``.

Example::

    python studies/foundation/track_origin_zero_shot.py --checkpoint mpm-truth-det-base \\
        --data /work/data/gen8/test --out studies/results/foundation/trackid/zero_shot.jsonl
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from jetfm.evaluation import evaluate_checkpoint
from jetfm.finetuning import load_model_for_task
from jetfm.hub import resolve_pretrained
from jetfm.loading import PROCESSOR_FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="name or folder")
    parser.add_argument("--data", required=True, help="labelled files with part_origin")
    parser.add_argument("--out", required=True, help="JSON-lines file the row is appended to")
    args = parser.parse_args()

    folder = Path(resolve_pretrained(args.checkpoint))
    model = load_model_for_task(folder, "track-id")
    if "head_from" not in model.config.finetuning:
        raise SystemExit(f"{args.checkpoint}: no pre-trained track-origin head to evaluate")
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        shutil.copy(folder / PROCESSOR_FILE, Path(tmp) / PROCESSOR_FILE)
        metrics = evaluate_checkpoint(tmp, args.data, progress=False)
    keep = ("n_jets", "accuracy", "balanced_accuracy", "recall", "confusion_matrix")
    row = {"checkpoint": args.checkpoint, "data": args.data, "kind": "zero-shot"}
    row |= {k: metrics[k] for k in keep if k in metrics}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps({k: row[k] for k in ("checkpoint", "balanced_accuracy", "recall")}))


if __name__ == "__main__":
    main()
