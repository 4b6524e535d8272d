"""KubeControllersConfiguration: calico-kube-controllers' settings, one object named `default`.

Transcribed from projectcalico/calico api/pkg/apis/projectcalico/v3/kubecontrollersconfig.go
(Go struct order). On write, libcalico-go's client (clientv3/kubecontrollersconfig.go,
validateAndFillDefaults) fills only prometheusMetricsPort, controllers.node.leakGracePeriod
and controllers.loadBalancer.assignIPs and checks host endpoint templates; every other
default (log level, health checks, reconciler periods...) is applied by kube-controllers at
run time and appears in the `default` object only because kube-controllers creates it with
them (KUBE_CONTROLLERS_DEFAULTS).
"""

from __future__ import annotations

from typing import Any

from pycalico.api import checks
from pycalico.api.duration import go_duration
from pycalico.api.felixconfig import Choice, unless_empty
from pycalico.api.kind import Kind, singleton_refusal
from pycalico.api.schema import (
    Custom,
    Field,
    FieldError,
    GoTag,
    Int,
    ListOf,
    MapOf,
    Str,
    Struct,
    go_tag,
)

_ENABLED_DISABLED = Choice(("Enabled", "Disabled"), tag="oneof")
_DURATION = Custom(go_duration)
_PORT = Int(0, 65535)
# Where the client's own template checks say the error is (it names no single template).
_TEMPLATES = "KubeControllersConfiguration.Node.HostEndpoint.Templates"


def _check_templates(hep: dict[str, Any], path: str) -> list[FieldError]:
    """validateAndFillDefaults' template rules, in its order, and only the first broken one
    (the client returns at it): a name, not too long, unique (it makes the generated
    HostEndpoint names unique), and some CIDRs."""
    seen: set[str] = set()
    for i, template in enumerate(hep.get("templates", [])):
        where = f"{path}.templates[{i}]"
        name = template.get("generateName", "")
        if not name:
            reason = "Template name must be specified"
            return [FieldError(f"{where}.generateName", None, reason, _TEMPLATES)]
        if len(name) > checks.SUBDOMAIN_MAX:
            reason = "Template name must be shorter than 253 characters"
            return [FieldError(f"{where}.generateName", None, reason, _TEMPLATES)]
        if name in seen:
            reason = "Template name must be unique"
            return [FieldError(where, None, reason, f"{_TEMPLATES}.{name}")]
        seen.add(name)
        if not template.get("interfaceCIDRs"):
            reason = "CIDR can not be empty"
            return [FieldError(f"{where}.interfaceCIDRs", None, reason, f"{_TEMPLATES}.{name}")]
    return []


def _cidrs(values: list[str]) -> str | None:
    # Calico's `cidrs` tag checks the list as one value.
    return GoTag("cidrs") if any(checks.ip_or_cidr(v) for v in values) else None


def _labels(labels: dict[str, str]) -> str | None:
    bad = any(checks.label_key(k) or checks.label_value(v) for k, v in labels.items())
    return GoTag("labels") if bad else None


_TEMPLATE = Struct(
    (
        # A long name is the client's to refuse (_check_templates), with its own words.
        Field("generateName", Str((go_tag("name", checks.subdomain_chars),))),
        Field("interfaceCIDRs", ListOf(Str(), (_cidrs,))),
        Field("interfacePattern", Str()),  # A Go regexp; only the type is checked.
        Field("labels", MapOf(Str(), checks=(_labels,))),
        Field("nodeSelector", Str((unless_empty(go_tag("selector", checks.selector)),))),
    ),
)

_HOST_ENDPOINT = Struct(
    (
        Field("autoCreate", _ENABLED_DISABLED),
        Field(
            "createDefaultHostEndpoint",
            Choice(("Enabled", "Disabled"), tag="createDefaultHostEndpoint"),
        ),
        Field("templates", ListOf(_TEMPLATE)),
    ),
    checks=(_check_templates,),
)

# Policy, workloadEndpoint, serviceAccount and namespace controllers share this shape.
_RECONCILER = Struct((Field("reconcilerPeriod", _DURATION, omitempty=False),))


def _spec(client_defaults: bool) -> Struct:
    """KubeControllersConfigurationSpec, with the client's fills for a written spec, or
    without them for status.runningConfig, which kube-controllers reports as it resolved it."""

    def fill(value: Any) -> Any:
        return value if client_defaults else None

    node = Struct(
        (
            Field("reconcilerPeriod", _DURATION, omitempty=False),
            Field("syncLabels", _ENABLED_DISABLED),
            Field("hostEndpoint", _HOST_ENDPOINT),
            Field("leakGracePeriod", _DURATION, default=fill("15m0s"), omitempty=False),
        )
    )
    load_balancer = Struct(
        (
            Field(
                "assignIPs",
                Choice(("AllServices", "RequestedServicesOnly"), tag="assignIPs"),
                default=fill("AllServices"),
            ),
        )
    )
    controllers = Struct(
        (
            Field("node", node),
            Field("policy", _RECONCILER),
            Field("workloadEndpoint", _RECONCILER),
            Field("serviceAccount", _RECONCILER),
            Field("namespace", _RECONCILER),
            Field("loadBalancer", load_balancer),
            # Go field Migration; newer than v3.30 but accepted, as it is in the Go source.
            Field("policyMigration", Struct((Field("enabled", _ENABLED_DISABLED),))),
        )
    )
    return Struct(
        (
            Field(
                "logSeverityScreen",
                Choice(
                    ("None", "Debug", "Info", "Warning", "Error", "Fatal", "Panic"),
                    tag="logLevel",
                    tag_accepts=("Trace",),
                ),
            ),
            Field("healthChecks", _ENABLED_DISABLED),
            Field("etcdV3CompactionPeriod", _DURATION, omitempty=False),
            Field("prometheusMetricsPort", _PORT, default=fill(9094), omitempty=False),
            # Not a pointer and not omitempty in Go: always stored, `{}` when unset.
            Field("controllers", controllers, default={}),
            Field("debugProfilePort", _PORT, omitempty=False),
        )
    )


KUBE_CONTROLLERS_SPEC = _spec(client_defaults=True)

KUBE_CONTROLLERS_STATUS = Struct(
    (
        Field("runningConfig", _spec(client_defaults=False)),
        Field("environmentVars", MapOf(Str())),
    )
)

# The `default` spec kube-controllers creates when none exists
# (kube-controllers/pkg/config/runconfig.go, NewDefaultKubeControllersConfig, v3.30), as
# stored after the client's fills: durations in Go's form, prometheusMetricsPort added.
# Shared: deep-copy before modifying.
KUBE_CONTROLLERS_DEFAULTS: dict[str, Any] = {
    "logSeverityScreen": "Info",
    "healthChecks": "Enabled",
    "etcdV3CompactionPeriod": "10m0s",
    "prometheusMetricsPort": 9094,
    "controllers": {
        "node": {
            "reconcilerPeriod": "5m0s",
            "syncLabels": "Enabled",
            "hostEndpoint": {"autoCreate": "Disabled", "createDefaultHostEndpoint": "Enabled"},
            "leakGracePeriod": "15m0s",
        },
        "policy": {"reconcilerPeriod": "5m0s"},
        "workloadEndpoint": {"reconcilerPeriod": "5m0s"},
        "serviceAccount": {"reconcilerPeriod": "5m0s"},
        "namespace": {"reconcilerPeriod": "5m0s"},
        "loadBalancer": {"assignIPs": "AllServices"},
    },
}

KUBECONTROLLERSCONFIGURATION = Kind(
    "KubeControllersConfiguration",
    "kubecontrollersconfigurations",
    namespaced=False,
    spec=KUBE_CONTROLLERS_SPEC,
    status=KUBE_CONTROLLERS_STATUS,
    checks=(singleton_refusal("Kube Controllers Configuration"),),
)
