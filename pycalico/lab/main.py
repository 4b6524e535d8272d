"""calico-lab: a multi-node Calico cluster made of network namespaces on one host."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import sys
import time
from collections.abc import Sequence

from pycalico.lab.state import (
    DEFAULT_NAME,
    LabError,
    LabState,
    choose,
    existing_labs,
    name_for_up,
    name_rule,
)
from pycalico.lab.underlay_plan import MAX_NODES

ENCAPS = ("vxlan", "ipip", "none")
TOPOLOGIES = ("flat", "two-subnet", "tor")
COMPONENTS = ("felix", "confd", "bird", "cni")
CONSOLE_PORT = 8081  # Whisker's: kubectl port-forward -n calico-system service/whisker 8081
LAB_CHOICE = (
    "Which lab: `up` builds --name, else $CALICO_LAB, else `lab`; every other command acts "
    "on --name, else $CALICO_LAB, else the only lab there is."
)
_IPIP_KO = re.compile(r"(^|/)ipip\.ko(\.[a-z]+)?$")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise LabError(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="calico-lab", description=__doc__, epilog=LAB_CHOICE)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    up = sub.add_parser(
        "up",
        help="build a lab and start calico-node on every node",
        description="Build a lab and start calico-node on every node.",
    )
    up.add_argument(
        "--name",
        help=f"the lab's name (default: $CALICO_LAB, else `{DEFAULT_NAME}`): {name_rule()}",
    )
    up.add_argument(
        "--nodes",
        type=int,
        default=3,
        help=f"1-{MAX_NODES} (default 3); an SQLite lab holds an inotify instance per node "
        "(fs.inotify.max_user_instances)",
    )
    up.add_argument("--topology", choices=TOPOLOGIES, default="flat")
    up.add_argument("--encap", choices=ENCAPS, default="vxlan")
    up.add_argument("--cross-subnet", action="store_true")
    up.add_argument("--datastore", choices=("sqlite", "etcd"), default="sqlite")
    up.add_argument("--pool", default="10.244.0.0/16")
    up.add_argument(
        "--ipv6", action="store_true", help="dual stack: IPv6 too, its routes carried by BGP"
    )
    up.add_argument(
        "--route-reflectors",
        type=int,
        default=0,
        metavar="K",
        help="make the last K nodes BGP route reflectors for all the others, the mesh off "
        "(the seeds' recipe: label route-reflector=true, routeReflectorClusterID 244.0.0.1, "
        "244.0.0.2 ..., a BGPPeer from all() to them); needs BGP: --encap none or ipip",
    )
    _lab_option(sub.add_parser("down", help="stop everything a lab started and remove it"))
    status = _lab_option(
        sub.add_parser("status", help="the lab's nodes, pods and pools as a table")
    )
    status.add_argument("-o", "--output", choices=("table", "json"), default="table")
    _lab_option(
        sub.add_parser(
            "env",
            help="the shell lines that put the tools on PATH and point calicoctl at the lab "
            '(eval "$(calico-lab env)")',
        )
    )
    _lab_option(
        sub.add_parser(
            "repair", help="restore the underlay routes the lab made (lost in an eth0 flap)"
        )
    )
    etcd = _lab_option(sub.add_parser("etcd", help="stop or start an etcd lab's etcd cluster"))
    etcd.add_argument("action", choices=("stop", "start"))
    logs = _lab_option(sub.add_parser("logs", help="a node's log, all of it or one component"))
    logs.add_argument("node")
    logs.add_argument("--component", choices=COMPONENTS)
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    pod = sub.add_parser("pod", help="add, delete or list pods")
    pod_sub = pod.add_subparsers(dest="pod_command", required=True, parser_class=_Parser)
    add = pod_sub.add_parser("add")
    add.add_argument("pod")
    add.add_argument("--node", required=True)
    add.add_argument("--namespace")
    add.add_argument("--labels", default="")
    add.add_argument("--serve", default="")
    add.add_argument(
        "--annotation",
        action="append",
        default=[],
        help="a pod annotation KEY=VALUE (e.g. cni.projectcalico.org/ipv4pools="
        "'[\"pool\"]'); may be repeated",
    )
    add.add_argument("--name", dest="lab")
    delete = pod_sub.add_parser("del")
    delete.add_argument("pod")
    delete.add_argument("--name", dest="lab")
    listing = pod_sub.add_parser("list")
    listing.add_argument("--name", dest="lab")
    ex = _lab_option(
        sub.add_parser(
            "exec",
            help="run a command on a node, in a pod, or on router|tor|external "
            "(`birdc` finds the node's BIRD by itself)",
        )
    )
    ex.add_argument("-n", "--namespace", help="the pod's namespace (kubectl's -n)")
    ex.add_argument("target")
    ex.add_argument("cmd", nargs=argparse.REMAINDER)
    probe = _lab_option(sub.add_parser("probe", help="pod × pod connectivity matrix"))
    probe.add_argument("--port", type=int, default=80)
    probe.add_argument("--proto", choices=("tcp", "udp", "icmp"), default="tcp")
    graph = _lab_option(
        sub.add_parser(
            "graph",
            help="draw the lab with Graphviz: underlay, nodes, blocks, pods, BGP sessions, "
            "tunnels (DOT on stdout without -o)",
        )
    )
    graph.add_argument("-o", "--output", metavar="FILE.svg|.png|.dot")
    trace = _lab_option(
        sub.add_parser(
            "trace",
            help="send one real packet from a pod and print every hop it took, from the kernel",
        )
    )
    trace.add_argument("--from", dest="source", required=True, metavar="NS/POD")
    trace.add_argument("--to", dest="destination", required=True, metavar="NS/POD|IP")
    trace.add_argument("--port", type=int, help="the destination port (tcp, udp)")
    trace.add_argument("--proto", choices=("tcp", "udp", "icmp"), default="tcp")
    trace.add_argument("-o", "--output", choices=("text", "json"), default="text")
    console = _lab_option(
        sub.add_parser(
            "console",
            help="the flow console (Whisker's role) and the lab page: forward a 127.0.0.1 "
            "port to the lab's calico-goldmane, serve the lab's topology, pods' policies and "
            "traces at /lab/ on it, and print the URLs; runs until Ctrl-C",
            description="Forward a 127.0.0.1 port to the lab's calico-goldmane (the flow "
            "console at /, its API at /flows, /metrics) and serve the lab page at /lab/ on "
            "the same port: the lab drawn by Graphviz, a pod's policies on click, and a "
            "trace between two pods. Loopback only; runs until Ctrl-C.",
        )
    )
    console.add_argument(
        "--port", type=int, default=CONSOLE_PORT, help=f"the local port ({CONSOLE_PORT}; 0: any)"
    )
    sub.add_parser(
        "flows",
        help="the lab's flow log, as calicoctl flows prints it (its options: -f, --from, "
        "--to, --action, --policy, --port, -o ...); --ui opens the console instead "
        "(as `console`, on --ui-port)",
        add_help=False,
    )
    _kube_parsers(sub)
    return p


def _lab_option(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--name", help="the lab (default: $CALICO_LAB, else the only lab)")
    return parser


def _kube_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The kubectl verbs the seeds type, against the lab."""
    for verb, what in (("apply", "create or update"), ("delete", "delete")):
        s = sub.add_parser(
            verb,
            help=f"{what} the Kubernetes (v1 Namespace, ServiceAccount, Pod, apps/v1 "
            "Deployment and DaemonSet, networking.k8s.io/v1 NetworkPolicy) and Calico "
            "objects in a file (a v1 Service is skipped with a warning: no kube-proxy)",
        )
        s.add_argument("-f", "--filename", required=True, help="FILE, DIR or - for stdin")
        s.add_argument("--name", dest="lab")
    run = sub.add_parser(
        "run",
        help="a pod labelled run=NAME, as kubectl run (a command after -- is accepted "
        "and not run: lab pods run no image)",
    )
    run.add_argument("pod")
    run.add_argument("-n", "--namespace", default="default")
    run.add_argument("--node", default="", help="the node (default: the least busy)")
    run.add_argument("--image", default="busybox")
    run.add_argument("--port", type=int, help="a container port to declare and serve")
    run.add_argument("-l", "--labels", help="labels instead of run=NAME (k=v,k=v)")
    run.add_argument("--restart", help="accepted for kubectl compatibility")
    run.add_argument("--name", dest="lab")
    create = sub.add_parser("create", help="create deployment NAME, as kubectl does")
    create_sub = create.add_subparsers(dest="create_kind", required=True, parser_class=_Parser)
    deploy = create_sub.add_parser("deployment", help="pods NAME-<hash>-<id> labelled app=NAME")
    deploy.add_argument("deployment")
    deploy.add_argument("-n", "--namespace", default="default")
    deploy.add_argument("--image", default="nginx")
    deploy.add_argument("--replicas", type=int, default=1)
    deploy.add_argument("--port", type=int, default=80, help="the container port (served)")
    deploy.add_argument("--name", dest="lab")
    get = sub.add_parser("get", help="pods or nodes in kubectl's columns")
    get.add_argument("kind", choices=("pods", "pod", "po", "nodes", "node", "no"))
    scope = get.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", default="default")
    scope.add_argument("-A", "--all-namespaces", action="store_true")
    get.add_argument("-o", "--output", choices=("wide",))
    get.add_argument("--name", dest="lab")
    label = sub.add_parser("label", help="label a node, as kubectl label node does")
    label.add_argument("kind", choices=("node", "nodes", "no"))
    label.add_argument("node")
    label.add_argument("labels", nargs="+", help="KEY=VALUE to set, KEY- to remove")
    label.add_argument("--overwrite", action="store_true")
    label.add_argument("--name", dest="lab")


def _labels(text: str) -> dict[str, str]:
    labels = {}
    for item in filter(None, text.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise LabError(f"bad label {item!r}: use key=value[,key=value]")
        labels[key] = value
    return labels


def _progress(message: str) -> None:
    sys.stderr.write(f"  {message}\n")
    sys.stderr.flush()


def ipip_available(sys_module: str = "/sys/module", modules: str = "") -> bool:
    """Whether the kernel has ipip: loaded or built in, or a module it can load on demand.

    A stock kernel loads ipip only when something first asks for an IPIP device (Felix
    does), so a module not loaded yet is no reason to refuse.
    """
    if os.path.exists(os.path.join(sys_module, "ipip")):
        return True
    modules = modules or os.path.join("/lib/modules", os.uname().release)
    for index in ("modules.dep", "modules.builtin"):
        try:
            with open(os.path.join(modules, index), encoding="utf-8") as f:
                if any(_IPIP_KO.search(line.split(":", 1)[0]) for line in f):
                    return True
        except OSError:
            continue
    return False


def up(opts: argparse.Namespace) -> int:
    from pycalico.lab import cluster, goldmane, route_reflectors
    from pycalico.lab.echo import parse as parse_ports

    if not 1 <= opts.nodes <= MAX_NODES:
        raise LabError(f"--nodes must be between 1 and {MAX_NODES}")
    name = name_for_up(opts.name, nodes=opts.nodes)
    try:
        pool = str(ipaddress.ip_network(opts.pool))
    except ValueError:
        raise LabError(f"--pool {opts.pool} is not a network CIDR") from None
    route_reflectors.check(
        opts.route_reflectors,
        opts.nodes,
        opts.topology,
        cluster.runs_bird(opts.encap, opts.topology, opts.ipv6),
    )
    if opts.datastore == "etcd" and not os.path.exists("/usr/bin/etcd"):
        raise LabError("--datastore etcd needs etcd (Debian etcd-server; `make setup` installs it)")
    if opts.encap == "ipip" and not ipip_available():
        raise LabError(
            "--encap ipip needs the kernel's ipip module, which this kernel lacks "
            "(IPIP is proven in the VM suite); use --encap vxlan"
        )
    if name in existing_labs():
        raise LabError(f"lab {name!r} already exists (calico-lab down --name {name})")
    _check_inotify(opts.nodes, opts.datastore)
    started = time.monotonic()
    state = LabState(
        name,
        [f"node{i + 1}" for i in range(opts.nodes)],
        opts.topology,
        opts.encap,
        opts.cross_subnet,
        pool,
        datastore=opts.datastore,
        ipv6=opts.ipv6,
        route_reflectors=opts.route_reflectors,
        created=time.time(),
    )
    try:
        _progress(f"building {opts.topology} underlay")
        cluster.build_underlay(state)
        for i in range(opts.nodes):
            cluster.build_node(state, i)
        state.pids["echo:external"] = _external_server(state, parse_ports("80,53/udp"))
        _progress("starting calico-goldmane (the flow aggregator) in the router namespace")
        goldmane.start(state)
        if state.datastore == "etcd":
            from pycalico.lab import etcd_cluster

            _progress("starting a 3-member etcd cluster")
            etcd_cluster.start(state)
            etcd_cluster.wait_ready(state)
        if state.topology == "tor":
            _progress("starting the ToR router's BIRD (AS 65001)")
            cluster.start_tor(state)
        _progress("turning flow logs on (FelixConfiguration default)")
        cluster.configure_felix(state)
        if state.route_reflectors:
            reflectors = route_reflectors.reflectors(state.nodes, state.route_reflectors)
            _progress(f"route reflectors: {', '.join(reflectors)} (the node-to-node mesh off)")
            cluster.configure_route_reflectors(state)
        _progress(f"starting calico-node on {opts.nodes} nodes")
        for node in state.nodes:
            cluster.start_node(state, node)
        cluster.wait_ready(state, _progress)
        _progress("starting calico-kube-controllers")
        cluster.start_kube_controllers(state)
    except BaseException:
        _progress("failed: removing what was built")
        cluster.down(state)
        raise
    print(f"lab {state.name} is up in {time.monotonic() - started:.1f}s")
    print(f'(eval "$(calico-lab env --name {state.name})" puts its tools on PATH)')
    return 0


def _check_inotify(nodes: int, datastore: str) -> None:
    from pycalico.lab import host_limits

    if not host_limits.inotify_needed(nodes, datastore):
        return
    short = host_limits.inotify_shortfall(
        nodes, datastore, host_limits.inotify_in_use(os.geteuid()), host_limits.inotify_limit()
    )
    if short:
        raise LabError(short)


def _external_server(state: LabState, ports: list[tuple[int, str]]) -> int:
    import subprocess

    from pycalico.lab.namespaces import ns_name

    spec = ",".join(f"{p}/{proto}" for p, proto in ports)
    with open(state.path("external.log"), "ab") as log:
        proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ns_name(state.name, "ext"),
                sys.executable,
                "-m",
                "pycalico.lab.echo",
                spec,
                "external",
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    return proc.pid


def _split_command(argv: list[str]) -> tuple[list[str], list[str]]:
    """calico-lab's own arguments, and the command after `--` of `exec` and `run`."""
    if argv[:1] in (["exec"], ["run"]) and "--" in argv:
        split = argv.index("--")
        return argv[:split], argv[split + 1 :]
    return argv, []


def run(argv: Sequence[str]) -> int:
    args, command = _split_command(list(argv))
    if args[:1] == ["flows"]:
        return _flows(args[1:])
    opts = _parser().parse_args(args)
    if command and opts.command == "exec" and opts.cmd:
        # `exec TARGET --name LAB -- CMD`: options after the target were taken as the command.
        before = args[1 : len(args) - len(opts.cmd)]
        opts = _parser().parse_args(["exec", *opts.cmd, *before])
    if opts.command == "up":
        return up(opts)
    if opts.command in ("apply", "delete", "run", "create", "get", "label"):
        return _kube(opts)
    if opts.command == "pod":
        return _pod(opts)
    state = LabState.load(choose(opts.name))
    if opts.command == "exec":
        from pycalico.lab import pods

        cmd = command or (opts.cmd[1:] if opts.cmd[:1] == ["--"] else opts.cmd)
        if not cmd:
            raise LabError("exec needs a command: calico-lab exec NODE|POD -- CMD ...")
        return pods.exec_in(state, opts.target, cmd, opts.namespace)
    return _lab_command(state, opts)


def _lab_command(state: LabState, opts: argparse.Namespace) -> int:
    """The commands that act on one whole lab."""
    from pycalico.lab import cluster, probe

    if opts.command == "down":
        problems = cluster.down(state)
        for problem in problems:
            sys.stderr.write(f"calico-lab: {problem}\n")
        print(f"lab {state.name} removed")
        return 1 if problems else 0
    if opts.command == "status":
        from pycalico.lab import lab_status, status_table

        facts = lab_status.gather(state)
        if opts.output == "json":
            print(json.dumps(lab_status.as_json(facts), indent=2))
        else:
            sys.stdout.write(status_table.render(facts))
        return 0
    if opts.command == "env":
        from pycalico.lab.shell_env import exports

        sys.stdout.write(exports(state.name, os.path.dirname(sys.executable)))
        return 0
    if opts.command == "repair":
        from pycalico.lab import underlay_routes

        fixed = underlay_routes.repair(state)
        for line in fixed:
            print(line)
        if not fixed:
            print(f"lab {state.name}: every underlay route is in place")
        return 0
    if opts.command == "etcd":
        return _etcd(state, opts.action)
    if opts.command == "trace":
        from pycalico.lab import packet_trace, trace_report

        if opts.port is not None and not 1 <= opts.port <= 65535:
            raise LabError(f"--port {opts.port}: must be 1-65535")
        if opts.proto == "icmp" and opts.port is not None:
            raise LabError("--port has no meaning with --proto icmp")
        port = opts.port if opts.port is not None or opts.proto == "icmp" else 80
        found = packet_trace.trace(state, opts.source, opts.destination, opts.proto, port)
        render = trace_report.as_json if opts.output == "json" else trace_report.text
        sys.stdout.write(render(found))
        return 0
    if opts.command == "graph":
        from pycalico.lab import lab_graph

        if opts.output:
            lab_graph.check_output(opts.output)
        text = lab_graph.graph(state)
        if opts.output:
            lab_graph.render(text, opts.output)
            print(f"wrote {opts.output}")
        else:
            sys.stdout.write(text)
        return 0
    if opts.command == "console":
        return _console(state, opts.port)
    if opts.command == "logs":
        from pycalico.lab import node_logs

        return node_logs.show(state, opts.node, opts.component, opts.follow, sys.stdout)
    from pycalico.lab.probe_diagnosis import Watch

    with Watch(state, opts.proto, opts.port) as watch:
        results = probe.run_matrix(state, opts.proto, opts.port)
    watch.name_drops(results)
    sys.stdout.write(probe.render(results.answers, results.failures))
    return 0


def _flows(argv: list[str]) -> int:
    """`calico-lab flows [--name LAB] [--ui [--ui-port N]] [calicoctl flows options]`."""
    import subprocess

    from pycalico.lab import goldmane
    from pycalico.lab.namespaces import ns_name

    own = _Parser(
        prog="calico-lab flows",
        description="The lab's flow log from its calico-goldmane, one line per flow.",
        epilog="Every other option is calicoctl flows' (see calicoctl flows --help): "
        "-f, --since, --last, --from NS/POD, --to NS/POD, --action, --policy, --port, -o.",
    )
    own.add_argument("--name", help="the lab (default: $CALICO_LAB, else the only lab)")
    own.add_argument("--ui", action="store_true", help="open the flow console instead")
    own.add_argument(
        "--ui-port", type=int, default=CONSOLE_PORT, help=f"the console's port ({CONSOLE_PORT})"
    )
    opts, rest = own.parse_known_args(argv)
    state = LabState.load(choose(opts.name))
    goldmane.require(state)
    if opts.ui:
        return _console(state, opts.ui_port)
    if any(arg == "--server" or arg.startswith("--server=") for arg in rest):
        raise LabError("flows asks the lab's own aggregator: --server is not taken")
    calicoctl = os.path.join(os.path.dirname(sys.executable), "calicoctl")
    host, port = goldmane.API
    return subprocess.run(
        ["ip", "netns", "exec", ns_name(state.name, "router"), calicoctl, "flows",
         "--server", f"http://{host}:{port}", *rest],
        check=False,
    ).returncode  # fmt: skip


def _console(state: LabState, port: int) -> int:
    """Serve the lab page and forward the rest to the lab's aggregator until Ctrl-C or
    SIGTERM."""
    import signal
    import threading

    from pycalico.lab import goldmane
    from pycalico.lab.console_front import ConsoleFront
    from pycalico.lab.lab_page import LabPage

    goldmane.require(state)
    if not 0 <= port <= 65535:
        raise LabError(f"--port {port}: must be 0-65535")
    try:
        server = ConsoleFront(port, LabPage(state.name), lambda: goldmane.connect(state))
    except OSError as exc:
        raise LabError(
            f"cannot listen on 127.0.0.1:{port}: "
            f"{os.strerror(exc.errno) if exc.errno else exc} (choose one with --port)"
        ) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    url = f"http://127.0.0.1:{server.server_address[1]}"
    host, api_port = goldmane.API
    print(
        f"Forwarding from {url[7:]} to calico-goldmane of lab {state.name} "
        f"({goldmane.netns(state)}, {host}:{api_port})\n"
        f"Flow console: {url}/\n"
        f"Lab page: {url}/lab/ (topology, a pod's policies, traces; served by calico-lab)\n"
        f"API: {url}/flows   metrics: {url}/metrics\n"
        "Ctrl-C stops the forward.",
        flush=True,
    )
    serving = threading.Thread(target=server.serve_forever, args=(0.5,), daemon=True)
    serving.start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    return 0


def _etcd(state: LabState, action: str) -> int:
    from pycalico.lab import etcd_cluster

    if state.datastore != "etcd":
        raise LabError(f"lab {state.name} keeps its datastore in SQLite: it has no etcd")
    if action == "stop":
        etcd_cluster.stop_all(state)
        print(f"etcd of lab {state.name} stopped (calico-lab etcd start brings it back)")
    else:
        if etcd_cluster.running(state):
            raise LabError(f"etcd of lab {state.name} is already running")
        etcd_cluster.start_all(state)
        print(f"etcd of lab {state.name} started")
    return 0


def _pod(opts: argparse.Namespace) -> int:
    from pycalico.lab import pods

    state = LabState.load(choose(opts.lab))
    if opts.pod_command == "add":
        if opts.serve:
            from pycalico.lab.echo import parse

            try:
                parse(opts.serve)
            except ValueError as exc:
                raise LabError(f"--serve: {exc}") from None
        annotations = {}
        for item in opts.annotation:
            key, eq, value = item.partition("=")
            if not eq or not key:
                raise LabError(f"bad annotation {item!r}: use KEY=VALUE")
            annotations[key] = value
        pod = pods.add(
            state,
            opts.pod,
            opts.node,
            opts.namespace,
            _labels(opts.labels),
            opts.serve,
            annotations,
        )
        print(pod.ip)
    elif opts.pod_command == "del":
        pods.remove(state, opts.pod)
    else:
        sys.stdout.write(pods.listing(state))
    return 0


def _kube(opts: argparse.Namespace) -> int:
    from pycalico.ctl.inputs import InputError, read_documents
    from pycalico.lab import kube, kube_apply

    state = LabState.load(choose(opts.lab))
    if opts.command == "get":
        from pycalico.lab import kube_get

        sys.stdout.write(
            kube_get.get(
                state, opts.kind, opts.namespace, opts.all_namespaces, opts.output == "wide"
            )
        )
        return 0
    if opts.command == "label":
        from pycalico.lab import node_labels

        print(node_labels.label(state, opts.node, opts.labels, opts.overwrite))
        return 0
    if opts.command in ("apply", "delete"):
        try:
            manifests = kube.read(read_documents(opts.filename))
        except InputError as exc:
            raise LabError(str(exc)) from None
        if opts.command == "delete":
            return kube_apply.delete(state, manifests, print, _complain)
        kube_apply.apply(state, manifests, print, warn=_complain)
        return 0
    if opts.command == "run":
        labels = _labels(opts.labels) if opts.labels is not None else None
        doc = kube.run_pod(opts.pod, opts.namespace, opts.image, labels, opts.node, opts.port)
    else:
        doc = kube.deployment(opts.deployment, opts.namespace, opts.image, opts.replicas, opts.port)
    try:
        manifest = kube.manifest(doc)
    except ValueError as exc:
        raise LabError(str(exc)) from None
    kube_apply.apply(state, [manifest], print, create=True)
    return 0


def _complain(message: str) -> None:
    sys.stderr.write(message + "\n")


def main() -> int:
    if os.geteuid() != 0:
        sys.stderr.write("calico-lab: needs root (it creates network namespaces)\n")
        return 1
    try:
        return run(sys.argv[1:])
    except LabError as exc:
        sys.stderr.write(f"calico-lab: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("calico-lab: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
