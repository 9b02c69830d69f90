"""Quickstart with the Python API: pretrained checkpoint → labelled jets → tagger → metrics.

What it shows: the three calls behind ``jetfm quickstart``, spelled out —
:func:`jetfm.generation.generate_dataset` (Pythia 8 jets; train/val/test from different
seeds), :func:`jetfm.finetuning.finetune` (from the shipped ``mpm-truth-det-base``
checkpoint, by name, offline) and :func:`jetfm.evaluation.evaluate_checkpoint` (metrics
table, ROC and confusion-matrix plots).

Run (needs ``pip install "jetfm[generate]"`` unless you pass ``--data``)::

    python examples/quickstart.py --output runs/quickstart                 # ~5 min on 2 cores
    python examples/quickstart.py --jets-per-class 5000 --max-steps 3000   # real size

``--data DIR`` uses existing JetClass-layout files in ``DIR/train``, ``DIR/val`` and
``DIR/test`` instead of generating.
"""

from __future__ import annotations

import argparse
from pathlib import Path

SEEDS = {"train": 101, "val": 102, "test": 103}


def get_data(args: argparse.Namespace) -> dict[str, str]:
    """``{split: directory}``: the given ``--data`` folders, or freshly generated jets."""
    if args.data:
        return {split: str(Path(args.data) / split) for split in SEEDS}
    from jetfm.generation import generate_dataset  # needs jetfm[generate]

    sizes = {"train": args.jets_per_class, "val": args.jets_per_class // 4,
             "test": args.jets_per_class // 2}  # fmt: skip
    out = {}
    for split, seed in SEEDS.items():
        out[split] = str(Path(args.output) / "data" / split)
        generate_dataset(args.classes.split(","), sizes[split], out[split], seed=seed,
                         chunk_size=sizes[split], workers=2)  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="runs/quickstart")
    parser.add_argument("--model", default="mpm-truth-det-base", help="pretrained checkpoint")
    parser.add_argument("--data", default=None, help="folder with train/ val/ test/ ROOT files")
    parser.add_argument("--classes", default="QCD,Hbb,Hcc,Hgg,Zqq,Wqq,Tbqq,Tbl")
    parser.add_argument("--jets-per-class", type=int, default=400)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)

    from jetfm.evaluation import evaluate_checkpoint
    from jetfm.finetuning import finetune
    from jetfm.metrics import format_table, write_metrics

    data = get_data(args)
    out = Path(args.output)
    result = finetune(args.model, "tagging", data["train"], data["val"], out / "model",
                      mode="full", max_steps=args.max_steps, batch_size=args.batch_size,
                      lr=1e-3, early_stopping_patience=None)  # fmt: skip
    print("validation:", {k: result.metrics[k] for k in ("accuracy", "auc")})

    metrics = evaluate_checkpoint(out / "model", data["test"], plots_dir=out / "plots")
    write_metrics(metrics, out / "metrics.json")
    print(format_table(metrics))
    print(f"plots in {out / 'plots'}")
    return metrics


if __name__ == "__main__":
    main()
