"""calico-goldmane: the flow aggregator (Goldmane's role) and whisker-backend's HTTP API in
one process.

    calico-goldmane [--collector HOST:PORT] [--listen HOST:PORT]
                    [--aggregation-window SECONDS] [--history BUCKETS]
                    [--max-flows-per-bucket N] [--log-level LEVEL]

Felix sends its records to the collector address (its `flowLogsGoldmaneServer`); the API
answers on the listen address. Both default to loopback: the API has no authentication,
so it is exposed only where the operator says.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence

from pycalico.flows.aggregator import Aggregator
from pycalico.flows.collector_server import CollectorServer
from pycalico.flows.http_api import ApiServer
from pycalico.flows.window import (
    BUCKET_SECONDS,
    HISTORY_BUCKETS,
    MAX_FLOWS_PER_BUCKET,
    WindowSettings,
)

log = logging.getLogger("pycalico.flows")

DEFAULT_COLLECTOR = "127.0.0.1:7443"  # Goldmane's Service port
DEFAULT_LISTEN = "127.0.0.1:8080"  # whisker-backend's PORT
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
# How often a server thread checks for shutdown: a stop takes at most about this long per
# server.
SHUTDOWN_POLL = 0.1


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def address(text: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"'{text}' is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a positive whole number")
    return int(text)


def _options(argv: Sequence[str]) -> argparse.Namespace:
    parser = _Parser(prog="calico-goldmane", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--collector",
        default=DEFAULT_COLLECTOR,
        metavar="HOST:PORT",
        help=f"where Felix sends its records ({DEFAULT_COLLECTOR})",
    )
    parser.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                        help=f"the HTTP API's address ({DEFAULT_LISTEN})")  # fmt: skip
    parser.add_argument(
        "--aggregation-window",
        type=_positive,
        default=BUCKET_SECONDS,
        metavar="SECONDS",
        help="the width of a bucket (Goldmane: 15)",
    )
    parser.add_argument(
        "--history",
        type=_positive,
        default=HISTORY_BUCKETS,
        metavar="BUCKETS",
        help="buckets kept before the one filling now (240: an hour)",
    )
    parser.add_argument(
        "--max-flows-per-bucket",
        type=_positive,
        default=MAX_FLOWS_PER_BUCKET,
        metavar="N",
        help="new flows past this in one bucket are dropped",
    )
    parser.add_argument("--log-level", default="info",
                        choices=("debug", "info", "warning", "error"))  # fmt: skip
    return parser.parse_args(argv)


def _tick_until_stopped(aggregator: Aggregator, every: float) -> signal.Signals:
    """Roll the window every `every` seconds until a stop signal arrives; that signal."""
    next_tick = time.monotonic() + every
    while True:
        left = next_tick - time.monotonic()
        if left <= 0:
            aggregator.tick()
            next_tick += every
            continue
        info = signal.sigtimedwait(STOP_SIGNALS, left)
        if info is not None:
            return signal.Signals(info.si_signo)


def run(argv: Sequence[str]) -> int:
    opts = _options(argv)
    collector_at, api_at = address(opts.collector), address(opts.listen)
    logging.basicConfig(
        level=opts.log_level.upper(),
        format="%(asctime)s [%(levelname)s] calico-goldmane: %(message)s",
    )
    settings = WindowSettings(
        bucket_seconds=opts.aggregation_window,
        history=opts.history,
        max_flows_per_bucket=opts.max_flows_per_bucket,
    )
    aggregator = Aggregator(settings, time.time)
    servers: list[CollectorServer | ApiServer] = []
    threads: list[threading.Thread] = []
    try:
        for make, where in ((CollectorServer, collector_at), (ApiServer, api_at)):
            try:
                servers.append(make(where, aggregator))
            except OSError as exc:
                raise UsageError(
                    f"cannot listen on {where[0]}:{where[1]}: {exc.strerror or exc}"
                ) from None
        # The stop signals are blocked in every thread (the server threads inherit the mask)
        # and taken by the main thread's sigtimedwait, so a SIGTERM ends the wait between two
        # ticks at once, whichever thread the kernel would have handed it to, and even when
        # calico-goldmane was started with them blocked (a mask survives exec).
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        for server in servers:
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL}, daemon=True
            )
            thread.start()
            threads.append(thread)
        collector, api = (s.server_address for s in servers)
        sys.stdout.write(
            f"calico-goldmane: collector {collector[0]}:{collector[1]}, "
            f"API http://{api[0]}:{api[1]}\n"
        )
        sys.stdout.flush()
        received = _tick_until_stopped(aggregator, settings.bucket_seconds)
        log.info("%s received, stopping", received.name)
        aggregator.close_streams()
    finally:
        # shutdown() waits for serve_forever to end: only for servers that serve.
        for server in servers[: len(threads)]:
            server.shutdown()
        for server in servers:
            server.server_close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        sys.stderr.write(f"calico-goldmane: {exc}\n")
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the promise is one line, never a traceback
        sys.stderr.write(f"calico-goldmane: internal error: {type(exc).__name__}: {exc}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
