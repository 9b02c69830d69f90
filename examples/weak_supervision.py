"""Weakly supervised tagging (CWoLa): learn Tbqq vs QCD from two unlabelled mixtures.

What it shows: ``finetune(task="cwola")`` builds two mixtures of signal and background jets
with different signal fractions (default 20 % and 60 %) and trains a classifier to tell the
*mixtures* apart — no per-jet labels. By the CWoLa theorem the optimal mixture classifier is
also the optimal signal/background classifier; the example checks that on the true labels
(``true_auc``) and, with ``--compare-scratch``, against the same model from random weights.

Run (needs ``jetfm[generate]`` unless ``--data DIR`` with ``train/ val/ test/``)::

    python examples/weak_supervision.py --output runs/cwola
    python examples/weak_supervision.py --jets-per-class 20000 --max-steps 4000 --compare-scratch
"""

from __future__ import annotations

import argparse
from pathlib import Path

SPLITS = {"train": 101, "val": 102, "test": 103}


def get_data(args: argparse.Namespace) -> dict[str, str]:
    if args.data:
        return {s: str(Path(args.data) / s) for s in SPLITS}
    from jetfm.generation import generate_dataset  # needs jetfm[generate]

    out = {}
    for split, seed in SPLITS.items():
        n = args.jets_per_class if split == "train" else max(4, args.jets_per_class // 3)
        out[split] = str(Path(args.output) / "data" / split)
        generate_dataset([args.signal, args.background], n, out[split], seed=seed,
                         chunk_size=n, workers=2)  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="runs/cwola")
    parser.add_argument("--model", default="mpm-flow-tiny")
    parser.add_argument("--data", default=None)
    parser.add_argument("--signal", default="Tbqq")
    parser.add_argument("--background", default="QCD")
    parser.add_argument("--fractions", default="0.2,0.6", help="signal fraction of each mixture")
    parser.add_argument("--jets-per-class", type=int, default=600)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--compare-scratch", action="store_true")
    args = parser.parse_args(argv)

    from jetfm.evaluation import evaluate_checkpoint
    from jetfm.finetuning import finetune

    data = get_data(args)
    fractions = [float(f) for f in args.fractions.split(",")]
    runs = {"pretrained": False} | ({"scratch": True} if args.compare_scratch else {})
    results = {}
    for name, scratch in runs.items():
        out = Path(args.output) / name
        ft = finetune(args.model, "cwola", data["train"], data["val"], out,
                      signal=args.signal, background=args.background, fractions=fractions,
                      from_scratch=scratch, max_steps=args.max_steps, batch_size=64, lr=1e-3,
                      early_stopping_patience=None)  # fmt: skip
        test = evaluate_checkpoint(out, data["test"], plots_dir=out / "plots", progress=False)
        results[name] = {"val_true_auc": ft.metrics["true_auc"], "test_auc": test["auc"]}
        print(f"{name:>10}: AUC on true labels {test['auc']:.3f} (test), "
              f"{ft.metrics['true_auc']:.3f} (validation)")  # fmt: skip
    return results


if __name__ == "__main__":
    main()
