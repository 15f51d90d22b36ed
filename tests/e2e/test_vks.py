"""A VKS Supervisor on the real test API server: the Cluster API and vm-operator CRDs installed there, Clusters
written by hand and by the program admitted by the real schema, and FakeVks (tests/e2e/supervisor.py), which
fakes readiness by writing the Cluster's status and its kubeconfig Secret, since no VKS controller runs here."""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from e2e.cluster import ApiServer, install_crds
from e2e.supervisor import (
    AVAILABLE,
    CLUSTER_API,
    SUPERVISOR_CRDS,
    FakeVks,
    apply,
    inline_kubeconfig,
    vsphere_namespace,
)
from program.deploy import deploy
from program.offline import load_stack_file, run_offline, stack_path

NAMESPACE = "ml-team"  # the vSphere namespace of stacks/Pulumi.vks-cluster.yaml


def until(what: str, found: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll `found` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"no {what} after {timeout}s")


def hand_written(api_version: str, name: str = "hand-written") -> dict[str, Any]:
    """A Cluster as the VKS docs show one for builtin-generic-v3.4.0: a GPU pool on the Ubuntu image, no surge."""
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    pool: dict[str, Any] = {
        "class": "node-pool", "name": "gpu", "replicas": 1,
        "metadata": {"annotations": {"run.tanzu.vmware.com/resolve-os-image": "os-name=ubuntu"}},
        "variables": {"overrides": [{"name": "vmClass", "value": "vgpu-h100-80c"}]}}
    if api_version == "v1beta2":
        class_ref: dict[str, Any] = {"classRef": {"name": "builtin-generic-v3.4.0",
                                                  "namespace": "vmware-system-vks-public"}}
        pool["rollout"] = {"strategy": strategy}
    else:
        class_ref = {"class": "builtin-generic-v3.4.0", "classNamespace": "vmware-system-vks-public"}
        pool["strategy"] = strategy
    return {"apiVersion": f"cluster.x-k8s.io/{api_version}", "kind": "Cluster",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"clusterNetwork": {"pods": {"cidrBlocks": ["192.168.156.0/20"]},
                                        "services": {"cidrBlocks": ["10.96.0.0/12"]},
                                        "serviceDomain": "cluster.local"},
                     "topology": {**class_ref, "version": "v1.33.3+vmware.1-fips-vkr.1",
                                  "controlPlane": {"replicas": 1},
                                  "workers": {"machineDeployments": [pool]},
                                  "variables": [{"name": "vmClass", "value": "best-effort-large"},
                                                {"name": "storageClass", "value": "vsan-default-storage-policy"}]}}}


def refusal(dynamic: DynamicClient, obj: dict[str, Any]) -> str:
    """The server's message refusing a dry-run apply of `obj` ('' when admitted)."""
    try:
        apply(dynamic, obj, dry_run=True)
    except ApiException as error:
        return str(json.loads(error.body or "{}").get("message", error.reason))
    return ""


@pytest.fixture(scope="module")
def supervisor(api_server: ApiServer) -> DynamicClient:
    """The test API server as a Supervisor: its CRDs and the vSphere namespace."""
    dynamic = DynamicClient(api_server.api())  # type: ignore[no-untyped-call]
    install_crds(dynamic, SUPERVISOR_CRDS)
    vsphere_namespace(dynamic, NAMESPACE)
    return dynamic


@pytest.mark.parametrize("api_version", ["v1beta2", "v1beta1"])
def test_the_real_schema_admits_a_hand_written_cluster(supervisor: DynamicClient, api_version: str) -> None:
    cluster = hand_written(api_version)
    assert refusal(supervisor, cluster) == ""
    other = "v1beta1" if api_version == "v1beta2" else "v1beta2"
    mixed = copy.deepcopy(cluster)  # the other version's field names are refused: the schema is really checked
    mixed["spec"]["topology"]["workers"]["machineDeployments"][0] = \
        hand_written(other)["spec"]["topology"]["workers"]["machineDeployments"][0]
    message = refusal(supervisor, mixed)
    assert "rollout" in message if api_version == "v1beta1" else "strategy" in message, message


@pytest.mark.parametrize("api_version", ["v1beta2", "v1beta1"])
def test_the_real_schema_admits_the_cluster_of_the_bundled_stack(supervisor: DynamicClient,
                                                                  api_version: str) -> None:
    """The Cluster the program writes for stacks/Pulumi.vks-cluster.yaml, in both API versions."""
    config = load_stack_file(stack_path("vks-cluster"), "vks-cluster")
    sup = json.loads(config.values["pai:supervisor"])
    config.values["pai:supervisor"] = json.dumps({**sup, "apiVersion": api_version})
    written = [r.inputs for r in run_offline(deploy, config) if r.inputs.get("kind") == "Cluster"]
    assert [c["apiVersion"] for c in written] == [f"cluster.x-k8s.io/{api_version}"]
    assert refusal(supervisor, written[0]) == ""


def test_fake_vks_makes_a_cluster_available_and_serves_its_kubeconfig(api_server: ApiServer,
                                                                      supervisor: DynamicClient,
                                                                      tmp_path: Path) -> None:
    clusters = supervisor.resources.get(api_version=CLUSTER_API, kind="Cluster")
    secrets = supervisor.resources.get(api_version="v1", kind="Secret")
    kubeconfig = inline_kubeconfig(api_server.admin_kubeconfig)

    def available(generation: int) -> bool:
        status = clusters.get(name="faked", namespace=NAMESPACE).to_dict().get("status") or {}
        return any(c["type"] == AVAILABLE and c["status"] == "True" and c["observedGeneration"] == generation
                   for c in status.get("conditions") or [])

    with FakeVks(api_server.api(), NAMESPACE, kubeconfig) as vks:
        created = apply(supervisor, hand_written("v1beta2", "faked"))
        until("Available at generation 1", lambda: available(1))
        secret = secrets.get(name="faked-kubeconfig", namespace=NAMESPACE).to_dict()
        assert secret["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
        changed = hand_written("v1beta2", "faked")
        changed["spec"]["topology"]["version"] = "v1.33.4+vmware.1-fips-vkr.1"
        assert apply(supervisor, changed)["metadata"]["generation"] == 2
        until("Available at generation 2", lambda: available(2))
    assert [(name, gen, spec["topology"]["version"]) for name, gen, spec in vks.seen] == [
        ("faked", 1, "v1.33.3+vmware.1-fips-vkr.1"), ("faked", 2, "v1.33.4+vmware.1-fips-vkr.1")]
    path = tmp_path / "workload.kubeconfig"  # the kubeconfig in the Secret reaches the same API server
    path.write_bytes(base64.b64decode(secret["data"]["value"]))
    namespaces = client.CoreV1Api(api_server.api(path)).list_namespace().to_dict()["items"]
    assert NAMESPACE in [n["metadata"]["name"] for n in namespaces]
