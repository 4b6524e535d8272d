"""The one error type of install/uninstall: its message is the whole line the user sees."""


class InstallError(Exception):
    """Printed as `calico-node: <message>` on stderr; exit status 1."""
