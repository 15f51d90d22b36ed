"""`paictl validate --live` against a real kube-apiserver: the cluster the fake API server of
tests/test_validate_live.py imitates (GFD-labelled nodes, the GPU Operator's Helm release, ClusterPolicy with its
real CRD, driver pods), written to the real server through its status subresources, then read back by paictl."""

from __future__ import annotations

import json

import pytest
from fake_kube import cluster_policy, gfd_node, helm_release, operand_pod
from kubernetes.dynamic import DynamicClient

from e2e.cluster import ApiServer, install_crds, put
from paictl.cli import main

GUEST = "580.95.05"  # stacks/Pulumi.vks-prod.yaml pai:gpu.driver.version
NODES = ["gpu-node-0", "gpu-node-1"]


def test_validate_live_reads_the_real_server(api_server: ApiServer, capsys: pytest.CaptureFixture[str]) -> None:
    dynamic = DynamicClient(api_server.api())  # type: ignore[no-untyped-call]
    install_crds(dynamic)
    put(dynamic, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gpu-operator"}})
    for name in NODES:
        put(dynamic, gfd_node(name, product="GRID-H100XM-80C", driver=GUEST, cuda="13.0", compute="9.0"))
    put(dynamic, gfd_node("cp-0", product=None))
    put(dynamic, helm_release("gpu-operator", "gpu-operator", "gpu-operator", "v26.7.0"))
    put(dynamic, cluster_policy("ready", driver={
        "enabled": True, "repository": "harbor.pai.prod.example.internal/nvidia", "image": "vgpu-guest-driver",
        "version": GUEST, "licensingConfig": {"nlsEnabled": True, "secretName": "licensing-config"}}))
    for i, name in enumerate(NODES):
        put(dynamic, operand_pod(f"nvidia-vgpu-driver-{i}", "nvidia-vgpu-driver-daemonset", name))

    code = main(["validate", "--stack", "vks-prod", "--live", "--format", "json",
                 "--kubeconfig", str(api_server.admin_kubeconfig)])
    out, err = capsys.readouterr()
    report = json.loads(out)
    by_id = {c["id"]: c for c in report["checks"]}
    assert by_id["cluster-policy"]["status"] == "pass", by_id["cluster-policy"]
    assert by_id["driver-pods"]["status"] == "pass", by_id["driver-pods"]
    assert any(s.startswith("cluster") for c in report["checks"] for s in c["sources"])
    assert code == (1 if report["verdict"] == "fail" else 0), err
