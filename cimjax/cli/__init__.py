"""The ``cimjax`` command line; the commands are in :mod:`cimjax.cli.main`."""

import sys

from cimjax.interrupts import INTERRUPTED


def main() -> None:
    """The ``cimjax`` console script. Ctrl-C while the command line is still loading (its imports, typer
    building the commands) ends it as Ctrl-C does once a command runs: status 130, without a traceback."""
    try:
        from cimjax.cli.main import app

        app()
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED)
