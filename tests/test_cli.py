"""The console script: --help, --version, every subcommand has help."""

from __future__ import annotations

import subprocess
import sys

from jetfm.cli import build_parser, main
from jetfm.version import __version__


def test_version_and_help(capsys):
    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert __version__ in capsys.readouterr().out
    assert main([]) == 0
    assert "jetfm" in capsys.readouterr().out


def test_console_script_runs():
    out = subprocess.run(
        [sys.executable, "-m", "jetfm.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "usage: jetfm" in out.stdout


def test_every_subcommand_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, cmd in sub.choices.items():
        text = cmd.format_help()
        assert name in text and len(text) > 80
