"""mkdocs hook: the CLI reference is generated from the argparse parsers at build time, so it
can never drift from the code. ``docs/cli.md`` holds the marker that is replaced."""

from __future__ import annotations

import argparse

MARKER = "<!-- cli-reference -->"


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
    return markdown
