"""Lab pods: network namespaces wired by the CNI executables exactly as a runtime does."""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from pycalico.api.checks import dns1123_label
from pycalico.lab.namespaces import in_ns, ns_name, sh
from pycalico.lab.processes import stop_pid
from pycalico.lab.state import STATE_LOCK, LabError, LabState, Pod

NETWORK = "k8s-pod-network"
PROGRAMMED_TIMEOUT = 10.0
# Pods started at once by start_all: each node's kubelet starts its pods on its own, but a
# lab's nodes share a few cores, and each start runs a CNI plugin process or two.
POD_STARTS = 8


def pod_key(name: str, namespace: str | None = None) -> str:
    """`NS/POD` everywhere; a bare POD means namespace `default`."""
    if "/" in name:
        ns, _, pod = name.partition("/")
        if namespace and namespace != ns:
            raise LabError(f"pod {name} is in namespace {ns}, not {namespace}")
        return f"{ns}/{pod}"
    return f"{namespace or 'default'}/{name}"


def _datastore_keys(state: LabState) -> dict[str, str]:
    """The netconf keys Calico's CNI uses to find the datastore."""
    if state.datastore == "etcd":
        from pycalico.lab.etcd_cluster import endpoints

        return {"datastore_type": "etcdv3", "etcd_endpoints": endpoints()}
    return {"datastore_type": "sqlite", "sqlite_path": state.path("datastore.db")}


def conflist(state: LabState, node: str) -> dict[str, Any]:
    """The node's CNI configuration: calico + portmap, as Calico's installer writes it."""
    mtu = 0
    try:
        with open(state.path("nodes", node, "lib", "mtu"), encoding="ascii") as f:
            mtu = int(f.read().strip() or 0)
    except (OSError, ValueError):
        pass
    return {
        "cniVersion": "1.0.0",
        "name": NETWORK,
        "plugins": [
            {
                "type": "calico",
                "log_level": "info",
                # Calico's /var/log/calico/cni/cni.log, per node (calico-lab logs --component cni)
                "log_file_path": state.path("nodes", node, "cni.log"),
                **_datastore_keys(state),
                "nodename_file": state.path("nodes", node, "lib", "nodename"),
                "mtu": mtu,
                "ipam_lock_file": state.path("nodes", node, "run", "ipam.lock"),
                "ipam": {"type": "calico-ipam", "assign_ipv6": str(state.ipv6).lower()},
                # Kubernetes pods: profiles kns.<ns> and ksa.<ns>.<sa>, as in calico.yaml.
                "policy": {"type": "k8s"},
            },
            {"type": "portmap", "snat": True, "capabilities": {"portMappings": True}},
        ],
    }


def _cni(
    state: LabState,
    node: str,
    command: str,
    pod: Pod,
    netconf: dict[str, Any],
    prev: dict[str, Any] | None = None,
) -> dict[str, Any]:
    plugin_conf = {**netconf, "cniVersion": "1.0.0", "name": NETWORK}
    if prev is not None:
        plugin_conf["prevResult"] = prev
    namespace, _, name = pod.name.partition("/")
    bin_dir = state.path("nodes", node, "bin")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": pod.container_id,
        "CNI_NETNS": f"/run/netns/{pod.netns}",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": f"{bin_dir}:/usr/lib/cni",
        "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={name}",
    }
    plugin = (
        os.path.join(bin_dir, netconf["type"])
        if netconf["type"].startswith("calico")
        else os.path.join("/usr/lib/cni", netconf["type"])
    )
    out = subprocess.run(
        ["ip", "netns", "exec", ns_name(state.name, node), plugin],
        env=env,
        input=json.dumps(plugin_conf).encode(),
        capture_output=True,
        check=False,
    )
    body = json.loads(out.stdout) if out.stdout.strip() else {}
    if out.returncode != 0:
        raise LabError(
            f"CNI {command} ({netconf['type']}) failed for {pod.name}: "
            f"{body.get('msg', out.stderr.decode().strip())}"
        )
    return body


def add(
    state: LabState,
    name: str,
    node: str,
    namespace: str | None = None,
    labels: dict[str, str] | None = None,
    serve: str = "",
    annotations: dict[str, str] | None = None,
    ports: list[dict[str, Any]] | None = None,
    service_account: str = "default",
    owner: str = "",
) -> Pod:
    """A pod in the namespace's network, its WorkloadEndpoint carrying `labels`, the named
    `ports` and `service_account` as Calico's would; `serve` is what its echo server answers."""
    from pycalico.lab import kube_store

    key = pod_key(name, namespace)
    if key in state.pods:
        raise LabError(f"pod {key} already exists")
    if node not in state.nodes:
        raise LabError(f"no node {node} in lab {state.name} (nodes: {', '.join(state.nodes)})")
    kube_namespace = key.partition("/")[0]
    reason = dns1123_label(kube_namespace)
    if reason:
        raise LabError(f"namespace {kube_namespace!r}: {reason}")
    kube_store.session(
        state, lambda c: kube_store.ensure_namespace(c, kube_namespace, {service_account})
    )
    digest = hashlib.sha256(f"{state.name}/{key}".encode()).hexdigest()
    pod = Pod(
        key,
        node,
        f"{state.name}-pod-{digest[:10]}",
        digest,
        labels=labels or {},
        serve=serve,
        ports=ports or [],
        service_account=service_account,
        owner=owner,
        created=time.time(),
    )
    with STATE_LOCK:
        if key in state.pods:
            raise LabError(f"pod {key} already exists")
        state.pods[key] = pod
        state.save()  # recorded before the namespace exists, so `down` always finds it
    sh("ip", "netns", "add", pod.netns)
    netconf = conflist(state, node)
    # What a runtime passes about the pod, in the CNI `args` convention; ports and the
    # service account stand in for what Calico's plugin reads from the API server.
    pod_args = {
        "labels": [{"key": k, "value": v} for k, v in pod.labels.items()],
        "annotations": annotations or {},
        "ports": pod.ports,
        "serviceAccountName": service_account,
    }
    result: dict[str, Any] | None = None
    try:
        for plugin in netconf["plugins"]:
            conf = {**plugin, "args": {"cni": pod_args}} if plugin["type"] == "calico" else plugin
            result = _cni(state, node, "ADD", pod, conf, result)
    except LabError:
        remove(state, key)
        raise
    assert result is not None
    _wait_programmed(state, node, result["interfaces"][0]["name"])
    addresses = [ip["address"].split("/")[0] for ip in result["ips"]]
    pod.ip = next((a for a in addresses if ":" not in a), "")
    pod.ip6 = next((a for a in addresses if ":" in a), "")
    if serve:
        pod.server_pid = _start_server(pod, serve, state.path("pods", digest[:10] + ".log"))
    state.save()
    return pod


def start_all(
    starts: Sequence[Callable[[], Pod]], started: Callable[[Pod], None] | None = None
) -> None:
    """Run pod starts (each an `add`) POD_STARTS at a time, as kubelets start a DaemonSet's
    or a Deployment's pods; `started` hears of each pod as it is up. A pod that fails is
    removed by `add` itself and the others go on, as they would in a cluster; the first
    failure is raised once every start has ended."""
    failure: LabError | None = None
    with concurrent.futures.ThreadPoolExecutor(POD_STARTS) as pool:
        for future in concurrent.futures.as_completed([pool.submit(start) for start in starts]):
            try:
                pod = future.result()
            except LabError as exc:
                failure = failure or exc
                continue
            if started is not None:
                started(pod)
    if failure is not None:
        raise failure


def _wait_programmed(state: LabState, node: str, interface: str) -> None:
    """Until Felix has the pod's policy in the kernel its interface drops everything; a lab
    pod is handed over usable, as a runtime waiting on Calico's endpoint status would."""
    path = state.path("nodes", node, "run", "endpoint-status", interface)
    deadline = time.monotonic() + PROGRAMMED_TIMEOUT
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise LabError(
                f"calico-node on {node} did not program {interface} within "
                f"{PROGRAMMED_TIMEOUT:.0f}s; see its log"
            )
        time.sleep(0.01)


def _start_server(pod: Pod, serve: str, log_path: str) -> int:
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                pod.netns,
                sys.executable,
                "-m",
                "pycalico.lab.echo",
                serve,
                pod.name,
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    return proc.pid


def remove(state: LabState, name: str) -> None:
    key = pod_key(name)
    pod = state.pods.get(key)
    if pod is None:
        raise LabError(f"no pod {key}")
    if pod.server_pid:
        stop_pid(pod.server_pid)
    netconf = conflist(state, pod.node)
    for plugin in reversed(netconf["plugins"]):
        with contextlib.suppress(LabError):  # best effort: the namespace goes regardless
            _cni(state, pod.node, "DEL", pod, plugin)
    subprocess.run(["ip", "netns", "del", pod.netns], capture_output=True, check=False)
    with STATE_LOCK:
        del state.pods[key]
        state.save()


def listing(state: LabState) -> str:
    rows = [("POD", "NODE", "IP", "LABELS")]
    for key, pod in sorted(state.pods.items()):
        rows.append(
            (key, pod.node, pod.ip, ",".join(f"{k}={v}" for k, v in sorted(pod.labels.items())))
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return (
        "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        )
        + "\n"
    )


def exec_in(state: LabState, target: str, command: list[str], namespace: str | None = None) -> int:
    """Run `command` on a node, in a pod, or on the lab's router (`tor` in a ToR lab) or
    external host. A `birdc` without `-s` talks to that namespace's BIRD."""
    from pycalico.lab.cluster import node_env

    ns, node, bird_socket = exec_target(state, target, namespace)
    env = node_env(state, node)
    if os.path.basename(command[0]) in ("birdc", "birdcl") and "-s" not in command:
        if not bird_socket or not os.path.exists(bird_socket):
            raise LabError(f"{target} runs no BIRD in lab {state.name} ({_why_no_bird(state)})")
        command = [command[0], "-s", bird_socket, *command[1:]]
    return subprocess.run(["ip", "netns", "exec", ns, *command], env=env, check=False).returncode


def exec_target(state: LabState, target: str, namespace: str | None = None) -> tuple[str, str, str]:
    """(network namespace, node whose environment applies, BIRD control socket or "")."""
    if target in state.nodes and not namespace:
        return ns_name(state.name, target), target, state.path("nodes", target, "run", "bird.ctl")
    if target in ("router", "tor", "external") and not namespace:
        if target == "tor" and state.topology != "tor":
            raise LabError(f"lab {state.name} has no ToR (its topology is {state.topology})")
        if target == "external":
            return ns_name(state.name, "ext"), state.nodes[0], ""
        tor = state.path("tor", "bird.ctl") if state.topology == "tor" else ""
        return ns_name(state.name, "router"), state.nodes[0], tor
    pod = state.pods.get(pod_key(target, namespace))
    if pod is None:
        where = f"pod {pod_key(target, namespace)}" if namespace else f"node or pod {target!r}"
        raise LabError(
            f"no {where} in lab {state.name} (targets: {', '.join(state.nodes)}, "
            "router, external, or a pod)"
        )
    return pod.netns, pod.node, ""


def _why_no_bird(state: LabState) -> str:
    if state.encap == "vxlan" and state.topology != "tor" and not state.ipv6:
        return "a VXLAN lab routes without BGP; --encap none or ipip, or --topology tor, run BIRD"
    return "its BIRD is not running"


def host_veth(pod: Pod) -> str:
    """The node's end of the pod's veth, named as Calico's CNI names it."""
    from pycalico.cni.endpoint import Workload

    namespace, _, name = pod.name.partition("/")
    return Workload(pod.node, "k8s", namespace, name, pod.container_id, "eth0").host_ifname


def in_pod(pod: Pod, *cmd: str) -> str:
    return in_ns(pod.netns, *cmd)
