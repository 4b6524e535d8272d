"""calicoctl's argument parser, shared by the top-level command line and every subcommand."""

from __future__ import annotations

import argparse
import sys

from pycalico.ctl.errors import UsageError


class ArgParser(argparse.ArgumentParser):
    """argparse that reports problems as UsageError instead of exiting with code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            sys.stderr.write(message)
        raise SystemExit(status)
