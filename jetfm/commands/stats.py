"""Fit the normalisation statistics of a dataset and save them as a JetProcessor.

Reads the files once (streaming) and writes ``preprocessor_config.json`` to ``--output``,
loadable with ``JetProcessor.from_pretrained(DIR)`` and by the training commands.
"""

from __future__ import annotations

import argparse

from jetfm.commands import add_branch_map_argument

NAME = "stats"
HELP = "fit per-feature mean/std over jet files and save them (preprocessor_config.json)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from jetfm.option_checks import positive_int

    parser.add_argument(
        "--data",
        required=True,
        nargs="+",
        help="ROOT, parquet or HDF5 files, globs or directories, or data sets (qg:train)",
    )
    parser.add_argument("--output", required=True, help="directory to write the processor to")
    parser.add_argument(
        "--feature-groups",
        nargs="+",
        default=None,
        help="feature groups to read (default: every group the files have)",
    )
    parser.add_argument(
        "--max-particles", type=positive_int, default=128, help="leading particles kept"
    )
    add_branch_map_argument(parser)
    parser.add_argument("--labels", nargs="+", default=None, help="class names (default: all)")
    parser.add_argument("--nan-policy", choices=("raise", "skip"), default="raise")
    parser.add_argument(
        "--max-jets", type=positive_int, default=None, help="fit on the first N jets"
    )
    parser.add_argument(
        "--step-size", type=positive_int, default=20_000, help="jets read per chunk"
    )


def run(args: argparse.Namespace) -> int:
    from jetfm.commands import resolve_data_options
    from jetfm.data import BranchMapping, JetProcessor, detect_feature_groups
    from jetfm.data.layouts import mapping_from_option

    resolve_data_options(args, "data")
    mapping = mapping_from_option(args.branch_map) or BranchMapping()
    groups = args.feature_groups or detect_feature_groups(args.data, mapping)
    processor = JetProcessor(
        feature_groups=groups,
        max_particles=args.max_particles,
        branch_mapping=mapping,
        label_names=args.labels,
        nan_policy=args.nan_policy,
    )
    processor.fit(args.data, step_size=args.step_size, max_jets=args.max_jets)
    processor.save_pretrained(args.output)
    print(f"{processor} → {args.output}")
    return 0
