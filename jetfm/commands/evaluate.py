"""Evaluate a fine-tuned checkpoint on labelled ROOT files.

Tagging: accuracy, macro one-vs-rest AUC and the QCD rejection 1/ε_B at 50 % and 30 % signal
efficiency per class (CWoLa models: on the true signal/background labels), with its
statistical uncertainty (68 % Clopper-Pearson interval on the QCD efficiency) or, where no
QCD jet passes, the 95 % CL lower bound the test set allows ("> 67" for 0 of 200). Track ID:
accuracy, balanced accuracy, per-class recall. Vertexing: adjusted Rand index per jet,
fraction of perfectly reconstructed jets, b-vertex efficiency/purity, split by flavour.
Prints a table, writes the metrics as JSON and, with --plots, ROC / confusion-matrix /
ARI plots as PNG (--style CMS or ATLAS: the experiment's style, through mplhep). A
pre-training checkpoint with its MPM decoder (a `jetfm pretrain` output, or a release such
as mpm-flow-base) gets the masked-particle reconstruction check instead:
how well the jets rebuilt from their visible and sampled particles recover their true mass
(the data need no labels).
"""

from __future__ import annotations

import argparse

from jetfm.commands import add_branch_map_argument
from jetfm.plots import STYLES

NAME = "evaluate"
HELP = "compute test metrics (and plots) of a fine-tuned or pre-trained model"


def add_style_argument(parser: argparse.ArgumentParser) -> None:
    """``--style`` of every command that draws plots."""
    parser.add_argument(
        "--style",
        default="default",
        choices=STYLES,
        help="plot style: CMS or ATLAS (the experiment's style, needs mplhep), or plain matplotlib",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from jetfm.option_checks import positive_int

    parser.add_argument(
        "--model",
        required=True,
        help="fine-tuned checkpoint (folder, short name or Hub id), or a pre-training one",
    )
    parser.add_argument(
        "--data", required=True, help="labelled ROOT, parquet or HDF5 files (path, glob, dir)"
    )
    parser.add_argument("--plots", default=None, help="directory for PNG plots")
    add_style_argument(parser)
    parser.add_argument("--output", default="metrics.json", help="metrics JSON file")
    parser.add_argument("--batch-size", type=positive_int, default=256, help="jets per batch")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_branch_map_argument(parser)
    parser.add_argument(
        "--skip-other-classes",
        action="store_true",
        help="a tagger of some classes (finetune --classes) on files that hold others too: "
        "drop the other classes' jets (default: an error naming the file and entry)",
    )


def run(args: argparse.Namespace) -> int:
    from jetfm.data import BranchMapping
    from jetfm.evaluation import evaluate_checkpoint
    from jetfm.metrics import format_table, write_metrics

    metrics = evaluate_checkpoint(
        args.model, args.data, plots_dir=args.plots, batch_size=args.batch_size,
        progress=not args.no_progress,
        other_classes="skip" if args.skip_other_classes else "raise", style=args.style,
        mapping=BranchMapping.from_option(args.branch_map),
    )  # fmt: skip
    print(format_table(metrics))
    path = write_metrics(metrics, args.output)
    print(f"wrote {path}" + (f" and plots in {args.plots}" if args.plots else ""))
    return 0
