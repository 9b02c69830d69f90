"""Publish a checkpoint folder on the Hugging Face Hub, with its generated model card.

What it shows: the checks every pushed folder passes (safetensors weights with a valid
header, a readable ``config.json``; pickles are never sent), the model card generated from
what the folder records (:func:`jetfm.model_card.write_model_card`), the exact files an
upload sends (JSON, safetensors, the card — never ``checkpoint-*`` training state) and, when
asked, the upload itself (:func:`jetfm.publish.push_folder`) and loading it back by repo id.

By default it is a **dry run**: it copies the files that would be uploaded to
``OUTPUT/<repo name>/`` and prints the card, with no network. It pushes when ``--push`` is
given or ``$HF_ENDPOINT`` is set (e.g. a private Hub), unless ``--dry-run``::

    python examples/push_to_hub.py                                   # dry run, shipped tiny model
    python examples/push_to_hub.py runs/quickstart/model --repo-id me/my-tagger --push
    HF_ENDPOINT=https://hub.example.org HF_TOKEN=... python examples/push_to_hub.py DIR --repo-id org/name

The token comes from ``--token``, ``$HF_TOKEN`` or ``hf auth login``.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shutil
import tempfile
from pathlib import Path


def upload_plan(folder: Path) -> list[Path]:
    """Files (relative) an upload of ``folder`` sends: the checkpoint patterns, minus the
    ignored ones — the same pattern lists :func:`jetfm.publish.push_folder` hands to the Hub."""
    from jetfm.hub import CHECKPOINT_PATTERNS, PUSH_IGNORE_PATTERNS

    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if any(fnmatch.fnmatch(rel, p) for p in CHECKPOINT_PATTERNS) and not any(
            fnmatch.fnmatch(rel, p) for p in PUSH_IGNORE_PATTERNS
        ):
            files.append(Path(rel))
    return files


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default="mpm-flow-tiny",
                        help="checkpoint folder, or a shipped/Hub name")  # fmt: skip
    parser.add_argument("--repo-id", default="my-org/jetfm-demo", help="ORG/NAME on the Hub")
    parser.add_argument("--output", default="runs/push_dry_run", help="dry-run destination")
    parser.add_argument("--push", action="store_true", help="upload (also implied by $HF_ENDPOINT)")
    parser.add_argument("--dry-run", action="store_true", help="never upload")
    parser.add_argument("--token", default=None)
    parser.add_argument("--private", action="store_true")
    args = parser.parse_args(argv)

    from jetfm.hub import check_checkpoint_folder, resolve_pretrained
    from jetfm.model_card import write_model_card
    from jetfm.publish import push_folder

    push = (args.push or bool(os.environ.get("HF_ENDPOINT"))) and not args.dry_run
    source = resolve_pretrained(args.folder)
    check_checkpoint_folder(source)  # CheckpointError naming the file if unusable
    with tempfile.TemporaryDirectory(prefix="jetfm-push-") as tmp:
        # work on a copy: the card is regenerated for this repo id without touching the source
        staging = Path(tmp) / Path(args.repo_id).name
        shutil.copytree(source, staging)
        write_model_card(staging, repo_id=args.repo_id, overwrite=True)
        files = upload_plan(staging)
        print(f"{len(files)} files to upload to {args.repo_id}:", *files, sep="\n  ")
        if not push:
            dest = Path(args.output) / staging.name
            shutil.rmtree(dest, ignore_errors=True)
            for rel in files:
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(staging / rel, dest / rel)
            print((dest / "README.md").read_text(encoding="utf-8")[:1500])
            print(f"dry run: wrote the upload to {dest} (pass --push to upload)")
            return {"pushed": False, "folder": dest, "files": files}
        info = push_folder(staging, args.repo_id, token=args.token,
                           private=True if args.private else None, write_card=False)  # fmt: skip
    print(f"pushed to {args.repo_id}: {getattr(info, 'commit_url', info)}")
    # load it back by repo id, as a user would
    from transformers import AutoConfig

    import jetfm.modeling  # noqa: F401  (registers the config class)

    back = resolve_pretrained(args.repo_id, token=args.token, force_download=True)
    config = AutoConfig.from_pretrained(str(back))
    print(f"loaded back {args.repo_id}: {config.architectures}, {config.size} size")
    return {"pushed": True, "folder": back, "files": files}


if __name__ == "__main__":
    main()
