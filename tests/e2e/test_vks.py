"""A VKS Supervisor on the real test API server: the Cluster API and vm-operator CRDs installed there; Clusters
written by hand and by the program admitted by the real schema; the program with pai:supervisor under the real
engine creating, updating in place and destroying its Cluster (v1beta2, and v1beta1 on an older Supervisor), then
the platform on it; the Supervisor source and paictl's VKS checks reading real VM classes, quotas, images and a
ClusterClass. No VKS controller runs here: FakeVks (tests/e2e/supervisor.py) fakes readiness by writing the
Cluster's status and its kubeconfig Secret, which points at the same server."""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from conftest import bundled_cluster, cluster_of
from fake_kube import cluster_class, resource_quota, vm_class, vm_image
from kubernetes import client
from kubernetes.dynamic import DynamicClient
from pulumi import automation as auto

from components.config.schema import GROUPED_VARIABLES, WRITTEN_VARIABLES
from e2e import engine
from e2e.cluster import SERVER_TOOLS, ApiServer, install_crds, put, refused, require_tools
from e2e.supervisor import (
    CLUSTER_API,
    CLUSTER_GROUP,
    OLDER_SUPERVISOR_CRDS,
    SUMMARY,
    SUPERVISOR_CRDS,
    FakeVks,
    inline_kubeconfig,
    vsphere_namespace,
)
from paictl.cli import main
from program.offline import stack_path
from program.plan import is_kubernetes_object
from validation.sources.supervisor import read_supervisor

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
    assert refused(supervisor, cluster, dry_run=True) is None
    other = "v1beta1" if api_version == "v1beta2" else "v1beta2"
    mixed = copy.deepcopy(cluster)  # the other version's field names are refused: the schema is really checked
    mixed["spec"]["topology"]["workers"]["machineDeployments"][0] = \
        hand_written(other)["spec"]["topology"]["workers"]["machineDeployments"][0]
    message = refused(supervisor, mixed, dry_run=True) or ""
    assert "rollout" in message if api_version == "v1beta1" else "strategy" in message, message


@pytest.mark.parametrize("api_version", ["v1beta2", "v1beta1"])
def test_the_real_schema_admits_the_cluster_of_the_bundled_stack(supervisor: DynamicClient,
                                                                  api_version: str) -> None:
    """The Cluster the program writes for stacks/Pulumi.vks-cluster.yaml, in both API versions."""
    written = bundled_cluster(api_version)
    assert written["apiVersion"] == f"cluster.x-k8s.io/{api_version}"
    assert refused(supervisor, written, dry_run=True) is None


def test_fake_vks_makes_a_cluster_available_and_serves_its_kubeconfig(api_server: ApiServer,
                                                                      supervisor: DynamicClient,
                                                                      tmp_path: Path) -> None:
    clusters = supervisor.resources.get(api_version=CLUSTER_API, kind="Cluster")
    secrets = supervisor.resources.get(api_version="v1", kind="Secret")
    kubeconfig = inline_kubeconfig(api_server.admin_kubeconfig)

    def available(generation: int) -> bool:
        status = clusters.get(name="faked", namespace=NAMESPACE).to_dict().get("status") or {}
        return any(c["type"] == SUMMARY["v1beta2"] and c["status"] == "True" and c["observedGeneration"] == generation
                   for c in status.get("conditions") or [])

    with FakeVks(api_server.api(), NAMESPACE, kubeconfig) as vks:
        created = put(supervisor, hand_written("v1beta2", "faked"))
        until("Available at generation 1", lambda: available(1))
        secret = secrets.get(name="faked-kubeconfig", namespace=NAMESPACE).to_dict()
        assert secret["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
        changed = hand_written("v1beta2", "faked")
        changed["spec"]["topology"]["version"] = "v1.33.4+vmware.1-fips-vkr.1"
        assert put(supervisor, changed)["metadata"]["generation"] == 2
        until("Available at generation 2", lambda: available(2))
    assert [(name, gen, spec["topology"]["version"]) for name, gen, spec in vks.seen] == [
        ("faked", 1, "v1.33.3+vmware.1-fips-vkr.1"), ("faked", 2, "v1.33.4+vmware.1-fips-vkr.1")]
    path = tmp_path / "workload.kubeconfig"  # the kubeconfig in the Secret reaches the same API server
    path.write_bytes(base64.b64decode(secret["data"]["value"]))
    namespaces = client.CoreV1Api(api_server.api(path)).list_namespace().to_dict()["items"]
    assert NAMESPACE in [n["metadata"]["name"] for n in namespaces]


GPU_PROFILE = "nvidia_h100xm-80c"  # the vSphere vGPU profile of the GFD product NVIDIA-H100XM-80C
RELEASES = ("v1.33.3---vmware.1-fips-vkr.1", "v1.33.4---vmware.1-fips-vkr.1")
GPU_CLASSES = ("vgpu-h100-80c", "vgpu-h100-80c-16cpu")
SECRETS = {  # real secrets, set with `pulumi config set --secret`: none may show in the engine's output or state
    "nlsClientToken": "e2e-nls-token-Hq27", "mirrorPullUsername": "e2e-puller", "mirrorPullPassword": "e2e-pull-Ks56",
}
# No VKS controller: a Cluster that FakeVks does not answer must fail the test in minutes, not in the hours the
# component gives a real one.
CLUSTER_TIMEOUTS = pulumi.CustomTimeouts(create="3m", update="3m", delete="3m")
# What the provider reports while it waits for the Cluster's condition, created (no conditions yet) or updated (the
# condition observed at an older generation): pulumi-kubernetes pkg/await/condition/kubectl.go (checkCondition).
WAITING = ("Has no .status.conditions", "is less than expected")
NEWER_CLASS = "builtin-generic-v3.5.0"
VKS_MANAGER = "vmware-system-vks"  # the field manager of VKS's own changes here


def vks_values(host: str, release: str, gpu_class: str, api_version: str) -> dict[str, Any]:
    """A small VKS stack: a one-node control plane, a CPU and a vGPU pool, the GPU Operator with the vGPU guest
    driver, air gap on the local registry; no Harbor, MLflow, monitoring, tenants or models."""
    return {
        "supervisor": {"namespace": NAMESPACE, "cluster": "pai-gpu", "release": release, "apiVersion": api_version,
                       "clusterClass": "builtin-generic-v3.4.0", "storageClass": "vsan-default-storage-policy",
                       "controlPlane": {"replicas": 1, "vmClass": "best-effort-large"},
                       "nodePools": [{"name": "cpu", "replicas": 1, "vmClass": "best-effort-xlarge"},
                                     {"name": "gpu", "replicas": 1, "vmClass": gpu_class, "gpu": True}]},
        "cluster": {"target": "vks", "kubernetesVersion": "1.33",
                    "ingress": {"className": "envoy", "domain": "pai.e2e.example.internal"}},
        "registry": {"mirror": f"{host}/mirror", "pullSecret": "mirror-pull"},
        "gpu": {"operator": {"version": "v26.7.0"},
                "driver": {"mode": "vgpu", "version": "580.95.05", "image": f"{host}/mirror/nvidia/vgpu-guest-driver",
                           "licensing": {"featureType": 1}},
                "hosts": {"vgpuManagerVersion": "580.95.02"}, "products": ["NVIDIA-H100XM-80C"]},
    }


def short_cluster_timeouts(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    if not (args.type_.startswith(f"kubernetes:{CLUSTER_GROUP}/") and args.type_.endswith(":Cluster")):
        return None
    opts = pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(custom_timeouts=CLUSTER_TIMEOUTS))
    return pulumi.ResourceTransformResult(args.props, opts)


def class_move(api_version: str) -> dict[str, Any]:
    """What VKS applies to a Cluster it moves to a newer ClusterClass."""
    if api_version == "v1beta2":
        topology: dict[str, Any] = {"classRef": {"name": NEWER_CLASS, "namespace": "vmware-system-vks-public"}}
    else:
        topology = {"class": NEWER_CLASS, "classNamespace": "vmware-system-vks-public"}
    return {"apiVersion": f"{CLUSTER_GROUP}/{api_version}", "kind": "Cluster",
            "metadata": {"name": "pai-gpu", "namespace": NAMESPACE}, "spec": {"topology": topology}}


def observed(clusters: Any) -> int | None:
    """The generation FakeVks last answered for the Cluster pai-gpu."""
    found: int | None = (clusters.get(name="pai-gpu", namespace=NAMESPACE).to_dict().get("status") or {}).get(
        "observedGeneration")
    return found


def preview_up_update_destroy(server: ApiServer, dynamic: DynamicClient, api_version: str,
                              chart_registry: tuple[str, Path], tmp_path: Path) -> None:
    """The program with pai:supervisor (Clusters of `api_version`) under the real engine, `server` the Supervisor
    and, through the kubeconfig Secret FakeVks writes, the workload cluster too."""
    require_tools("pulumi", "pulumi-resource-kubernetes")
    host, ca_file = chart_registry
    for obj in (vm_class("best-effort-large", NAMESPACE, memory="16Gi", cpus=4),
                vm_class("best-effort-xlarge", NAMESPACE, memory="32Gi", cpus=4),
                vm_class(GPU_CLASSES[0], NAMESPACE, memory="64Gi", profile=GPU_PROFILE, reservation="64Gi"),
                vm_class(GPU_CLASSES[1], NAMESPACE, memory="128Gi", profile=GPU_PROFILE, in_config_spec=True,
                         reservation="128Gi", cpus=16)):
        put(dynamic, obj)
    program = engine.with_transforms(engine.skip_await, short_cluster_timeouts)
    stack, state = engine.new_stack(tmp_path, ca_file, program)
    first, second = (vks_values(host, RELEASES[i], GPU_CLASSES[i], api_version) for i in (0, 1))
    engine.set_secrets(stack, {**SECRETS, "supervisorKubeconfig": server.admin_kubeconfig.read_text()})
    placeholders = {**SECRETS, "supervisorKubeconfig": "placeholder"}
    records = engine.mock_run(first, placeholders)
    expected = len([r for r in records if not r.read]) + 1  # and the stack itself; the Secret read apart
    assert [r.type for r in records if r.read] == ["kubernetes:core/v1:Secret"]
    objects = [r for r in records if is_kubernetes_object(r)]
    clusters = dynamic.resources.get(api_version=f"{CLUSTER_GROUP}/{api_version}", kind="Cluster")
    outputs: list[str] = []
    answer = threading.Event()  # FakeVks answers once the provider said it waits for the Cluster

    def output(line: str) -> None:
        outputs.append(line)
        if any(waiting in line for waiting in WAITING):
            answer.set()

    # The preflight reads the Supervisor under the engine: a GPU pool on a VM class without a vGPU profile stops the
    # preview with the check's message, before anything is created.
    engine.set_values(stack, vks_values(host, RELEASES[0], "best-effort-xlarge", api_version))
    with pytest.raises(auto.CommandError) as refused:
        stack.preview(on_output=outputs.append)
    assert ("interop check vks-vm-class failed for VirtualMachineClass ml-team/best-effort-xlarge: GPU pool gpu's "
            "VM class best-effort-xlarge carries no vGPU profile") in str(refused.value)
    assert [c for c in clusters.get(namespace=NAMESPACE).to_dict()["items"] if c["metadata"]["name"] == "pai-gpu"] == []
    engine.set_values(stack, first)

    with FakeVks(server.api(), NAMESPACE, inline_kubeconfig(server.admin_kubeconfig), answer, api_version) as vks:
        assert stack.preview(on_output=outputs.append).change_summary == {"create": expected}
        up = stack.up(on_output=output)
        assert up.summary.resource_changes == {"create": expected}
        live = clusters.get(name="pai-gpu", namespace=NAMESPACE).to_dict()
        assert live["spec"] == cluster_of(records)["spec"]
        uid = live["metadata"]["uid"]
        assert len(engine.still_there(server.api(), records)) == len(objects)  # the platform's objects too

        # no change; the kubeconfig Secret is read again once the Cluster exists (a read, not a change)
        assert stack.preview(on_output=outputs.append).change_summary == {"same": expected, "read": 1}

        # VKS moves the Cluster to a newer ClusterClass (as on a VKS upgrade): not a change of the program's, and
        # its update below leaves it
        clusters.server_side_apply(body=class_move(api_version), namespace=NAMESPACE, field_manager=VKS_MANAGER,
                                   force_conflicts=True)
        until("VKS's class move answered", lambda: observed(clusters) == 2)
        assert stack.preview(on_output=outputs.append).change_summary == {"same": expected, "read": 1}

        engine.set_values(stack, second)
        answer.clear()
        assert stack.preview(on_output=outputs.append).change_summary == {"update": 1, "same": expected - 1,
                                                                          "read": 1}
        update = stack.up(on_output=output)
        assert update.summary.resource_changes == {"update": 1, "same": expected - 1, "read": 1}
        live = clusters.get(name="pai-gpu", namespace=NAMESPACE).to_dict()
        assert live["metadata"]["uid"] == uid  # updated in place, not replaced
        assert live["spec"]["topology"]["version"] == "v1.33.4+vmware.1-fips-vkr.1"
        gpu_pool = live["spec"]["topology"]["workers"]["machineDeployments"][1]
        assert {"name": "vmClass", "value": GPU_CLASSES[1]} in gpu_pool["variables"]["overrides"]
        planned = cluster_of(engine.mock_run(second, placeholders))["spec"]
        planned["topology"] |= class_move(api_version)["spec"]["topology"]
        assert live["spec"] == planned

        with engine.collect_deleted(server.api(), records):
            destroyed = stack.destroy(on_output=outputs.append)
    assert destroyed.summary.resource_changes == {"delete": expected, "discard": 1}  # the read leaves the state
    assert engine.still_there(server.api(), records) == []
    assert [(gen, spec["topology"]["version"]) for name, gen, spec in vks.seen if name == "pai-gpu"] == [
        (1, "v1.33.3+vmware.1-fips-vkr.1"), (2, "v1.33.3+vmware.1-fips-vkr.1"), (3, "v1.33.4+vmware.1-fips-vkr.1")]
    found = engine.leaked(SECRETS, outputs, state)
    assert not found, f"secrets in the engine's output or state: {found}"


def test_the_engine_creates_updates_and_destroys_the_cluster_then_the_platform_on_it(
        api_server: ApiServer, chart_registry: tuple[str, Path], supervisor: DynamicClient, tmp_path: Path) -> None:
    """The program with pai:supervisor under the real engine. The Supervisor is the test API server (its admin
    kubeconfig is pai:supervisorKubeconfig); no VKS controller runs: FakeVks writes the Cluster's status
    (Available=True) and its kubeconfig Secret, which points at the same server, so the platform is installed "on
    the workload cluster" that is the Supervisor itself. The Cluster's create and update are real: the engine's
    server-side apply, admitted by the real Cluster API schema, awaited through pulumi.com/waitFor; a ClusterClass
    VKS moved the Cluster to (applied by another field manager) is neither a change nor reverted by the update."""
    preview_up_update_destroy(api_server, supervisor, "v1beta2", chart_registry, tmp_path)


def test_the_engine_creates_and_updates_a_v1beta1_cluster_on_an_older_supervisor(
        chart_registry: tuple[str, Path], tmp_path: Path) -> None:
    """As above with pai:supervisor.apiVersion v1beta1, on a server of its own serving Cluster API v1.10.10 (v1beta1
    storage, no v1beta2: the server cannot convert without the webhook); FakeVks writes Ready=True."""
    require_tools(*SERVER_TOOLS)
    server = ApiServer(tmp_path / "older-supervisor").start()
    try:
        dynamic = DynamicClient(server.api())  # type: ignore[no-untyped-call]
        install_crds(dynamic, OLDER_SUPERVISOR_CRDS)
        vsphere_namespace(dynamic, NAMESPACE)
        preview_up_update_destroy(server, dynamic, "v1beta1", chart_registry, tmp_path)
    finally:
        server.stop()


CHECKS_NAMESPACE = "ml-team-checks"  # a vSphere namespace of its own for the Supervisor reads
CLASS_NAMESPACE = "vmware-system-vks-public"
CLASS = "builtin-generic-v3.4.0"
GIB = 2**30


@pytest.fixture(scope="module")
def vsphere_offer(supervisor: DynamicClient) -> None:
    """What a vSphere admin gives CHECKS_NAMESPACE: VM classes (no vGPU; a vGPU profile in vgpuDevices; one in
    configSpec), the VKS release's Ubuntu image, the ClusterClass, and the namespace's limits. Their status is
    written as vm-operator, Cluster API and the quota controller would (none runs here)."""
    for namespace in (CHECKS_NAMESPACE, CLASS_NAMESPACE):
        vsphere_namespace(supervisor, namespace)
    for obj in (vm_class("plain", CHECKS_NAMESPACE, memory="32Gi", cpus=4),
                vm_class("vgpu-devices", CHECKS_NAMESPACE, memory="64Gi", profile=GPU_PROFILE, reservation="64Gi"),
                vm_class("vgpu-config-spec", CHECKS_NAMESPACE, memory="128Gi", profile=GPU_PROFILE,
                         in_config_spec=True, reservation="128Gi", cpus=16),
                vm_image("vmi-0a1b2c", CHECKS_NAMESPACE, f"ubuntu-2204-amd64-{RELEASES[0]}", "ubuntu64Guest",
                         "22.04", RELEASES[0].replace("---", "+")),
                cluster_class(CLASS, CLASS_NAMESPACE, [*WRITTEN_VARIABLES, *GROUPED_VARIABLES]),
                resource_quota(CHECKS_NAMESPACE, "ml-team-checks-storagequota",
                               {"limits.memory": "1Ti", "requests.memory": "200Gi"}, {"limits.memory": "16Gi"})):
        put(supervisor, obj)


def test_the_supervisor_source_reads_the_real_objects(api_server: ApiServer, vsphere_offer: None) -> None:
    facts = read_supervisor(api_server.admin_kubeconfig, CHECKS_NAMESPACE, cluster_class=(CLASS_NAMESPACE, CLASS))
    classes = {c.name: (c.vgpu_profiles, c.memory, c.memory_reservation) for c in facts.vm_classes}
    assert classes == {"plain": ([], 32 * GIB, None), "vgpu-devices": ([GPU_PROFILE], 64 * GIB, 64 * GIB),
                       "vgpu-config-spec": ([GPU_PROFILE], 128 * GIB, 128 * GIB)}
    assert [(q.name, q.hard, q.used) for q in facts.quotas] == [
        ("ml-team-checks-storagequota", {"limits.memory": 1024 * GIB, "requests.memory": 200 * GIB},
         {"limits.memory": 16 * GIB})]
    assert [(i.display_name, i.os_type, i.os_version, i.product_version) for i in facts.vm_images] == [
        (f"ubuntu-2204-amd64-{RELEASES[0]}", "ubuntu64Guest", "22.04", "v1.33.3+vmware.1-fips-vkr.1")]
    assert [(c.name, sorted(c.variables)) for c in facts.cluster_classes] == [
        (CLASS, sorted([*WRITTEN_VARIABLES, *GROUPED_VARIABLES]))]


# The GPU pool's VM class -> the VKS checks' statuses: with a vGPU profile in either place the checks pass, unless
# two fully reserved 128Gi GPU VMs outgrow the namespace's 200Gi of requests.memory; without one the class fails.
VKS_CHECKS = {
    "vgpu-devices": {"vks-vm-class": "pass", "vks-vgpu-profile": "pass", "vks-memory-reservation": "pass"},
    "vgpu-config-spec": {"vks-vm-class": "pass", "vks-vgpu-profile": "pass", "vks-memory-reservation": "fail"},
    "plain": {"vks-vm-class": "fail", "vks-vgpu-profile": "skip", "vks-memory-reservation": "pass"},
}


@pytest.mark.parametrize("gpu_class", sorted(VKS_CHECKS))
def test_paictl_validate_checks_the_vsphere_namespace_on_the_real_server(
        api_server: ApiServer, vsphere_offer: None, gpu_class: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    document = yaml.safe_load(stack_path("vks-cluster").read_text())
    document["config"]["pai:supervisor"] |= {
        "namespace": CHECKS_NAMESPACE, "controlPlane": {"replicas": 1, "vmClass": "plain"},
        "nodePools": [{"name": "cpu", "replicas": 1, "vmClass": "plain"},
                      {"name": "gpu", "replicas": 2, "vmClass": gpu_class, "gpu": True}]}
    stack = tmp_path / "Pulumi.vks-checks.yaml"
    stack.write_text(yaml.safe_dump(document))
    code = main(["validate", "--config-file", str(stack), "--live", "--format", "json",
                 "--supervisor-kubeconfig", str(api_server.admin_kubeconfig)])
    out, err = capsys.readouterr()
    statuses: dict[str, set[str]] = {}
    for check in json.loads(out)["checks"]:
        statuses.setdefault(check["id"], set()).add(check["status"])
    expected = {**VKS_CHECKS[gpu_class], "vks-node-os": "pass", "vks-cluster-class": "pass"}
    worst = {check_id: max(found, key=["skip", "pass", "warn", "fail"].index) for check_id, found in statuses.items()}
    assert {check_id: worst[check_id] for check_id in expected} == expected, out
    assert code == (1 if "fail" in worst.values() else 0), err
