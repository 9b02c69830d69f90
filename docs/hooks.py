"""mkdocs hook: the CLI reference is generated from the argparse parsers at build time, so it
can never drift from the code. ``docs/cli.md`` holds the marker that is replaced. Likewise
each ``<!-- dataset-info: NAME -->`` marker becomes the ``jetfm datasets info NAME`` text of
the registry (files, checksums, licence, citation)."""

from __future__ import annotations

import argparse
import re

MARKER = "<!-- cli-reference -->"
DATASET_MARKER = re.compile(r"<!-- dataset-info: ([a-z0-9_-]+) -->")


def _render() -> str:
    from jetfm.cli import build_parser

    parser = build_parser()
    parts = ["## jetfm", "", "```text", parser.format_help().rstrip(), "```", ""]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, cmd in sorted(sub.choices.items()):
        parts += [f"## jetfm {name}", "", "```text", cmd.format_help().rstrip(), "```", ""]
    return "\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, _render())
    if DATASET_MARKER.search(markdown):
        from jetfm.commands.datasets import render_info

        markdown = DATASET_MARKER.sub(
            lambda m: "```text\n" + render_info(m.group(1), local=False) + "\n```", markdown
        )
    return markdown
