"""calico-node: one process per node — startup, then Felix, the CNI agent, health, metrics.

Run it in the node's network namespace (the lab does, with `ip netns exec`). Configured by
environment, as Calico's container is: NODENAME, IP, IP_AUTODETECTION_METHOD, AS,
CALICO_NETWORKING_BACKEND, CALICO_IPV4POOL_*, FELIX_*, and the datastore variables
(DATASTORE_TYPE, SQLITE_PATH, ETCD_ENDPOINTS), CALICO_ROUTER_ID. pycalico adds
CALICO_STATE_DIR (default /var/lib/calico: nodename and mtu files), CALICO_RUN_DIR
(default /var/run/calico: the CNI agent socket, calico-node.pid, BIRD's bird.ctl and
bird.pid) and CALICO_CONFD_DIR (default /etc/calico/confd/config: bird.cfg), and
CALICO_GOLDMANE_COLLECTOR / CALICO_GOLDMANE_API: where set, calico-node runs the flow
aggregator, calico-goldmane, as a supervised child (see aggregator_config.py).

With the `bird` backend, confd and BIRD run too (see pycalico/confd). With `none` (policy
only) the Node gets no address and Felix programs policy and this node's own routes, not
tunnels. The only options are `-h`/`--help` and `-v`/`--version`; `install` and
`uninstall` put pycalico on a host or take it off (see options.py, pycalico/node/install).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pycalico.datastore.backend import Backend
    from pycalico.datastore.config import DatastoreConfig
    from pycalico.datastore.resources import ResourceClient
    from pycalico.felix.calc.settings import Settings
    from pycalico.felix.metrics import FelixMetrics
    from pycalico.node.aggregator_child import AggregatorChild
    from pycalico.node.aggregator_config import AggregatorConfig
    from pycalico.node.autodetect import HostInterface
    from pycalico.node.health import Status
    from pycalico.node.options import Install, Uninstall
    from pycalico.server_loop import ServerThread

log = logging.getLogger("pycalico.node")
BACKENDS = ("bird", "vxlan", "none")
# Health goes stale after three resyncs' worth of silence, capped: with resyncs off (an
# interval of 0) a hung loop must still show.
DEFAULT_STALE_SECONDS = 90.0


def _setup_logging(env: Mapping[str, str]) -> None:
    level = (
        env.get("CALICO_STARTUP_LOGLEVEL") or env.get("FELIX_LOGSEVERITYSCREEN") or "info"
    ).upper()
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(
            logging, {"WARNING": "WARNING", "FATAL": "CRITICAL"}.get(level, level), logging.INFO
        ),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


def _interfaces() -> list[HostInterface]:
    import ipaddress

    from pyroute2 import IPRoute

    from pycalico.node.autodetect import HostInterface

    with IPRoute() as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        addrs: dict[int, list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]] = {}
        for msg in ipr.get_addr():
            addrs.setdefault(msg["index"], []).append(
                ipaddress.ip_interface(f"{msg.get_attr('IFA_ADDRESS')}/{msg['prefixlen']}")
            )
    return [HostInterface(i, n, tuple(addrs.get(i, []))) for i, n in names.items()]


def _source_towards(dest: str) -> str:
    """`can-reach`: the kernel's source address for a UDP 'connection' (no packet is sent)."""
    import socket

    family = socket.AF_INET6 if ":" in dest else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect((dest, 80))
        return str(s.getsockname()[0])


def run(env: Mapping[str, str], stop: threading.Event) -> int:
    from pycalico.atomic_file import write_text
    from pycalico.datastore.config import config_from_env, open_backend
    from pycalico.datastore.resources import ResourceClient
    from pycalico.felix.dataplane import rule_counters
    from pycalico.felix.metrics import FelixMetrics
    from pycalico.metrics import exposition
    from pycalico.metrics.registry import new_registry
    from pycalico.node import health, startup
    from pycalico.node.aggregator_config import aggregator_config

    backend_kind = env.get("CALICO_NETWORKING_BACKEND", "bird")
    if backend_kind not in BACKENDS:
        raise startup.StartupError(
            f"CALICO_NETWORKING_BACKEND={backend_kind} is not one of {', '.join(BACKENDS)}"
        )
    aggregator = aggregator_config(env)  # a bad value: main() prints the ValueError's line
    state_dir = env.get("CALICO_STATE_DIR", "/var/lib/calico")
    run_dir = env.get("CALICO_RUN_DIR", "/var/run/calico")
    # The name first: a refused one must leave the datastore untouched.
    name = startup.node_name(env, os.path.join(state_dir, "nodename"))
    # The state directory is calico-node's own (the default store is in it); the store's
    # directory is not made for it, so that a mistyped SQLITE_PATH fails.
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    backend = open_backend(config_from_env(env), create=True)
    client = ResourceClient(backend)
    if backend_kind == "none":
        for var in ("IP", "IP6"):
            if env.get(var, "none") != "none":
                log.warning(
                    "%s=%s is not used: with CALICO_NETWORKING_BACKEND=none (policy only) the "
                    "Node gets no address, as in Calico",
                    var,
                    env[var],
                )
    interfaces = _interfaces()
    v4 = [a for i in interfaces for a in i.addresses if a.version == 4]
    startup.ensure_cluster(client, env, v4)
    _migrate_guards(backend)
    identity = startup.register_node(client, name, env, interfaces, _source_towards)
    startup.write_nodename(os.path.join(state_dir, "nodename"), name)
    log.info("node %s registered with address %s", name, identity.address)

    status = health.Status()
    metrics = FelixMetrics(name, read_counters=rule_counters.read)
    registry = new_registry(metrics)
    settings = _felix_settings(env, client, name)
    # Health and metrics listen where the settings said at start; a change needs a restart.
    stale_after = 3 * min(settings.resync_seconds, DEFAULT_STALE_SECONDS)
    servers = [
        health.serve(settings.health_host, settings.health_port, status, stale_after),
        health.serve(
            settings.prometheus_metrics_host or settings.health_host,
            settings.prometheus_metrics_port,
            status,
            stale_after,
            metrics=lambda: exposition.text(registry),
        ),
    ]
    agent = _start_cni_agent(os.path.join(run_dir, "cni-agent.sock"), config_from_env(env))
    write_text(os.path.join(run_dir, "calico-node.pid"), f"{os.getpid()}\n")
    confd = (
        _start_confd(env, backend, name, run_dir, status, stop) if backend_kind == "bird" else None
    )
    goldmane = _start_aggregator(aggregator, stop) if aggregator is not None else None
    try:
        return _felix(
            env, backend, client, name, backend_kind, state_dir, run_dir, status, metrics, stop
        )
    finally:
        if confd is not None:
            stop.set()
            confd.join()
        if goldmane is not None:
            stop.set()
            goldmane.join()
        agent.stop()
        for server in servers:
            server.stop()
        backend.close()


def _migrate_guards(backend: Backend) -> None:
    from pycalico.datastore.backend import RevisionConflict
    from pycalico.datastore.resources import migrate_guards

    try:
        moved = migrate_guards(backend)
    except RevisionConflict:  # another node moved them at the same time
        moved = migrate_guards(backend)
    if moved:
        log.info("moved pycalico's guard keys out of Calico's resource tree: %s", ", ".join(moved))


def _felix_settings(env: Mapping[str, str], client: ResourceClient, name: str) -> Settings:
    """Felix's settings as they stand at start (what the health server needs)."""
    from pycalico.felix.calc.settings import resolve
    from pycalico.felix.calc.snapshot import felix_configuration

    settings = resolve(env, *felix_configuration(client, name))
    for warning in settings.warnings:
        log.warning("%s", warning)
    return settings


def _start_confd(
    env: Mapping[str, str],
    backend: Backend,
    name: str,
    run_dir: str,
    status: Status,
    stop: threading.Event,
) -> threading.Thread:
    """confd and BIRD in a thread of their own: a slow BIRD reload never holds up Felix."""
    from pycalico.confd.bird_process import BirdProcess
    from pycalico.confd.daemon import Confd

    config = os.path.join(env.get("CALICO_CONFD_DIR", "/etc/calico/confd/config"), "bird.cfg")
    bird = BirdProcess(config, run_dir, sys.stderr.buffer)
    with status.lock:
        status.bird_ready = False

    def on_state(ready: bool, error: str) -> None:
        with status.lock:
            status.bird_ready, status.bird_error = ready, error

    confd = Confd(backend, name, bird, env.get("CALICO_ROUTER_ID", ""), on_state)
    # Started by systemd as a unit's process (SYSTEMD_EXEC_PID is its pid; a process that
    # merely inherited it has another), the unit's KillMode decides BIRD's fate on a stop:
    # calico-node.service's `process` leaves BIRD (and its sessions) to the next
    # calico-node, as a kill -9 would; `control-group` stops it. Otherwise calico-node is
    # BIRD's only keeper.
    bird_outlives_node = env.get("SYSTEMD_EXEC_PID") == str(os.getpid())

    def run() -> None:
        try:
            confd.run(stop)
        finally:
            if not bird_outlives_node:
                bird.stop()

    thread = threading.Thread(target=run, name="confd")
    thread.start()
    return thread


def _start_aggregator(config: AggregatorConfig, stop: threading.Event) -> AggregatorChild:
    """The flow aggregator, supervised in a thread of its own until `stop`."""
    from pycalico.node.aggregator_child import AggregatorChild

    child = AggregatorChild(config, stop)
    child.start()
    return child


def _start_cni_agent(path: str, datastore: DatastoreConfig) -> ServerThread:
    """The CNI agent serves the calls whose datastore is calico-node's own."""
    from pycalico.cni.agent import Agent
    from pycalico.server_loop import ServerThread

    return ServerThread(Agent(path, datastore=datastore), "cni-agent")


def _felix(
    env: Mapping[str, str],
    backend: Backend,
    client: ResourceClient,
    name: str,
    backend_kind: str,
    state_dir: str,
    run_dir: str,
    status: Status,
    metrics: FelixMetrics,
    stop: threading.Event,
) -> int:
    from pyroute2 import IPRoute

    from pycalico.felix.collector.collector import FlowDirs
    from pycalico.felix.daemon import Felix
    from pycalico.felix.driver import Driver
    from pycalico.ipam.keys import handle_key
    from pycalico.node import tunnel_addrs

    # In every mode, as Calico's calico-node runs allocate-tunnel-addrs in every mode: in
    # policy-only mode a pool that asks for a tunnel still gets its address (Felix builds
    # the tunnel once the Node has an address of its own) and a stale one is released.
    def before_apply(view: Backend) -> None:
        for tunnel in (tunnel_addrs.VXLAN, tunnel_addrs.IPIP):
            if not tunnel_addrs.in_place(view, name, tunnel):
                tunnel_addrs.reconcile(client, name, tunnel)

    with IPRoute() as ipr:
        driver = Driver(
            name,
            ipr,
            mtu_file=os.path.join(state_dir, "mtu"),
            bird_blackholes=backend_kind == "bird",
            endpoint_status_dir=os.path.join(run_dir, "endpoint-status"),
            revision_file=os.path.join(run_dir, "felix-revision"),
        )

        def observe(ok: bool | None, seconds: float) -> None:
            with status.lock:
                status.last_loop = time.monotonic()
                if ok is None:
                    return
                status.applies += 1
                # A failed apply (e.g. nft refusing the policy) leaves endpoints closed: not
                # ready until an apply succeeds again.
                status.ready = ok
                if not ok:
                    status.apply_failures += 1
            metrics.applied(ok, seconds, driver.snapshot, driver.desired if ok else None)

        log.info("Calico node started successfully")
        with contextlib.closing(driver):
            dirs = FlowDirs(state_dir, run_dir)
            tunnel_handles = tuple(
                handle_key(tunnel.handle_prefix + name)
                for tunnel in (tunnel_addrs.VXLAN, tunnel_addrs.IPIP)
            )
            Felix(driver, env, before_apply, observe, dirs, tunnel_handles).run(backend, stop)
    return 0


def _install_command(request: Install | Uninstall) -> int:
    """`install` / `uninstall`: progress on stdout, a failure as one line on stderr."""
    from pycalico.node import options
    from pycalico.node.install import commands
    from pycalico.node.install.errors import InstallError

    def log(line: str) -> None:
        print(line, flush=True)

    def warn(line: str) -> None:
        sys.stderr.write(f"calico-node: {line}\n")

    try:
        if isinstance(request, options.Install):
            return commands.install(request, log, warn)
        return commands.uninstall(request, log)
    except InstallError as exc:
        sys.stderr.write(f"calico-node: {exc}\n")
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        what = "install" if isinstance(request, options.Install) else "uninstall"
        sys.stderr.write(f"calico-node: {what} failed:{where}: {exc.strerror}\n")
    return 1


def main() -> int:
    from pycalico.datastore.backend import DatastoreError
    from pycalico.node import options
    from pycalico.node.startup import StartupError

    # Before anything else: `--help` typed on a host must not start a node there.
    try:
        action = options.parse(sys.argv[1:])
    except options.UsageError as exc:
        sys.stderr.write(f"calico-node: {exc}\n")
        return 1
    if isinstance(action, (options.Install, options.Uninstall)):
        return _install_command(action)
    if action in ("help", "help-install", "help-uninstall"):
        sys.stdout.write(
            {
                "help": options.USAGE,
                "help-install": options.INSTALL_USAGE,
                "help-uninstall": options.UNINSTALL_USAGE,
            }[action]
        )
        return 0
    if action == "version":
        print(options.version())
        return 0
    env = dict(os.environ)
    _setup_logging(env)
    stop = threading.Event()

    def on_signal(*_: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return run(env, stop)
    except (StartupError, DatastoreError, ValueError, OSError) as exc:
        sys.stderr.write(f"calico-node: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
