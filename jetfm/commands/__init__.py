"""One module per ``jetfm`` subcommand; see :mod:`jetfm.cli` for the protocol."""

from __future__ import annotations

import argparse


def add_branch_map_argument(parser: argparse.ArgumentParser) -> None:
    """``--branch-map YAML``: where the quantities live in the input files (any format)."""
    parser.add_argument(
        "--branch-map",
        default=None,
        help="YAML file mapping the input's branch / column / dataset names and layout "
        "(default: the model processor's mapping, else the JetClass names)",
    )
