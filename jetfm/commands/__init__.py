"""One module per ``jetfm`` subcommand; see :mod:`jetfm.cli` for the protocol."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jetfm.pretraining import PretrainArguments


def add_branch_map_argument(parser: argparse.ArgumentParser) -> None:
    """``--branch-map`` (also ``--layout``): a named layout of a public data set or a YAML
    mapping: where the quantities live in the input files (any format)."""
    parser.add_argument(
        "--branch-map",
        "--layout",
        dest="branch_map",
        default=None,
        metavar="LAYOUT_OR_YAML",
        help="the input's layout: a layout name (jetclass-root, jetclass2-parquet, "
        "toptag-pandas-h5, toptag-padded-h5, qg-npz, omnilearned-h5, jetnet-h5, "
        "atlas-toptag-h5, aspen-h5) or a YAML file mapping branch / column / dataset names "
        "(default: the model processor's mapping, else the JetClass names)",
    )


def add_run_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``--report-to`` and ``--keep-checkpoints``, shared by the training commands."""
    parser.add_argument(
        "--report-to",
        type=_names,
        default=None,
        help="also report the run to these Trainer integrations, e.g. tensorboard or "
        "wandb,mlflow (training_log.csv and training_curves.png are written either way)",
    )
    parser.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep the intermediate checkpoint-* folders (the two newest) after the run has "
        "finished",
    )


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def resolve_data_options(args: argparse.Namespace, *names: str) -> None:
    """Data-set references among the data options of a parsed command line (``--train
    top:train``, ``--data qg:test``; see :func:`jetfm.data.download.resolve_data_argument`)
    become their local files, downloaded first when missing; the data set's layout becomes
    ``args.branch_map`` (a :class:`~jetfm.data.BranchMapping`) unless ``--branch-map`` was
    given. Options that name files are left as they are."""
    from jetfm.data.download import is_data_reference

    values = {n: getattr(args, n, None) for n in names}
    given = {n: v for n, v in values.items() if v is not None}
    listed = {n: [v] if isinstance(v, str) else list(v) for n, v in given.items()}
    if not any(is_data_reference(str(x)) for v in listed.values() for x in v):
        return
    import logging

    from jetfm.data.download import resolve_data_argument
    from jetfm.data.registry import layout_mapping
    from jetfm.errors import DataError

    layouts = {}
    for name, value in given.items():
        paths, layout = resolve_data_argument(value)
        setattr(args, name, paths[0] if isinstance(value, str) and len(paths) == 1 else paths)
        if layout is not None:
            layouts[name] = layout
    if len(set(layouts.values())) > 1:
        shown = ", ".join(f"--{n.replace('_', '-')}: {v}" for n, v in layouts.items())
        raise DataError(f"the data options name data sets of different layouts ({shown})")
    layout = next(iter(layouts.values()))
    if getattr(args, "branch_map", None) is not None:
        logging.getLogger(__name__).info(
            "--branch-map %s replaces the data set's layout %r", args.branch_map, layout
        )
        return
    args.branch_map = layout_mapping(layout)


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The data and training-length options of ``jetfm pretrain`` and ``jetfm tokenizer train``
    (the fields of :class:`jetfm.PretrainArguments` they share)."""
    from jetfm.option_checks import positive_float, positive_int, seed, steps
    from jetfm.pretraining import BASE_LR

    parser.add_argument(
        "--data",
        required=True,
        help="training files (glob, dir or file) or a data set, e.g. jetclass:train",
    )
    parser.add_argument(
        "--val", default=None, help="validation files (glob) or a data set, e.g. jetclass:val"
    )
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
    add_run_output_arguments(parser)


def pretrain_arguments(args: argparse.Namespace, **values: Any) -> PretrainArguments:
    """The :class:`~jetfm.pretraining.PretrainArguments` of a parsed ``jetfm pretrain`` (or
    ``jetfm tokenizer train``) command line: ``--output`` is ``output_dir``, ``--branch-map``
    the ``mapping`` it reads, every other option the field of its name; ``values`` set
    fields the command line lacks."""
    from jetfm.pretraining import PretrainArguments

    resolve_data_options(args, "data", "val")
    return PretrainArguments.from_namespace(
        args, output_dir=args.output, mapping=getattr(args, "branch_map", None), **values
    )
