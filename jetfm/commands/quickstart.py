"""The whole path in one command, offline: fine-tune the shipped pretrained checkpoint as a
jet tagger on freshly generated Pythia jets and evaluate it.

Steps: load the pretrained checkpoint (shipped with jetfm, no network needed); generate
train / validation / test jets of every class the generator supports, from different seeds
(needs jetfm[generate]); fine-tune a tagger for --max-steps steps (--mode frozen: the
pretrained encoder as it is); print the test metrics and write OUTPUT/metrics.json,
OUTPUT/plots/roc.png and OUTPUT/plots/confusion_matrix.png. The defaults take about 2 minutes
on 2 idle CPU cores; re-running reuses the generated jets.
"""

from __future__ import annotations

import argparse

NAME = "quickstart"
HELP = "generate jets, fine-tune the pretrained model as a tagger, evaluate (offline demo)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from jetfm.commands.evaluate import add_style_argument
    from jetfm.defaults import FINETUNE_MODES
    from jetfm.option_checks import int_at_least, positive_float, positive_int, seed
    from jetfm.quickstart import (
        DEFAULT_JETS_PER_CLASS,
        DEFAULT_LR,
        DEFAULT_MAX_STEPS,
        DEFAULT_MODE,
        DEFAULT_MODEL,
        DEFAULT_OUTPUT,
    )

    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="output folder")
    parser.add_argument(
        "--jets-per-class",
        type=int_at_least(4),
        default=DEFAULT_JETS_PER_CLASS,
        help="training jets per class (validation: a quarter of it, test: as many)",
    )
    parser.add_argument(
        "--max-steps",
        type=positive_int,
        default=DEFAULT_MAX_STEPS,
        help="fine-tuning optimiser steps",
    )
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="pretrained checkpoint (shipped name, folder, Hub id)",
    )
    parser.add_argument(
        "--mode",
        choices=FINETUNE_MODES,
        default=DEFAULT_MODE,
        help="fine-tuning mode (default: probe, a logistic regression on the frozen encoder, "
        "for a checkpoint pre-trained with a jet-class objective such as the default model; "
        "frozen otherwise: the encoder as it is, pooling and head learn); full: everything "
        "learns, about three times slower per step",
    )
    parser.add_argument("--lr", type=positive_float, default=DEFAULT_LR, help="learning rate")
    parser.add_argument(
        "--batch-size", type=positive_int, default=64, help="jets per training step"
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="generator processes (default: up to 4)",
    )
    parser.add_argument("--seed", type=seed, default=42, help="fine-tuning seed")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    add_style_argument(parser)


def run(args: argparse.Namespace) -> int:
    from jetfm.quickstart import run_quickstart

    run_quickstart(
        args.output,
        model=args.model,
        jets_per_class=args.jets_per_class,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        mode=args.mode,
        workers=args.workers,
        seed=args.seed,
        progress=not args.no_progress,
        style=args.style,
    )
    return 0
