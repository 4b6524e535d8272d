"""The manifests `calico-lab apply -f` accepts (pycalico.lab.kube), the checks made against
the lab before anything is applied, and where pods are scheduled (pycalico.lab.kube_apply)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from pycalico.ctl.inputs import Document
from pycalico.kube import workloads
from pycalico.kube.validation import KubeInvalid
from pycalico.lab import kube, kube_apply
from pycalico.lab.state import Deployment, LabError, LabState, Pod
from tests.support.seed_manifests import SEED_DEPLOYMENT, SEED_NP


def pod_doc(spec: dict[str, Any], name: str = "p", **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, **meta},
        "spec": spec,
    }


def container(**fields: Any) -> dict[str, Any]:
    return {"name": "c", "image": "busybox", **fields}


def pod(spec_extra: dict[str, Any] | None = None, **fields: Any) -> kube.Manifest:
    return kube.manifest(pod_doc({"containers": [container(**fields)], **(spec_extra or {})}))


def pod_refused(doc: dict[str, Any], fragment: str) -> None:
    with pytest.raises(KubeInvalid) as info:
        kube.manifest(doc)
    assert fragment in str(info.value), str(info.value)


def deployment_doc(**spec: Any) -> dict[str, Any]:
    doc = yaml.safe_load(SEED_DEPLOYMENT)
    doc["spec"].update(spec)
    return doc


# --- the seeds ------------------------------------------------------------------------------


def test_seed_network_policy_becomes_its_knp_policy() -> None:
    m = kube.manifest(yaml.safe_load(SEED_NP))
    assert (m.kind, m.name, m.namespace, m.kind_phrase) == (
        "NetworkPolicy",
        "test-network-policy",
        "default",
        "networkpolicy.networking.k8s.io",
    )
    assert m.resource["metadata"]["name"] == "knp.default.test-network-policy"
    assert (
        m.resource["spec"]["selector"] == "projectcalico.org/orchestrator == 'k8s' && app == 'web'"
    )


def test_seed_deployment_with_tolerations_and_a_command_is_accepted() -> None:
    m = kube.manifest(yaml.safe_load(SEED_DEPLOYMENT))
    assert (m.kind, m.name, m.namespace, m.replicas) == (
        "Deployment",
        "busybox-deployment",
        "default",
        2,
    )
    assert m.template is not None
    assert m.template.labels == {"app": "busybox"}
    assert kube.serve(m.template) == "" and m.template.endpoint_ports() == []
    assert m.kind_phrase == "deployment.apps"


# --- pods -----------------------------------------------------------------------------------


def test_pod_defaults_namespace_and_service_account_as_the_apiserver_does() -> None:
    m = pod()
    assert (m.namespace, m.key) == ("default", "default/p")
    assert m.template is not None
    assert m.template.service_account == "default"
    assert m.template.node == ""


def test_pod_fields_the_lab_uses() -> None:
    m = kube.manifest(
        pod_doc(
            {
                "nodeName": "node2",
                "serviceAccountName": "api",
                "containers": [container()],
            },
            namespace="shop",
            labels={"app": "web"},
            annotations={"cni.projectcalico.org/ipv4pools": '["p1"]'},
        )
    )
    assert m.template is not None
    assert (m.namespace, m.template.node, m.template.service_account) == ("shop", "node2", "api")
    assert m.template.labels == {"app": "web"}
    assert m.template.annotations == {"cni.projectcalico.org/ipv4pools": '["p1"]'}


def test_deprecated_service_account_field_is_read_too() -> None:
    m = pod({"serviceAccount": "old"})
    assert m.template is not None and m.template.service_account == "old"


def test_named_ports_go_to_the_endpoint_with_lower_case_protocols() -> None:
    m = pod(
        ports=[
            {"name": "http", "containerPort": 8080},
            {"name": "dns", "containerPort": 53, "protocol": "UDP"},
            {"name": "assoc", "containerPort": 7000, "protocol": "SCTP"},
            {"containerPort": 9090},
        ]
    )
    assert m.template is not None
    assert m.template.endpoint_ports() == [
        {"name": "http", "protocol": "tcp", "port": 8080},
        {"name": "dns", "protocol": "udp", "port": 53},
        {"name": "assoc", "protocol": "sctp", "port": 7000},
    ]
    # Every TCP and UDP port is served, named or not; the echo server has no SCTP.
    assert kube.serve(m.template) == "8080,53/udp,9090"


def test_init_container_ports_are_named_but_not_served_and_duplicates_served_once() -> None:
    m = kube.manifest(
        pod_doc(
            {
                "containers": [
                    container(ports=[{"containerPort": 80}]),
                    {"name": "d", "image": "x", "ports": [{"containerPort": 80}]},
                ],
                "initContainers": [
                    {"name": "init", "image": "x", "ports": [{"name": "boot", "containerPort": 81}]}
                ],
            }
        )
    )
    assert m.template is not None
    assert kube.serve(m.template) == "80"
    assert m.template.endpoint_ports() == [{"name": "boot", "protocol": "tcp", "port": 81}]


def test_status_from_kubectl_get_is_accepted() -> None:
    doc = pod_doc({"containers": [container()]})
    doc["status"] = {"phase": "Running"}
    assert kube.manifest(doc).kind == "Pod"


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        (pod_doc({"containerz": []}), 'unknown field "spec.containerz"'),
        (pod_doc({}), "spec.containers: Required value"),
        (pod_doc({"containers": [container(imag="x")]}), 'unknown field "spec.containers[0].imag"'),
        (pod_doc({"containers": [{"name": "c"}]}), "spec.containers[0].image: Required value"),
        (pod_doc({"containers": [{"image": "i"}]}), "spec.containers[0].name: Required value"),
        (pod_doc({"containers": [container(name="C")]}), 'containers[0].name: Invalid value: "C"'),
        (
            pod_doc({"containers": [container(), container()]}),
            'spec.containers[1].name: Duplicate value: "c"',
        ),
        (
            pod_doc({"containers": [container(ports=[{"port": 80}])]}),
            'unknown field "spec.containers[0].ports[0].port"',
        ),
        (
            pod_doc({"containers": [container(ports=[{"name": "x"}])]}),
            "ports[0].containerPort: Required value",
        ),
        (
            pod_doc({"containers": [container(ports=[{"containerPort": 0}])]}),
            "containerPort: Invalid value: 0: must be between 1 and 65535, inclusive",
        ),
        (
            pod_doc({"containers": [container(ports=[{"containerPort": "80"}])]}),
            'containerPort: Invalid value: "80": must be an integer',
        ),
        (
            pod_doc({"containers": [container(ports=[{"containerPort": 1, "protocol": "ICMP"}])]}),
            'protocol: Unsupported value: "ICMP"',
        ),
        (
            pod_doc({"containers": [container(ports=[{"containerPort": 1, "name": "Web"}])]}),
            "must contain only alpha-numeric characters",
        ),
        (
            pod_doc(
                {
                    "containers": [
                        container(ports=[{"containerPort": 1, "name": "web"}]),
                        {"name": "d", "image": "i", "ports": [{"containerPort": 2, "name": "web"}]},
                    ]
                }
            ),
            'spec.containers[1].ports[0].name: Duplicate value: "web"',
        ),
        (
            pod_doc({"containers": [container(ports=[{"containerPort": 80, "hostPort": 8080}])]}),
            "hostPort: Forbidden: the lab does not map host ports",
        ),
        (
            pod_doc({"hostNetwork": True, "containers": [container()]}),
            "spec.hostNetwork: Forbidden",
        ),
        (
            pod_doc({"containers": [container()]}, labels={"a": "b c"}),
            'metadata.labels: Invalid value: "b c"',
        ),
        (pod_doc({"containers": [container()]}, name="web_1"), "metadata.name: Invalid value"),
        ({**pod_doc({"containers": [container()]}), "extra": {}}, 'unknown field "extra"'),
    ],
)
def test_bad_pods_are_refused_with_the_field_named(doc: dict[str, Any], fragment: str) -> None:
    pod_refused(doc, fragment)


# --- deployments ----------------------------------------------------------------------------


def test_deployment_replicas_default_to_one() -> None:
    doc = deployment_doc()
    del doc["spec"]["replicas"]
    assert kube.manifest(doc).replicas == 1


def test_selector_with_expressions_matching_the_template_is_accepted() -> None:
    doc = deployment_doc(
        selector={"matchExpressions": [{"key": "app", "operator": "In", "values": ["busybox"]}]}
    )
    assert kube.manifest(doc).kind == "Deployment"


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"selector": None}, "spec.selector: Required value"),
        ({"selector": {}}, "empty selector is invalid for deployment"),
        (
            {"selector": {"matchLabels": {"app": "other"}}},
            "spec.template.metadata.labels: Invalid value: "
            '{"app":"busybox"}: `selector` does not match template `labels`',
        ),
        (
            {"selector": {"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}},
            "`selector` does not match template `labels`",
        ),
        ({"replicas": -1}, "spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
        ({"replicas": "2"}, 'spec.replicas: Invalid value: "2": must be an integer'),
        ({"template": None}, "spec.template: Required value"),
        ({"replica": 2}, 'unknown field "spec.replica"'),
        ({"template": {"metadata": {"labels": {"app": "busybox"}}, "spec": {}}}, "containers"),
    ],
)
def test_bad_deployments(spec: dict[str, Any], fragment: str) -> None:
    with pytest.raises(KubeInvalid) as info:
        kube.manifest(deployment_doc(**spec))
    assert fragment in str(info.value), str(info.value)
    assert 'The Deployment "busybox-deployment" is invalid' in str(info.value)


def test_template_hash_is_stable_per_template_and_uses_kubernetes_name_characters() -> None:
    a = workloads.template_hash({"spec": {"containers": [{"name": "a"}]}})
    assert a == workloads.template_hash({"spec": {"containers": [{"name": "a"}]}})
    assert a != workloads.template_hash({"spec": {"containers": [{"name": "b"}]}})
    assert set(a) <= set(workloads.NAME_ALPHABET) and 1 <= len(a) <= 10


def test_a_changed_template_changes_the_hash_but_a_changed_replica_count_does_not() -> None:
    base = kube.manifest(deployment_doc())
    scaled = kube.manifest(deployment_doc(replicas=5))
    relabelled = kube.manifest(
        deployment_doc(
            selector={"matchLabels": {"app": "bb"}},
            template={"metadata": {"labels": {"app": "bb"}}, "spec": {"containers": [container()]}},
        )
    )
    assert base.template_hash == scaled.template_hash != relabelled.template_hash


# --- other kinds and whole inputs -----------------------------------------------------------


def test_namespace_and_service_account_manifests_carry_their_profiles() -> None:
    ns = kube.manifest({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "azhe"}})
    assert (ns.kind, ns.name, ns.namespace, ns.key) == ("Namespace", "azhe", "", "azhe")
    assert ns.resource["metadata"]["name"] == "kns.azhe"
    sa = kube.manifest(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "api", "namespace": "x"},
        }
    )
    assert (sa.kind, sa.name, sa.namespace) == ("ServiceAccount", "api", "x")
    assert sa.resource["metadata"]["name"] == "ksa.x.api"


def test_calico_documents_are_checked_and_kept_for_calicoctl() -> None:
    raw = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkSet",
        "metadata": {"name": "ext"},
        "spec": {"nets": ["203.0.113.0/24"]},
    }
    m = kube.manifest(raw)
    assert (m.kind, m.name, m.raw) == ("Calico", "ext", raw)
    with pytest.raises(ValueError, match=r"error with field Nets\[0\] = 'junk'"):
        kube.manifest({**raw, "spec": {"nets": ["junk"]}})


def test_unknown_kinds_and_non_objects_are_refused() -> None:
    with pytest.raises(ValueError, match='no matches for kind "Ingress" in version "v1"'):
        kube.manifest({"apiVersion": "v1", "kind": "Ingress", "metadata": {"name": "s"}})
    with pytest.raises(ValueError, match="must be a mapping"):
        kube.manifest(["a"])


def test_read_reports_the_first_bad_document_by_place_and_counts_the_rest() -> None:
    good = yaml.safe_load(SEED_NP)
    docs = [
        Document("np.yaml", 1, good),
        Document("np.yaml", 2, pod_doc({}, name="a")),
        Document("np.yaml", 3, pod_doc({}, name="b")),
    ]
    with pytest.raises(LabError) as info:
        kube.read(docs)
    message = str(info.value)
    assert message.startswith('np.yaml document 2 (Pod a): The Pod "a" is invalid')
    assert message.endswith("(and 1 more invalid documents)")
    assert [m.name for m in kube.read(docs[:1])] == ["test-network-policy"]


# --- the kubectl verbs' objects -------------------------------------------------------------


def test_run_makes_a_pod_labelled_run_name() -> None:
    m = kube.manifest(kube.run_pod("client1", "default", "busybox", None, "", None))
    assert m.template is not None
    assert (m.key, m.template.labels, kube.serve(m.template)) == (
        "default/client1",
        {"run": "client1"},
        "",
    )


def test_run_with_labels_node_and_port() -> None:
    m = kube.manifest(kube.run_pod("c", "azhe", "busybox", {"role": "x"}, "node2", 8080))
    assert m.template is not None
    assert (m.namespace, m.template.labels, m.template.node, kube.serve(m.template)) == (
        "azhe",
        {"role": "x"},
        "node2",
        "8080",
    )


def test_create_deployment_labels_app_name_and_serves_80() -> None:
    m = kube.manifest(kube.deployment("web", "default", "nginx", 3, 80))
    assert m.template is not None
    assert (m.kind, m.replicas, m.template.labels, kube.serve(m.template)) == (
        "Deployment",
        3,
        {"app": "web"},
        "80",
    )


def test_create_deployment_names_the_container_after_the_image() -> None:
    doc = kube.deployment(
        "t", "default", "registry.cn-beijing.aliyuncs.com/sanhua-k8s/nettool:1", 1, 80
    )
    assert doc["spec"]["template"]["spec"]["containers"][0]["name"] == "nettool"


# --- checks against the lab -----------------------------------------------------------------


def lab_state() -> LabState:
    state = LabState("t", ["node1", "node2", "node3"])
    state.pods = {
        "default/a": Pod(
            "default/a", "node1", "ns-a", "c1", labels={"run": "a"}, service_account="default"
        ),
        "default/b": Pod("default/b", "node1", "ns-b", "c2", service_account="default"),
        "default/c": Pod("default/c", "node2", "ns-c", "c3", service_account="default"),
    }
    return state


def test_pods_go_to_the_least_busy_node_first_in_node_order() -> None:
    state = lab_state()
    assert kube_apply.schedule(state) == "node3"
    state.pods["default/d"] = Pod("default/d", "node3", "ns-d", "c4")
    assert kube_apply.schedule(state) == "node2"


def test_an_unknown_node_is_refused_before_anything_is_applied() -> None:
    with pytest.raises(LabError, match=r'spec\.nodeName: no node "node9" in lab t'):
        kube_apply._check(lab_state(), [pod({"nodeName": "node9"})], create=False)


def test_the_same_object_twice_is_refused() -> None:
    with pytest.raises(LabError, match="pod default/p appears twice"):
        kube_apply._check(lab_state(), [pod(), pod()], create=False)


def test_run_and_create_refuse_what_exists_and_apply_relabels_it() -> None:
    existing = kube.manifest(kube.run_pod("a", "default", "busybox", {"run": "z"}, "", None))
    with pytest.raises(LabError, match='pods "a" already exists'):
        kube_apply._check(lab_state(), [existing], create=True)
    kube_apply._check(lab_state(), [existing], create=False)  # a label change is fine
    state = lab_state()
    state.deployments["default/web"] = Deployment("abc", 1)
    with pytest.raises(LabError, match=r'deployments\.apps "web" already exists'):
        kube_apply._check(
            state, [kube.manifest(kube.deployment("web", "default", "nginx", 1, 80))], True
        )


@pytest.mark.parametrize(
    "change",
    [
        {"spec": {"nodeName": "node2", "containers": [container()]}},
        {"spec": {"containers": [container(ports=[{"containerPort": 80}])]}},
        {"spec": {"serviceAccountName": "other", "containers": [container()]}},
    ],
)
def test_a_running_pod_may_only_be_relabelled(change: dict[str, Any]) -> None:
    doc = {**pod_doc({}, name="a"), **change}
    with pytest.raises(LabError, match="pod updates may not change fields other than labels"):
        kube_apply._check(lab_state(), [kube.manifest(doc)], create=False)


def test_empty_input_is_refused() -> None:
    with pytest.raises(LabError, match="no objects passed to apply"):
        kube_apply._check(lab_state(), [], create=False)


def test_a_service_is_read_and_skipped_with_a_warning_naming_kube_proxy() -> None:
    m = kube.manifest({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "wluo"}})
    assert m.kind == "Skipped"
    assert m.warning.startswith("Warning: service/wluo skipped:")
    assert "kube-proxy" in m.warning


def daemonset_doc(**spec: Any) -> dict[str, Any]:
    labels = {"app": "wluo"}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "wluo", "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container()]}},
            **spec,
        },
    }


def test_the_seeds_daemonset_with_host_volumes_and_privilege_is_accepted() -> None:
    doc = daemonset_doc()
    doc["spec"]["template"]["spec"]["volumes"] = [
        {"name": "host", "hostPath": {"path": "/", "type": "Directory"}}
    ]
    doc["spec"]["template"]["spec"]["containers"][0].update(
        {
            "volumeMounts": [{"name": "host", "mountPath": "/host"}],
            "env": [
                {
                    "name": "NETTOOL_NODE_NAME",
                    "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
                }
            ],
            "securityContext": {"privileged": True},
        }
    )
    m = kube.manifest(doc)
    assert (m.kind, m.kind_phrase, m.key) == ("DaemonSet", "daemonset.apps", "default/wluo")
    assert m.template is not None and m.template.labels == {"app": "wluo"}
    assert m.template_hash


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"replicas": 2}, "spec.replicas"),
        ({"selector": {"matchLabels": {"app": "other"}}}, "does not match template"),
        ({"selector": {}}, "empty selector is invalid for daemonset"),
    ],
)
def test_bad_daemonsets_are_refused(spec: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        kube.manifest(daemonset_doc(**spec))


def test_a_daemonset_runs_on_every_node_or_only_on_its_templates_node_name() -> None:
    everywhere = kube.manifest(daemonset_doc())
    doc = daemonset_doc()
    doc["spec"]["template"]["spec"]["nodeName"] = "node2"
    pinned = kube.manifest(doc)
    assert everywhere.template is not None and pinned.template is not None
    assert kube_apply.daemon_nodes(lab_state(), everywhere.template) == ["node1", "node2", "node3"]
    assert kube_apply.daemon_nodes(lab_state(), pinned.template) == ["node2"]


PLACEMENT = {
    "nodeSelector": {"disktype": "ssd"},
    "affinity": {"nodeAffinity": {}},
    "tolerations": [{"key": "node-role.kubernetes.io/master", "operator": "Exists"}],
    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone"}],
    "schedulingGates": [{"name": "wait"}],
}


@pytest.mark.parametrize("name", sorted(PLACEMENT))
def test_each_placement_field_a_pod_sets_is_one_warning_naming_it(name: str) -> None:
    lines = kube_apply.warnings([pod({name: PLACEMENT[name], "nodeName": "node2"})])
    assert len(lines) == 1
    assert lines[0].startswith(f"Warning: pod/p: spec.{name} ")
    assert "\n" not in lines[0]


def test_workload_templates_name_the_field_by_its_path_in_the_template() -> None:
    deploy = deployment_doc()
    deploy["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/os": "linux"}
    ds = daemonset_doc()
    ds["spec"]["template"]["spec"]["affinity"] = {"nodeAffinity": {}}
    assert kube_apply.warnings([kube.manifest(deploy), kube.manifest(ds)]) == [
        "Warning: deployment.apps/busybox-deployment: spec.template.spec.nodeSelector is "
        "ignored: the lab puts a pod on the node with the fewest pods (a DaemonSet's on every "
        "node) unless spec.nodeName names one",
        "Warning: deployment.apps/busybox-deployment: spec.template.spec.tolerations has no "
        "effect: the lab's nodes have no taints",
        "Warning: daemonset.apps/wluo: spec.template.spec.affinity is ignored: the lab puts a "
        "pod on the node with the fewest pods (a DaemonSet's on every node) unless "
        "spec.nodeName names one",
    ]


def test_placement_fields_left_empty_and_the_fields_the_lab_uses_warn_of_nothing() -> None:
    empty = pod({"nodeSelector": {}, "tolerations": [], "nodeName": "node2"})
    assert kube_apply.warnings([empty, kube.manifest(daemonset_doc())]) == []
