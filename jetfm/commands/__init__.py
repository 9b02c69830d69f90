"""One module per ``jetfm`` subcommand; see :mod:`jetfm.cli` for the protocol."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jetfm.pretraining import PretrainArguments


def add_branch_map_argument(parser: argparse.ArgumentParser) -> None:
    """``--branch-map YAML``: where the quantities live in the input files (any format)."""
    parser.add_argument(
        "--branch-map",
        default=None,
        help="YAML file mapping the input's branch / column / dataset names and layout "
        "(default: the model processor's mapping, else the JetClass names)",
    )


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The data and training-length options of ``jetfm pretrain`` and ``jetfm tokenizer train``
    (the fields of :class:`jetfm.PretrainArguments` they share)."""
    from jetfm.option_checks import positive_float, positive_int, seed, steps
    from jetfm.pretraining import BASE_LR

    parser.add_argument("--data", required=True, help="training ROOT files (glob, dir or file)")
    parser.add_argument("--val", default=None, help="validation ROOT files (glob)")
    parser.add_argument("--output", required=True, help="output checkpoint directory")
    parser.add_argument(
        "--groups",
        default="auto",
        help="comma-separated feature groups (kinematics,pid,tracks); auto = all the files have",
    )
    parser.add_argument(
        "--max-particles", type=positive_int, default=128, help="constituents kept per jet"
    )
    parser.add_argument(
        "--streaming", action="store_true", help="stream the files (needs --max-steps)"
    )
    parser.add_argument(
        "--max-steps", type=steps, default=-1, help="optimiser steps (-1: use --epochs)"
    )
    parser.add_argument(
        "--epochs", type=positive_float, default=1.0, help="epochs when --max-steps is -1"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=256, help="jets per device and step"
    )
    parser.add_argument(
        "--lr",
        type=positive_float,
        default=None,
        help=f"peak learning rate (default: {BASE_LR:g} at batch 256, scaled by "
        "sqrt(batch/256) for other batch sizes; see docs/guide/pretraining.md)",
    )
    parser.add_argument("--seed", type=seed, default=42, help="random seed")
    parser.add_argument(
        "--save-steps", type=positive_int, default=500, help="checkpoint every N steps"
    )
    parser.add_argument("--logging-steps", type=positive_int, default=50, help="log every N steps")
    parser.add_argument("--resume", action="store_true", help="resume from the last checkpoint-*")
    add_branch_map_argument(parser)


def pretrain_arguments(args: argparse.Namespace, **values: Any) -> PretrainArguments:
    """The :class:`~jetfm.pretraining.PretrainArguments` of a parsed ``jetfm pretrain`` (or
    ``jetfm tokenizer train``) command line: ``--output`` is ``output_dir``, ``--branch-map``
    the ``mapping`` it reads, every other option the field of its name; ``values`` set
    fields the command line lacks."""
    from jetfm.pretraining import PretrainArguments

    return PretrainArguments.from_namespace(
        args, output_dir=args.output, mapping=getattr(args, "branch_map", None), **values
    )
