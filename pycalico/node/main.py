"""Entry point for calico-node (lands with its own issue)."""

import sys


def main() -> int:
    sys.stderr.write("calico-node: not implemented yet\n")
    return 1
