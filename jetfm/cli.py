"""The ``jetfm`` command line.

A thin layer: each subcommand lives in its own module under :mod:`jetfm.commands` and exposes

* ``NAME`` (str) and ``HELP`` (one line),
* ``add_arguments(parser: argparse.ArgumentParser) -> None``,
* ``run(args: argparse.Namespace) -> int | None``.

Modules are discovered, so adding a command never touches this file. Heavy imports (torch,
transformers, numpy, pythia) belong inside ``run``: building the parser imports only light
modules (choices and defaults come from :mod:`jetfm.defaults`, :mod:`jetfm.tasks`, ...), so
``jetfm --help`` and ``jetfm --version`` answer in a fraction of a second
(``tests/test_imports.py`` checks that building the parser loads neither torch nor
transformers). Option values are checked while parsing (:mod:`jetfm.option_checks`); a bad
one, like any other usage error, is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import re
import sys
from collections.abc import Sequence

from jetfm.version import __version__


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default once, the real one: appended as ``(default: X)`` unless
    the help text already states it (``default: ...``, where the parser's default is a
    placeholder such as None), and never for None, flags (False), empty lists (repeatable
    options) or positional arguments."""

    _STATED = re.compile(r"\bdefault\s*[:)]|%\(default\)")

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if self._STATED.search(text):
            return text
        if (
            not action.option_strings
            or action.default is None
            or action.default is False
            or action.default is argparse.SUPPRESS
            or action.default == []
        ):
            return text
        return f"{text} (default: %(default)s)"


class ArgumentParser(argparse.ArgumentParser):
    """A parser whose usage errors are one line: ``jetfm CMD: error: MESSAGE``, exit status 2
    (the usage of a command with twenty options would bury the message)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _command_modules():
    import jetfm.commands as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        yield importlib.import_module(f"jetfm.commands.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with one subparser per command module (also used by the docs)."""
    parser = ArgumentParser(
        prog="jetfm",
        description="Masked Particle Modelling foundation models for jets: generate data, "
        "pre-train, fine-tune, evaluate, predict and publish.",
    )
    parser.add_argument("--version", action="version", version=f"jetfm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages as well")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        cmd = sub.add_parser(
            module.NAME,
            help=module.HELP,
            description=(module.__doc__ or module.HELP).strip(),
            formatter_class=HelpFormatter,
        )
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``jetfm ARGV``; returns the exit status (0, or 2 for a usage error or a
    :class:`~jetfm.errors.JetFMError`, which print one line on stderr)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, a usage error: already printed
        return 0 if done.code is None else done.code if isinstance(done.code, int) else 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    from jetfm.errors import JetFMError

    try:
        return int(args._run(args) or 0)
    except JetFMError as err:
        # Expected user errors (bad file, missing branch, ...) get one clear line, no traceback.
        print(f"jetfm {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
