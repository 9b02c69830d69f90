"""(Re)generate the model card README.md of a checkpoint folder from what the folder records.

Reads config.json, the safetensors header, preprocessor_config.json, run_config.json /
training_args.json (training record), provenance.json (data, commands, hardware) and
metrics.json (downstream results). A hand-written README.md is kept unless --force.
"""

from __future__ import annotations

import argparse

NAME = "card"
HELP = "regenerate the model card (README.md) of a checkpoint folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="checkpoint folder")
    parser.add_argument("--name", default=None, help="checkpoint name (default: the folder's)")
    parser.add_argument("--repo-id", default=None, help="Hub repo id shown in the usage example")
    parser.add_argument("--force", action="store_true", help="overwrite a hand-written README.md")
    parser.add_argument("--print", action="store_true", help="print the card instead of writing")


def run(args: argparse.Namespace) -> int:
    from jetfm.model_card import collect_facts, render_model_card, write_model_card

    if args.print:
        print(render_model_card(collect_facts(args.dir, name=args.name, repo_id=args.repo_id)))
        return 0
    path = write_model_card(args.dir, name=args.name, repo_id=args.repo_id, overwrite=args.force)
    if path is None:
        print(f"kept the hand-written {args.dir}/README.md (use --force to replace it)")
        return 1
    print(f"wrote {path}")
    return 0
