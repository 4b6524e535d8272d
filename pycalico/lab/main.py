"""calico-lab: a multi-node Calico cluster made of network namespaces on one host."""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import sys
import time
from collections.abc import Sequence

from pycalico.lab.state import LabError, LabState, choose, existing_labs

ENCAPS = ("vxlan", "ipip", "none")
TOPOLOGIES = ("flat", "two-subnet", "tor")
_NAME_OK = "abcdefghijklmnopqrstuvwxyz0123456789-"
_IPIP_KO = re.compile(r"(^|/)ipip\.ko(\.[a-z]+)?$")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise LabError(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="calico-lab", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    up = sub.add_parser("up", help="build a lab and start calico-node on every node")
    up.add_argument("--name", default="lab")
    up.add_argument("--nodes", type=int, default=3)
    up.add_argument("--topology", choices=TOPOLOGIES, default="flat")
    up.add_argument("--encap", choices=ENCAPS, default="vxlan")
    up.add_argument("--cross-subnet", action="store_true")
    up.add_argument("--datastore", choices=("sqlite", "etcd"), default="sqlite")
    up.add_argument("--pool", default="10.244.0.0/16")
    up.add_argument(
        "--ipv6", action="store_true", help="dual stack: IPv6 too, its routes carried by BGP"
    )
    for name in ("down", "status"):
        s = sub.add_parser(name)
        s.add_argument("--name")
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
    ex = sub.add_parser("exec", help="run a command in a node or pod namespace")
    ex.add_argument("--name")
    ex.add_argument("target")
    ex.add_argument("cmd", nargs=argparse.REMAINDER)
    probe = sub.add_parser("probe", help="pod × pod connectivity matrix")
    probe.add_argument("--name")
    probe.add_argument("--port", type=int, default=80)
    probe.add_argument("--proto", choices=("tcp", "udp", "icmp"), default="tcp")
    _kube_parsers(sub)
    return p


def _kube_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The kubectl verbs the seeds type, against the lab."""
    for verb, what in (("apply", "create or update"), ("delete", "delete")):
        s = sub.add_parser(
            verb,
            help=f"{what} the Kubernetes (v1 Namespace, ServiceAccount, Pod, apps/v1 "
            "Deployment, networking.k8s.io/v1 NetworkPolicy) and Calico objects in a file",
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
    from pycalico.lab import cluster
    from pycalico.lab.echo import parse as parse_ports

    if not opts.name or any(c not in _NAME_OK for c in opts.name) or len(opts.name) > 8:
        raise LabError("--name must be 1-8 characters of a-z, 0-9 and '-'")
    if not 1 <= opts.nodes <= 20:
        raise LabError("--nodes must be between 1 and 20")
    try:
        pool = str(ipaddress.ip_network(opts.pool))
    except ValueError:
        raise LabError(f"--pool {opts.pool} is not a network CIDR") from None
    if opts.datastore == "etcd" and not os.path.exists("/usr/bin/etcd"):
        raise LabError("--datastore etcd needs etcd (Debian etcd-server; `make setup` installs it)")
    if opts.encap == "ipip" and not ipip_available():
        raise LabError(
            "--encap ipip needs the kernel's ipip module, which this kernel lacks "
            "(IPIP is proven in the VM suite); use --encap vxlan"
        )
    if opts.name in existing_labs():
        raise LabError(f"lab {opts.name!r} already exists (calico-lab down --name {opts.name})")
    started = time.monotonic()
    state = LabState(
        opts.name,
        [f"node{i + 1}" for i in range(opts.nodes)],
        opts.topology,
        opts.encap,
        opts.cross_subnet,
        pool,
        datastore=opts.datastore,
        ipv6=opts.ipv6,
    )
    try:
        _progress(f"building {opts.topology} underlay")
        cluster.build_underlay(state)
        for i in range(opts.nodes):
            cluster.build_node(state, i)
        state.pids["echo:external"] = _external_server(state, parse_ports("80,53/udp"))
        if state.datastore == "etcd":
            from pycalico.lab import etcd_cluster

            _progress("starting a 3-member etcd cluster")
            etcd_cluster.start(state)
            etcd_cluster.wait_ready(state)
        if state.topology == "tor":
            _progress("starting the ToR router's BIRD (AS 65001)")
            cluster.start_tor(state)
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
    print(cluster.describe(state))
    return 0


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
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    return proc.pid


def run(argv: Sequence[str]) -> int:
    from pycalico.lab import cluster, pods, probe

    argv = list(argv)
    command: list[str] = []
    if argv[:1] in (["exec"], ["run"]) and "--" in argv:
        # Everything after `--` is the command, whatever options it carries.
        split = argv.index("--")
        argv, command = argv[:split], argv[split + 1 :]
    opts = _parser().parse_args(argv)
    if command and opts.command == "exec" and opts.cmd:
        # `exec TARGET --name LAB -- CMD`: options after the target were taken as the command.
        opts = _parser().parse_args(["exec", *opts.cmd, opts.target])
    if opts.command == "up":
        return up(opts)
    if opts.command in ("apply", "delete", "run", "create"):
        return _kube(opts)
    if opts.command == "status":
        names = [opts.name] if opts.name else existing_labs()
        if not names:
            print("no labs")
        for name in names:
            print(cluster.describe(LabState.load(name)))
        return 0
    if opts.command == "pod":
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
    state = LabState.load(choose(opts.name))
    if opts.command == "down":
        problems = cluster.down(state)
        for problem in problems:
            sys.stderr.write(f"calico-lab: {problem}\n")
        print(f"lab {state.name} removed")
        return 1 if problems else 0
    if opts.command == "exec":
        cmd = command or (opts.cmd[1:] if opts.cmd[:1] == ["--"] else opts.cmd)
        if not cmd:
            raise LabError("exec needs a command: calico-lab exec NODE -- CMD ...")
        return pods.exec_in(state, opts.target, cmd)
    sys.stdout.write(probe.render(probe.matrix(state, opts.proto, opts.port)))
    return 0


def _kube(opts: argparse.Namespace) -> int:
    from pycalico.ctl.inputs import InputError, read_documents
    from pycalico.lab import kube, kube_apply

    state = LabState.load(choose(opts.lab))
    if opts.command in ("apply", "delete"):
        try:
            manifests = kube.read(read_documents(opts.filename))
        except InputError as exc:
            raise LabError(str(exc)) from None
        if opts.command == "delete":
            return kube_apply.delete(state, manifests, print, _complain)
        kube_apply.apply(state, manifests, print)
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
