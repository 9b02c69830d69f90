"""Upload a checkpoint folder to the Hugging Face Hub, model card included.

Checks the folder first (safetensors weights, valid config.json; pickles are never sent),
refreshes its generated README.md for the repo id, creates the repo if needed and uploads
the checkpoint files (JSON, safetensors, the card) as one commit. The token comes from
--token, $HF_TOKEN or `hf auth login`.
"""

from __future__ import annotations

import argparse

NAME = "push"
HELP = "upload a checkpoint folder (with its model card) to the Hugging Face Hub"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="checkpoint folder")
    parser.add_argument("--repo-id", required=True, help="ORG/NAME on the Hub")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--revision", default=None, help="branch to push to (created if needed)")
    parser.add_argument("--token", default=None, help="Hub token (default: $HF_TOKEN / login)")
    parser.add_argument("--message", default=None, help="commit message")
    parser.add_argument("--no-card", action="store_true", help="do not refresh README.md")


def run(args: argparse.Namespace) -> int:
    from jetfm.publish import push_folder

    info = push_folder(
        args.dir,
        args.repo_id,
        private=True if args.private else None,
        revision=args.revision,
        token=args.token,
        commit_message=args.message,
        write_card=not args.no_card,
    )
    print(f"pushed {args.dir} to {args.repo_id}: {info}")
    return 0
