"""Entry point for calico-lab (lands with its own issue)."""

import sys


def main() -> int:
    sys.stderr.write("calico-lab: not implemented yet\n")
    return 1
