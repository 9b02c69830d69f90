"""One module per ``jetfm`` subcommand; see :mod:`jetfm.cli` for the protocol."""
