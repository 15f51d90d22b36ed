"""The VKS workload cluster under the mocks: the Cluster API `Cluster` on the Supervisor (validated against the Cluster
API CRDs of both API versions and the grouped ClusterClass variables), the readiness wait, the changes VKS makes
that the program leaves alone, the kubeconfig read back as a secret for the platform's provider, and upgrades that
update the one Cluster in place."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fake_kube
import pulumi
import pytest
from conftest import (
    SUPERVISED,
    SUPERVISOR_SECRET,
    Program,
    bundled_cluster,
    cluster_of,
    minimal,
    of_kind,
    stack_config,
    with_supervisor,
)
from google.protobuf import json_format
from pulumi.runtime import rpc
from schemas import SchemaError, validate_custom_resource, validate_object, validate_topology_variables
from test_golden_names import urn_names

from components.vks_cluster import topology_version
from paictl.cli import main
from program.deploy import deploy
from program.offline import SECRET, RecordingMonitor, load_stack_file, run_offline, stack_path

CLUSTER_V1BETA2 = "kubernetes:cluster.x-k8s.io/v1beta2:Cluster"
SECRET_TYPE = "kubernetes:core/v1:Secret"


class OptionsMonitor(RecordingMonitor):
    """Also keeps each registration's resource options and each read, by name; `unknown_ids` are given no id
    (as a first preview leaves a resource being created)."""

    def __init__(self, unknown_ids: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.options: dict[str, Any] = {}
        self.reads: dict[str, Any] = {}
        self.provider_inputs: dict[str, dict[str, Any]] = {}
        inner = self.mocks

        class Blanking(pulumi.runtime.Mocks):
            def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
                id_, outputs = inner.new_resource(args)
                return ("" if args.name in unknown_ids else id_), outputs

            def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
                return inner.call(args)

        self.mocks = Blanking()

    def RegisterResource(self, request: Any) -> Any:
        self.options[request.name] = request
        if request.type.startswith("pulumi:providers:"):
            self.provider_inputs[request.name] = rpc_plain(request.object)
        return super().RegisterResource(request)

    def ReadResource(self, request: Any) -> Any:
        self.reads[request.name] = request
        return super().ReadResource(request)



def rpc_plain(struct: Any) -> dict[str, Any]:
    """A request's properties as Python values, secrets unwrapped into ("secret", value)."""

    def unwrap(value: Any) -> Any:
        if isinstance(value, dict):
            if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
                return ("secret", unwrap(value.get("value")))
            return {k: unwrap(v) for k, v in value.items()}
        return value

    result: dict[str, Any] = unwrap(json_format.MessageToDict(struct))
    return result


def pools(cluster: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in cluster["spec"]["topology"]["workers"]["machineDeployments"]}


def overrides(deployment: dict[str, Any]) -> dict[str, Any]:
    return {v["name"]: v["value"] for v in deployment["variables"]["overrides"]}


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, scalar) of every leaf of a nested value; list items by index."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from leaves(item, f"{path}[{i}]")
    else:
        yield path, value


def changed(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    old, new = dict(leaves(before)), dict(leaves(after))
    return {p for p in old.keys() | new.keys() if old.get(p) != new.get(p)}


# --- the Cluster object --------------------------------------------------------------------------------------------


def test_the_bundled_stack_plans_a_v1beta2_cluster_that_validates(run_stack: Any) -> None:
    cluster = cluster_of(run_stack("vks-cluster"))
    assert cluster["apiVersion"] == "cluster.x-k8s.io/v1beta2"
    assert (cluster["metadata"]["name"], cluster["metadata"]["namespace"]) == ("pai-gpu", "ml-team")
    validate_object(cluster, "1.33")
    validate_topology_variables(cluster)
    assert cluster["spec"]["topology"]["classRef"] == {"name": "builtin-generic-v3.4.0",
                                                       "namespace": "vmware-system-vks-public"}


def test_a_v1beta1_cluster_validates_against_cluster_api_1_10_and_1_12() -> None:
    """The bundled stack with apiVersion v1beta1, as for VKS 3.4 and before."""
    cluster = bundled_cluster("v1beta1")
    assert cluster["apiVersion"] == "cluster.x-k8s.io/v1beta1"
    topology = cluster["spec"]["topology"]
    assert (topology["class"], topology["classNamespace"]) == ("builtin-generic-v3.4.0", "vmware-system-vks-public")
    assert "classRef" not in topology
    assert pools(cluster)["gpu"]["strategy"] == {"type": "RollingUpdate",
                                                 "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    validate_custom_resource(cluster, older="cluster-api-v1.10.10")  # what VKS 3.4 and before serve
    validate_custom_resource(cluster)  # Cluster API 1.12 still serves v1beta1
    validate_topology_variables(cluster)


def test_the_crd_checks_refuse_the_other_versions_shape(run_program: Program) -> None:
    """The checks above can fail: v1beta2's rollout is not a v1beta1 field, v1beta1's class not a v1beta2 one."""
    cluster = cluster_of(run_program(SUPERVISED, SUPERVISOR_SECRET))
    older = copy.deepcopy(cluster) | {"apiVersion": "cluster.x-k8s.io/v1beta1"}
    with pytest.raises(SchemaError, match=r"spec\.topology: 'class' is a required property"):
        validate_custom_resource(older, older="cluster-api-v1.10.10")
    older["spec"]["topology"] |= {"class": "builtin-generic-v3.4.0"}
    del older["spec"]["topology"]["classRef"]
    with pytest.raises(SchemaError, match=r"machineDeployments.1: Additional properties are not allowed \('rollout'"):
        validate_custom_resource(older, older="cluster-api-v1.10.10")
    cluster["spec"]["topology"]["class"] = "builtin-generic-v3.4.0"
    with pytest.raises(SchemaError, match="'class' was unexpected"):
        validate_custom_resource(cluster)


def test_an_ungrouped_variable_fails_the_variables_check(run_program: Program) -> None:
    cluster = cluster_of(run_program(SUPERVISED, SUPERVISOR_SECRET))
    cluster["spec"]["topology"]["variables"].append({"name": "nodePoolTaints", "value": []})
    with pytest.raises(SchemaError, match="'nodePoolTaints' is not a variable of the grouped builtin-generic"):
        validate_topology_variables(cluster)
    pools(cluster)["gpu"]["variables"]["overrides"][0]["value"] = 7
    with pytest.raises(SchemaError, match=r"overrides\[0\] \(vmClass\): 7 is not of type 'string'"):
        validate_topology_variables({**cluster, "spec": {"topology": {
            "workers": cluster["spec"]["topology"]["workers"]}}})


def test_gpu_pools_get_ubuntu_a_taint_no_surge_and_big_volumes(run_program: Program) -> None:
    cluster = cluster_of(run_program(SUPERVISED, SUPERVISOR_SECRET))
    cpu, gpu = pools(cluster)["cpu"], pools(cluster)["gpu"]
    assert gpu["class"] == cpu["class"] == "node-pool"
    assert gpu["metadata"] == {"annotations": {"run.tanzu.vmware.com/resolve-os-image": "os-name=ubuntu"}}
    assert gpu["rollout"] == {"strategy": {"type": "RollingUpdate",
                                           "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}}
    assert overrides(gpu) == {
        "vmClass": "vgpu-h100-80c",
        "volumes": [{"name": "containerd", "mountPath": "/var/lib/containerd", "capacity": "200Gi"},
                    {"name": "kubelet", "mountPath": "/var/lib/kubelet", "capacity": "50Gi"}],
        "node": {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
    }
    assert "metadata" not in cpu and "rollout" not in cpu
    assert overrides(cpu)["volumes"][0]["capacity"] == "50Gi" and "node" not in overrides(cpu)


def test_a_pools_own_settings_are_written(run_program: Program) -> None:
    pool = {"name": "infer", "replicas": 1, "vmClass": "vgpu-l40s-48c", "gpu": True, "storageClass": "fast",
            "containerdVolume": "400Gi", "kubeletVolume": "80Gi", "labels": {"pai/pool": "infer"},
            "taints": [{"key": "dedicated", "value": "inference", "effect": "NoExecute"}]}
    cluster = cluster_of(run_program(with_supervisor(nodePools=[pool]), SUPERVISOR_SECRET))
    assert overrides(pools(cluster)["infer"]) == {
        "vmClass": "vgpu-l40s-48c", "storageClass": "fast",
        "volumes": [{"name": "containerd", "mountPath": "/var/lib/containerd", "capacity": "400Gi"},
                    {"name": "kubelet", "mountPath": "/var/lib/kubelet", "capacity": "80Gi"}],
        "node": {"labels": {"pai/pool": "infer"},
                 "taints": [{"key": "dedicated", "value": "inference", "effect": "NoExecute"},
                            {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
    }
    validate_topology_variables(cluster)


def test_cluster_variables_default_storage_class_and_extra_grouped_variables(run_program: Program) -> None:
    extra = {"osConfiguration": {"ntp": {"servers": ["ntp.example.com"]}},
             "vsphereOptions": {"persistentVolumes": {"availableStorageClasses": ["fast"]}}}
    values = {**with_supervisor(variables=extra),
              "cluster": {"target": "vks", "kubernetesVersion": "1.33", "storageClass": "fast"}}
    cluster = cluster_of(run_program(values, SUPERVISOR_SECRET))
    variables = {v["name"]: v["value"] for v in cluster["spec"]["topology"]["variables"]}
    assert variables == {
        "vmClass": "best-effort-large",
        "storageClass": "vsan-default-storage-policy",
        "vsphereOptions": {"persistentVolumes": {"defaultStorageClass": "fast", "availableStorageClasses": ["fast"]}},
        "osConfiguration": {"ntp": {"servers": ["ntp.example.com"]}},
    }
    validate_topology_variables(cluster)
    default = cluster_of(run_program(SUPERVISED, SUPERVISOR_SECRET))["spec"]["topology"]["variables"]
    assert {"name": "vsphereOptions", "value": {"persistentVolumes": {
        "defaultStorageClass": "vsan-default-storage-policy"}}} in default


def test_volumes_need_no_storage_class_on_a_cluster_the_stack_creates(run_program: Program) -> None:
    """Its Cluster makes the supervisor's storageClass the default, where the monitoring volume goes."""
    records = run_program({**SUPERVISED, "monitoring": {}}, {**SUPERVISOR_SECRET, "grafanaAdminPassword": "pw"})
    assert {"name": "vsphereOptions", "value": {"persistentVolumes": {
        "defaultStorageClass": "vsan-default-storage-policy"}}} in cluster_of(records)["spec"]["topology"]["variables"]


def test_network_control_plane_and_release(run_program: Program) -> None:
    values = with_supervisor(podCidrs=["172.20.0.0/16"], serviceCidrs=["10.100.0.0/16"], serviceDomain="pai.local",
                             controlPlane={"replicas": 1, "vmClass": "best-effort-medium"})
    spec = cluster_of(run_program(values, SUPERVISOR_SECRET))["spec"]
    assert spec["clusterNetwork"] == {"pods": {"cidrBlocks": ["172.20.0.0/16"]},
                                      "services": {"cidrBlocks": ["10.100.0.0/16"]}, "serviceDomain": "pai.local"}
    assert spec["topology"]["controlPlane"] == {"replicas": 1}
    assert spec["topology"]["version"] == "v1.33.3+vmware.1-fips-vkr.1"


@pytest.mark.parametrize(("release", "version"), [
    ("v1.33.3---vmware.1-fips-vkr.1", "v1.33.3+vmware.1-fips-vkr.1"),
    ("v1.32.0---vmware.6-fips-vkr.2", "v1.32.0+vmware.6-fips-vkr.2"),
])
def test_the_release_is_written_as_the_kubernetes_version_the_tkr_resolver_writes_back(release: str,
                                                                                       version: str) -> None:
    assert topology_version(release) == version


def vm_class(name: str, api_version: str) -> dict[str, Any]:
    """A GPU VM class as the vSphere admin creates it for a GPU pool (README, VKS): a vGPU profile, its memory
    fully reserved."""
    return fake_kube.vm_class(name, None, memory="128Gi", profile="nvidia_h100xm-80c", reservation="128Gi", cpus=16,
                              version=api_version)


def test_the_vm_classes_the_pools_name_validate_against_vm_operator() -> None:
    """The plan names VM classes, it creates none: a GPU pool's class, in the shape the README asks the admin for,
    validates against vm-operator as vSphere 9.1 (v1alpha5) and older Supervisors (v1.8.6, v1alpha2) serve it."""
    supervisor = json.loads(load_stack_file(stack_path("vks-cluster")).values["pai:supervisor"])
    for pool in [p for p in supervisor["nodePools"] if p.get("gpu")]:
        validate_custom_resource(vm_class(pool["vmClass"], "v1alpha5"))
        validate_custom_resource(vm_class(pool["vmClass"], "v1alpha2"), older="vm-operator-v1.8.6")
    wrong = vm_class("x", "v1alpha5")
    wrong["spec"]["hardware"]["devices"]["vgpuDevices"] = [{"profile": "nvidia_h100xm-80c"}]
    with pytest.raises(SchemaError, match="'profileName' is a required property"):
        validate_custom_resource(wrong)


# --- readiness, what is left to VKS, the kubeconfig ----------------------------------------------------------------


@pytest.mark.parametrize(("api_version", "condition", "ignored"), [
    ("v1beta2", "condition=Available", ["spec.topology.classRef"]),
    ("v1beta1", "condition=Ready", ["spec.topology.class", "spec.topology.classNamespace"]),
])
def test_waits_for_readiness_and_leaves_the_cluster_class_to_vks(api_version: str, condition: str,
                                                                 ignored: list[str]) -> None:
    monitor = OptionsMonitor()
    run_offline(deploy, stack_config(with_supervisor(apiVersion=api_version), SUPERVISOR_SECRET), monitor)
    (cluster,) = [r for r in monitor.records if r.name == "vks-cluster"]
    assert cluster.inputs["metadata"]["annotations"] == {"pulumi.com/waitFor": condition}
    request = monitor.options["vks-cluster"]
    # VKS moves the cluster to a newer ClusterClass on upgrade: the program never puts its own back. The release
    # is not ignored: a new one in the stack must reach the Cluster.
    assert list(request.ignoreChanges) == ignored
    timeouts = request.customTimeouts
    assert (timeouts.create, timeouts.update, timeouts.delete) == ("90m", "180m", "60m")
    # On the Supervisor's provider, not the platform's.
    assert "pulumi:providers:kubernetes::supervisor::" in request.provider


def test_the_platform_provider_gets_the_clusters_kubeconfig_as_a_secret() -> None:
    monitor = OptionsMonitor()
    run_offline(deploy, stack_config(SUPERVISED, SUPERVISOR_SECRET), monitor)
    read = monitor.reads["vks-kubeconfig"]
    assert (read.type, read.id) == (SECRET_TYPE, "ml-team/pai-gpu-kubeconfig")
    assert "pulumi:providers:kubernetes::supervisor::" in read.provider
    # After the Cluster, and so destroyed before it, with the platform that depends on it.
    assert [urn.rsplit("::", 1)[-1] for urn in read.dependencies] == ["vks-cluster"]
    kubeconfig = monitor.provider_inputs["k8s"]["kubeconfig"]
    assert kubeconfig == ("secret", "# offline placeholder for the kubeconfig in the Secret "
                                    "ml-team/pai-gpu-kubeconfig\n")
    assert monitor.provider_inputs["supervisor"]["kubeconfig"] == ("secret", SUPERVISOR_SECRET["supervisorKubeconfig"])
    (provider,) = [r for r in monitor.records if r.key == "pulumi:providers:kubernetes::k8s"]
    assert provider.inputs["kubeconfig"] == SECRET
    assert provider.dependencies == (f"{SECRET_TYPE}::vks-kubeconfig",)
    # Every other Kubernetes resource (the platform's) is on that provider.
    platform = [r for r in monitor.records
                if r.type.startswith("kubernetes:") and r.parent != "pai:vks:VksCluster::vks"]
    assert platform and all("pulumi:providers:kubernetes::k8s::" in monitor.options[r.name].provider
                            for r in platform)


def test_a_first_preview_reads_no_secret_before_the_cluster_exists() -> None:
    """The Secret's id comes from the Cluster: while the Cluster has no id (being created), the read's id is
    unknown, which the engine skips in a preview instead of failing on a Secret that is not there yet."""
    monitor = OptionsMonitor(unknown_ids=frozenset({"vks-cluster"}))
    run_offline(deploy, stack_config(SUPERVISED, SUPERVISOR_SECRET), monitor)
    assert monitor.reads["vks-kubeconfig"].id == rpc.UNKNOWN


def test_exports_name_the_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    exported: dict[str, Any] = {}

    def export(name: str, value: Any) -> None:
        pulumi.Output.from_input(value).apply(lambda v: exported.__setitem__(name, v))

    monkeypatch.setattr(pulumi, "export", export)
    run_offline(deploy, stack_config(SUPERVISED, SUPERVISOR_SECRET))
    assert (exported["vksCluster"], exported["vksNamespace"]) == ("pai-gpu", "ml-team")


def test_the_plan_shows_the_cluster_and_the_kubeconfig_read(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--stack", "vks-cluster"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("components, 1 read(s) of existing objects")
    at = lines.index("pai:vks:VksCluster  vks  [Cluster x1]")
    assert lines[at + 1] == "  reads Secret ml-team/pai-gpu-kubeconfig"
    assert main(["plan", "--stack", "vks-cluster", "--format", "json"]) == 0
    (read,) = [r for r in json.loads(capsys.readouterr().out)["resources"] if r["read"]]
    assert (read["type"], read["name"], read["inputs"], read["dependencies"]) == (
        SECRET_TYPE, "vks-kubeconfig", {"id": "ml-team/pai-gpu-kubeconfig"}, [f"{CLUSTER_V1BETA2}::vks-cluster"])


def test_without_supervisor_nothing_of_it_is_planned(run_program: Program) -> None:
    records = run_program(minimal())
    assert not [r for r in records if "vks" in r.key or r.name == "supervisor"]
    assert not of_kind(records, "Cluster")


# --- what runs on the GPU pools -------------------------------------------------------------------------------------


GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
GPU_ENDPOINT = {"name": "chat", "routingName": "acme/chat", "type": "completion", "format": "safetensors",
                "source": "oci://harbor.example.com/models/chat:v1", "tenant": "team-a", "gpus": 1}


def gpu_workloads(run_program: Program, pools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The tolerations of what runs on GPU nodes: Kueue's GPU flavor, the operator's operands, NFD's worker, a GPU
    endpoint's predictor."""
    values = {**with_supervisor(**({"nodePools": pools} if pools else {})), "kueue": {}, "models": [GPU_ENDPOINT],
              "tenants": [{"name": "team-a", "quota": {"gpus": {"NVIDIA-H100-80GB-HBM3": 1}}}]}
    records = run_program(values, SUPERVISOR_SECRET)
    (flavor,) = [f for f in of_kind(records, "ResourceFlavor") if f["metadata"]["name"] != "pai-cpu"]
    (operator,) = [r.inputs["values"] for r in records if r.name == "platform-gpu-operator-release"]
    (isvc,) = of_kind(records, "InferenceService")
    return {"flavor": flavor["spec"]["tolerations"], "operands": operator["daemonsets"]["tolerations"],
            "nfd": operator["node-feature-discovery"]["worker"]["tolerations"],
            "endpoint": isvc["spec"]["predictor"]["tolerations"]}


def test_what_runs_on_gpu_pools_tolerates_their_gpu_taint(run_program: Program) -> None:
    """GPU pools are tainted nvidia.com/gpu:NoSchedule: the operator's operands and NFD's worker tolerate it (the
    chart's defaults, kept), an endpoint with GPUs too, and Kueue's GPU flavor gives it to the Jobs it admits."""
    for name, tolerations in gpu_workloads(run_program).items():
        assert GPU_TOLERATION in tolerations, name


def test_a_gpu_pools_own_taint_is_tolerated_by_what_runs_there(run_program: Program) -> None:
    pool = {"name": "gpu", "replicas": 2, "vmClass": "vgpu-h100-80c", "gpu": True,
            "taints": [{"key": "dedicated", "value": "inference", "effect": "NoExecute"}]}
    found = gpu_workloads(run_program, [{"name": "cpu", "replicas": 1, "vmClass": "best-effort-large"}, pool])
    dedicated = {"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}
    for name, tolerations in found.items():
        assert dedicated in tolerations and GPU_TOLERATION in tolerations, name
    assert found["endpoint"] == [GPU_TOLERATION, dedicated]


# --- upgrades ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "fields"), [
    ({"release": "v1.33.4---vmware.1-fips-vkr.2"}, {"spec.topology.version"}),
    ({"nodePools": [{"name": "cpu", "replicas": 3, "vmClass": "best-effort-2xlarge"},
                    {"name": "gpu", "replicas": 2, "vmClass": "vgpu-h100-40c", "gpu": True}]},
     {"spec.topology.workers.machineDeployments[1].variables.overrides[0].value"}),
])
def test_an_upgrade_updates_the_same_cluster_in_place(change: dict[str, Any], fields: set[str]) -> None:
    """pulumi-kubernetes replaces a custom resource only when its name or namespace changes (pkg/provider/diff.go,
    forceNewProperties: the metadata fields alone); an upgrade keeps both, the URN, apiVersion and kind, and
    changes only the fields it is about: Cluster API rolls the machines."""
    before = run_offline(deploy, stack_config(SUPERVISED, SUPERVISOR_SECRET))
    after = run_offline(deploy, stack_config(with_supervisor(**change), SUPERVISOR_SECRET))
    assert urn_names(before) == urn_names(after)
    (old,) = [r for r in before if r.type == CLUSTER_V1BETA2]
    (new,) = [r for r in after if r.type == CLUSTER_V1BETA2]
    assert (old.key, old.parent) == (new.key, new.parent)
    assert changed(old.inputs, new.inputs) == fields
    for key in ("apiVersion", "kind"):
        assert old.inputs[key] == new.inputs[key]
    assert old.inputs["metadata"] == new.inputs["metadata"]


def test_the_bundled_stack_file_declares_the_supervisor() -> None:
    config = load_stack_file(stack_path("vks-cluster"))
    assert "pai:supervisorKubeconfig" in config.secret_keys and "pai:kubeconfig" not in config.values
    assert json.loads(config.values["pai:supervisor"])["nodePools"][1]["gpu"] is True


@pytest.mark.parametrize("command", [["plan"], ["validate"], ["airgap", "bom"]])
@pytest.mark.parametrize(("old", "new", "message"), [
    ("clusterClass: builtin-generic-v3.4.0", "clusterClass: builtin-generic-v3.1.0",
     "pai:supervisor.clusterClass: 'builtin-generic-v3.1.0' takes the ungrouped topology variables; the platform "
     "writes the grouped variables of builtin-generic-v3.2.0 and later"),
    ("    storageClass: vsan-default-storage-policy\n    controlPlane:",
     "    storageClass: vsan-default-storage-policy\n    variables: {nodePoolTaints: []}\n    controlPlane:",
     "pai:supervisor.variables: 'nodePoolTaints' is an ungrouped variable of tanzukubernetescluster and "
     "builtin-generic-v3.1.0, refused by the grouped classes; use one of osConfiguration, vsphereOptions, kubernetes, "
     "resourceConfiguration, bootstrapAddons, networks, kubeAPIServerFQDNs"),
    ("release: v1.33.3---vmware.1-fips-vkr.1", "release: v1.33.3",
     "pai:supervisor.release: 'v1.33.3' is not a VKS release name like v1.33.3---vmware.1-fips-vkr.1"),
])
def test_a_bad_supervisor_block_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        command: list[str], old: str, new: str, message: str) -> None:
    text = stack_path("vks-cluster").read_text()
    assert old in text
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(text.replace(old, new))
    assert main([*command, "--config-file", str(path)]) == 2
    out = capsys.readouterr()
    assert (out.err, out.out) == (f"error: {path}: {message}\n", "")
