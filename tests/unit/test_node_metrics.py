"""calico-node's Prometheus text: the names and types Calico's Felix exports."""

from __future__ import annotations

from pycalico.node.health import Status


def test_metrics_count_the_clusters_host_endpoints_as_felix_does() -> None:
    text = Status(host_endpoints=3).metrics()
    assert (
        "# HELP felix_cluster_num_host_endpoints Total number of host endpoints cluster-wide.\n"
        "# TYPE felix_cluster_num_host_endpoints gauge\n"
        "felix_cluster_num_host_endpoints 3\n"
    ) in text
