"""Prometheus metrics shared by calico-node and calico-goldmane: the text exposition as Go's
client writes it, and summaries with quantiles over a sliding window.

prometheus_client is imported only from here, pycalico.felix.metrics and
pycalico.flows.metrics, which the CNI plugin's start-up path never reaches.
"""
