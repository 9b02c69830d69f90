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
import json
from pathlib import Path

from jetfm.commands import add_branch_map_argument
from jetfm.plots import STYLES

NAME = "evaluate"
HELP = "compute test metrics (and plots) of a fine-tuned or pre-trained model"
METRICS_FILE = "metrics.json"


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
        "--data",
        required=True,
        help="labelled ROOT, parquet or HDF5 files (path, glob, dir) or a data set (top:test)",
    )
    parser.add_argument("--plots", default=None, help="directory for PNG plots")
    add_style_argument(parser)
    parser.add_argument(
        "--output",
        default=None,
        help="metrics JSON file (default: metrics.json in the --plots folder, else in "
        "MODEL/evaluation/ for a local model, else in ./NAME-evaluation/; another run's file "
        "there is never replaced: a numbered name is used)",
    )
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
    from jetfm.commands import resolve_data_options
    from jetfm.data.layouts import mapping_from_option
    from jetfm.evaluation import evaluate_checkpoint
    from jetfm.metrics import format_table, write_metrics

    resolve_data_options(args, "data")
    metrics = evaluate_checkpoint(
        args.model, args.data, plots_dir=args.plots, batch_size=args.batch_size,
        progress=not args.no_progress,
        other_classes="skip" if args.skip_other_classes else "raise", style=args.style,
        mapping=mapping_from_option(args.branch_map),
    )  # fmt: skip
    print(format_table(metrics))
    metrics = {**metrics, "model": str(args.model), "data": str(args.data)}
    path = write_metrics(metrics, metrics_path(args.output, args.model, args.plots, metrics))
    print(f"wrote {path}" + (f" and plots in {args.plots}" if args.plots else ""))
    return 0


def default_metrics_path(model: str, plots: str | None) -> Path:
    """Where ``jetfm evaluate`` writes its metrics by default: beside the plots, else in the
    local model folder's ``evaluation/``, else in ``./NAME-evaluation/`` (never the current
    folder itself, where the last run's file would be replaced unseen)."""
    if plots:
        return Path(plots) / METRICS_FILE
    if Path(model).is_dir():
        return Path(model) / "evaluation" / METRICS_FILE
    name = str(model).rstrip("/").replace("/", "--")
    return Path(f"{name}-evaluation") / METRICS_FILE


def metrics_path(output: str | None, model: str, plots: str | None, metrics: dict) -> Path:
    """``output`` as given, else :func:`default_metrics_path` — unless that file holds the
    metrics of another model or data set: then the first free ``metrics-N.json`` beside it."""
    if output:
        return Path(output)
    path = default_metrics_path(model, plots)
    candidate, n = path, 1
    while candidate.is_file() and not _same_run(candidate, metrics):
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def _same_run(path: Path, metrics: dict) -> bool:
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(old, dict) and all(old.get(k) == metrics[k] for k in ("model", "data"))
