"""Entry points for the `calico` and `calico-ipam` CNI executables (land with the IPAM issue)."""

import sys


def main() -> int:
    sys.stderr.write("calico: not implemented yet\n")
    return 1


def ipam_main() -> int:
    sys.stderr.write("calico-ipam: not implemented yet\n")
    return 1
