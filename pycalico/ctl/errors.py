"""calicoctl's error types: each carries the whole one-line message the user sees."""


class CtlError(Exception):
    """Printed as-is on stderr; exit code 1."""


class UsageError(CtlError):
    """Bad command line: printed inside calicoctl's 'Invalid option' sentence."""
