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
from pycalico.api.kind import Kind, singleton_name
from pycalico.api.schema import Custom, Field, FieldError, Int, ListOf, MapOf, Str, Struct

_ENABLED_DISABLED = Choice(("Enabled", "Disabled"))
_DURATION = Custom(go_duration)
_PORT = Int(0, 65535)


def _template_name(value: str) -> str | None:
    if not value:
        return "Template name must be specified"
    return checks.dns1123_subdomain(value)


def _unique_template_names(templates: list[dict[str, Any]]) -> str | None:
    # The name makes the generated HostEndpoint names unique, so it must be unique itself.
    names = [t["generateName"] for t in templates]
    return "Template name must be unique" if len(set(names)) != len(names) else None


def _check_template(template: dict[str, Any], path: str) -> list[FieldError]:
    if template.get("interfaceCIDRs"):
        return []
    return [FieldError(f"{path}.interfaceCIDRs", [], "CIDR can not be empty")]


_TEMPLATE = Struct(
    (
        Field("generateName", Str((_template_name,)), required=True),
        Field("interfaceCIDRs", ListOf(Str((checks.ip_or_cidr,)))),
        Field("interfacePattern", Str()),  # A Go regexp; only the type is checked.
        Field("labels", MapOf(Str((checks.label_value,)), key_check=checks.label_key)),
        Field("nodeSelector", Str((unless_empty(checks.selector),))),
    ),
    checks=(_check_template,),
)

_HOST_ENDPOINT = Struct(
    (
        Field("autoCreate", _ENABLED_DISABLED),
        Field("createDefaultHostEndpoint", _ENABLED_DISABLED),
        Field("templates", ListOf(_TEMPLATE, (_unique_template_names,))),
    )
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
                Choice(("AllServices", "RequestedServicesOnly")),
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
                Choice(("None", "Debug", "Info", "Warning", "Error", "Fatal", "Panic")),
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
    name_check=singleton_name("default"),
)
