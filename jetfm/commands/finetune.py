"""Fine-tune a pretrained jetfm model on a task and save the fine-tuned checkpoint.

Tasks: tagging (jet classes from the label_* branches), cwola (weakly supervised tagging
from two mixtures of --signal and --background jets with signal fractions --fractions),
track-id (per-track origin, part_origin) and vertexing (tracks grouped into vertices,
part_vtx). Modes: frozen (only the head learns), full (backbone frozen first, then its
learning rate ramped up to the head's) and lora (adapters, needs jetfm[lora]).
--from-scratch trains the same architecture from random weights, the baseline to compare
against. The output folder holds the model, its processor, the run config and
finetune_metrics.json (validation metrics of the best checkpoint).

Defaults that suit small and large label sets alike: the batch is a tenth of the training
jets (16 to 256), the run 10 epochs but at least 250 optimiser steps (1,000 jets: 250 steps
of 100 jets), LR 2e-3 for pre-trained and from-scratch models (5e-4 for a track-id head that
starts from a pre-trained track-origin head); 10 validation passes, stopping
after 3 without improvement, and the best checkpoint restored at the end.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from jetfm.commands import add_branch_map_argument, add_run_output_arguments

if TYPE_CHECKING:
    from jetfm.finetuning import FinetuneArguments

NAME = "finetune"
HELP = "fine-tune a pretrained model for tagging, CWoLa, track ID or vertex finding"


def _groups(text: str) -> list[str]:
    return [g.strip() for g in text.split(",") if g.strip()]


def _fractions(text: str) -> list[float]:
    """``--fractions f1,f2``: two different signal fractions in [0, 1]."""
    from jetfm.option_checks import comma_list, fraction

    values = comma_list(fraction, count=2)(text)
    if values[0] == values[1]:
        raise argparse.ArgumentTypeError(f"must be two different fractions, got {text!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from jetfm.defaults import (
        FINETUNE_EPOCHS,
        FINETUNE_EVALS,
        FINETUNE_FREEZE_FRACTION,
        FINETUNE_LR,
        FINETUNE_MAX_BATCH_SIZE,
        FINETUNE_MIN_BATCH_SIZE,
        FINETUNE_MIN_STEPS,
        FINETUNE_MODES,
        FINETUNE_PATIENCE,
        FINETUNE_PRETRAINED_HEAD_LR,
        FINETUNE_RAMP_FRACTION,
    )
    from jetfm.option_checks import (
        fraction,
        non_negative_float,
        non_negative_int,
        positive_float,
        positive_int,
        seed,
        steps,
        unit_fraction,
    )
    from jetfm.tasks import TASK_NAMES

    parser.add_argument(
        "--model",
        required=True,
        help="pretrained checkpoint (directory or name), or a size preset "
        "(tiny/small/base, implies --from-scratch)",
    )
    parser.add_argument("--task", required=True, choices=TASK_NAMES, help="what to learn")
    parser.add_argument(
        "--train",
        required=True,
        help="training ROOT, parquet or HDF5 files (path, glob, dir) or a data set, e.g. "
        "top:train (see jetfm datasets list)",
    )
    parser.add_argument(
        "--val", required=True, help="validation files (early stopping) or a data set (top:val)"
    )
    parser.add_argument("--output", required=True, help="output checkpoint directory")
    parser.add_argument(
        "--mode",
        default="full",
        choices=FINETUNE_MODES,
        help="fine-tuning mode: full (backbone LR ramp), frozen (head only), lora, or probe (a "
        "logistic regression on the frozen backbone, L2 chosen on --val: no LR, seconds; for "
        "few labels and a checkpoint pre-trained with --truth class)",
    )
    parser.add_argument(
        "--from-scratch",
        action="store_true",
        help="same architecture and config, random weights (baseline)",
    )
    parser.add_argument(
        "--max-train-jets",
        type=positive_int,
        default=None,
        help="random subset of this many training jets (data efficiency)",
    )
    parser.add_argument(
        "--epochs",
        type=positive_float,
        default=None,
        help=f"training epochs (default: {FINETUNE_EPOCHS:g}, but at least "
        f"{FINETUNE_MIN_STEPS} optimiser steps)",
    )
    parser.add_argument(
        "--max-steps",
        type=steps,
        default=-1,
        help="optimiser steps (overrides --epochs; -1: use --epochs)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="jets per batch (default: a tenth of the training jets, "
        f"{FINETUNE_MIN_BATCH_SIZE} to {FINETUNE_MAX_BATCH_SIZE})",
    )
    parser.add_argument(
        "--lr",
        type=positive_float,
        default=None,
        help=f"peak learning rate of the head (default: {FINETUNE_LR:g}; "
        f"{FINETUNE_PRETRAINED_HEAD_LR:g} for a head that starts from a pre-trained truth head)",
    )
    parser.add_argument("--seed", type=seed, default=42, help="random seed")
    parser.add_argument(
        "--feature-groups",
        type=_groups,
        default=None,
        help="input groups, e.g. kinematics,pid,tracks (default: all shared "
        "by the model and the data)",
    )
    parser.add_argument(
        "--classes",
        type=_groups,
        default=None,
        help="tagging: learn only these classes, e.g. QCD,Tbqq (default: every label_* "
        "branch); a jet of another class is an error unless --skip-other-classes",
    )
    parser.add_argument(
        "--skip-other-classes",
        action="store_true",
        help="with --classes: drop the jets of the other classes (files that mix them all)",
    )
    parser.add_argument("--signal", default=None, help="cwola: signal class name (e.g. Tbqq)")
    parser.add_argument("--background", default=None, help="cwola: background class (e.g. QCD)")
    parser.add_argument(
        "--fractions",
        type=_fractions,
        default="0.2,0.6",
        help="cwola: signal fractions of the two mixtures, f1,f2 (f1 ≠ f2)",
    )
    parser.add_argument(
        "--head-hidden-size",
        type=non_negative_int,
        default=None,
        help="head MLP width (0: linear probe; default: backbone width)",
    )
    parser.add_argument(
        "--freeze-fraction",
        type=fraction,
        default=FINETUNE_FREEZE_FRACTION,
        help="full mode: fraction of steps with the backbone frozen",
    )
    parser.add_argument(
        "--ramp-fraction",
        type=fraction,
        default=FINETUNE_RAMP_FRACTION,
        help="full mode: fraction of steps ramping the backbone LR up",
    )
    parser.add_argument(
        "--backbone-lr-scale",
        type=non_negative_float,
        default=1.0,
        help="full mode: backbone LR after the ramp, as a multiple of the head's LR",
    )
    parser.add_argument(
        "--layer-lr-decay",
        type=unit_fraction,
        default=1.0,
        help="full mode: each encoder block learns at this × the LR of the block above "
        "(layer-wise LR decay in (0, 1], e.g. 0.7; 1: off)",
    )
    parser.add_argument("--lora-rank", type=positive_int, default=8, help="lora mode: adapter rank")
    parser.add_argument(
        "--patience",
        type=non_negative_int,
        default=None,
        help=f"early stopping: evaluations without improvement (default: {FINETUNE_PATIENCE}; "
        "0: off); the best "
        "checkpoint is restored either way",
    )
    parser.add_argument(
        "--evals",
        type=positive_int,
        default=None,
        help=f"validation passes per run (default: {FINETUNE_EVALS})",
    )
    add_branch_map_argument(parser)
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model (static shapes, one graph per bucket of padded lengths)",
    )
    parser.add_argument(
        "--new-head",
        action="store_true",
        help="track-id: a new random head, even where --model has a pre-trained "
        "track-origin head (by default the head starts from it)",
    )
    parser.add_argument(
        "--refit-processor",
        action="store_true",
        help="fit the normalisation statistics on --train when the --model checkpoint has no "
        "preprocessor_config.json (otherwise an error: its backbone learnt on other ones)",
    )
    add_run_output_arguments(parser)


def finetune_arguments(args: argparse.Namespace) -> FinetuneArguments:
    """The :class:`~jetfm.finetuning.FinetuneArguments` of a parsed ``jetfm finetune``
    command line; options left unset take their defaults (kept in one place, the dataclass)."""
    from jetfm.commands import resolve_data_options
    from jetfm.finetuning import FinetuneArguments

    resolve_data_options(args, "train", "val")
    values: dict[str, Any] = dict(
        model=args.model,
        task=args.task,
        train=args.train,
        val=args.val,
        output_dir=args.output,
        mode=args.mode,
        from_scratch=args.from_scratch,
        max_train_jets=args.max_train_jets,
        epochs=args.epochs,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        seed=args.seed,
        pretrained_head=not args.new_head,
        feature_groups=args.feature_groups,
        classes=args.classes,
        other_classes="skip" if args.skip_other_classes else "raise",
        signal=args.signal,
        background=args.background,
        fractions=args.fractions,
        freeze_fraction=args.freeze_fraction,
        ramp_fraction=args.ramp_fraction,
        backbone_lr_scale=args.backbone_lr_scale,
        layer_lr_decay=args.layer_lr_decay,
        lora_rank=args.lora_rank,
        config_overrides={}
        if args.head_hidden_size is None
        else {"head_hidden_size": args.head_hidden_size},
        mapping=args.branch_map,
        compile=args.compile,
        refit_processor=args.refit_processor,
        keep_checkpoints=args.keep_checkpoints,
    )
    if args.report_to:
        values["report_to"] = args.report_to
    if args.lr is not None:
        values["lr"] = args.lr
    if args.evals is not None:
        values["evals_per_run"] = args.evals
    if args.patience is not None:
        values["early_stopping_patience"] = args.patience or None  # 0: off
    return FinetuneArguments(**values)


def run(args: argparse.Namespace) -> int:
    from jetfm.finetuning import finetune
    from jetfm.metrics import format_table

    result = finetune(finetune_arguments(args))
    print(format_table(result.metrics))
    print(f"saved the fine-tuned model to {result.output_dir}")
    return 0
