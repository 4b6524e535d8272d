"""calicoctl: command line, dispatch, and the one-line error contract.

Every failure ends here as one line on stderr and exit code 1; a traceback is a bug.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pycalico.ctl.arguments import ArgParser
from pycalico.ctl.errors import CtlError, UsageError

USAGE = """Usage:
  calicoctl [options] <command> [<args>...]

    create       Create a resource by file, directory or stdin.
    replace      Replace a resource by file, directory or stdin.
    apply        Apply a resource by file, directory or stdin.  This creates a resource
                 if it does not exist, and replaces a resource if it does exist.
    patch        Patch a pre-existing resource in place.
    delete       Delete a resource identified by file, directory, stdin or resource type and
                 name.
    get          Get a resource identified by file, directory, stdin or resource type and
                 name.
    label        Add or update labels of resources.
    ipam         IP address management.
    node         Calico node management.
    policy       Explain what policy does to a connection.
    flows        Show the flow log: each flow and the policy rule that decided it.
    version      Display the version of this binary.

Options:
  -h --help                    Show this screen.
  -l --log-level=<level>       Set the log level (one of panic, fatal, error,
                               warn, info, debug) [default: panic]
     --context=<context>       The name of the kubeconfig context to use.
     --allow-version-mismatch  Allow client and cluster versions mismatch.

Description:
  The calicoctl command line tool is used to manage Calico network and security
  policy, to view and manage endpoint configuration, and to manage a Calico
  node instance.

  See 'calicoctl <command> --help' to read about a specific subcommand.
"""

LOG_LEVELS = ("panic", "fatal", "error", "warn", "warning", "info", "debug", "trace")
COMMANDS = (
    "create",
    "replace",
    "apply",
    "patch",
    "delete",
    "get",
    "label",
    "ipam",
    "node",
    "policy",
    "flows",
    "version",
)


def _global_options(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = ArgParser(prog="calicoctl", add_help=False)
    parser.add_argument("-h", "--help", action="store_true")
    parser.add_argument("-l", "--log-level", default="panic")
    parser.add_argument("--context")
    parser.add_argument("--allow-version-mismatch", action="store_true")
    parser.add_argument("command", nargs="?")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    opts = parser.parse_args(argv)
    if opts.log_level.lower() not in LOG_LEVELS:
        raise UsageError(f"unknown log level '{opts.log_level}'")
    return opts, list(opts.args)


def run(argv: Sequence[str]) -> int:
    opts, rest = _global_options(argv)
    if opts.help or opts.command is None:
        sys.stdout.write(USAGE)
        return 0 if opts.help else 1
    if opts.command not in COMMANDS:
        raise UsageError(f"unknown command '{opts.command}'")
    if opts.command == "version":
        from pycalico.ctl.version import version_command

        return version_command(rest)
    if opts.command == "ipam":
        from pycalico.ctl import ipam_commands

        return ipam_commands.run(rest, opts.allow_version_mismatch)
    if opts.command == "node":
        from pycalico.ctl import node_status

        return node_status.run(rest)
    if opts.command == "policy":
        from pycalico.ctl import policy_explain

        return policy_explain.run(rest, opts.allow_version_mismatch)
    if opts.command == "flows":
        from pycalico.ctl import flows_command

        return flows_command.run(rest)
    if opts.command in ("patch", "label"):
        from pycalico.ctl import edit_commands

        return edit_commands.run(opts.command, rest, opts.allow_version_mismatch)
    from pycalico.ctl import resource_commands

    return resource_commands.run(opts.command, rest, opts.allow_version_mismatch)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except UsageError as exc:
        sys.stderr.write(
            f"Invalid option: 'calicoctl {' '.join(args)}' ({exc}). "
            "Use flag '--help' to read about a specific subcommand.\n"
        )
    except CtlError as exc:
        sys.stderr.write(f"{exc}\n")
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:
        return 1
    except OSError as exc:  # e.g. output to a full disk
        sys.stderr.write(f"{exc.strerror or exc}\n")
    except Exception as exc:  # the promise is one line, never a traceback
        from pycalico.datastore.backend import DatastoreError

        if isinstance(exc, DatastoreError):
            sys.stderr.write(f"{exc}\n")
        else:
            sys.stderr.write(f"internal error: {type(exc).__name__}: {exc}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
