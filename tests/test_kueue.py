"""Kueue: flavors per GPU product, a ClusterQueue per tenant in one cohort, a LocalQueue per tenant namespace,
the integrations that admit Jobs and KServe's Deployments, the storage version of every CR, and air gap."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml
from conftest import Program, minimal, objects, releases
from schemas import chart_defaults, crd_storage_version, validate_helm_values, validate_object

from components import namespaces
from components.catalog import CATALOG
from components.kueue import gpu_flavor_name, manager_config
from program.offline import Registered

GROUP = "kueue.x-k8s.io"
PRODUCTS = ["NVIDIA-H100-80GB-HBM3", "NVIDIA-L40S"]
GPU = {"driver": {"mode": "datacenter"}, "products": PRODUCTS,
       "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}
TENANTS: list[dict[str, Any]] = [
    {"name": "research", "quota": {"cpu": "64", "memory": "512Gi", "gpus": {"NVIDIA-H100-80GB-HBM3": 4}}},
    {"name": "apps", "quota": {"cpu": "8", "memory": "32Gi", "gpus": {"NVIDIA-L40S": 2}}},
]
MIRROR = "harbor.example.com/mirror"


def plan(run_program: Program, **overrides: Any) -> list[Registered]:
    return run_program(minimal(**{"kueue": {}, "gpu": GPU, "tenants": TENANTS, **overrides}))


def kueue_objects(records: list[Registered], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects(records) if o["apiVersion"].startswith(f"{GROUP}/") and o["kind"] == kind]


def by_name(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in found}


def kueue_release(records: list[Registered]) -> dict[str, Any]:
    (found,) = [r for r in releases(records) if r["chart"].endswith("kueue")]
    return found


def test_every_kueue_resource_uses_the_storage_version_validates_and_waits_for_the_release(
        run_program: Program) -> None:
    records = plan(run_program)
    crs = [r for r in records if r.type.startswith(f"kubernetes:{GROUP}/")]
    assert {r.inputs["kind"] for r in crs} == {"ResourceFlavor", "Cohort", "ClusterQueue", "LocalQueue"}
    for record in crs:
        group, version = record.inputs["apiVersion"].split("/")
        assert version == crd_storage_version(group, record.inputs["kind"]) == "v1beta2"
        validate_object(record.inputs, "1.33")
        assert "kubernetes:helm.sh/v3:Release::platform-kueue-release" in record.dependencies, record.key


def test_a_flavor_per_gpu_product_selects_its_nodes_and_tolerates_their_taint(run_program: Program) -> None:
    flavors = by_name(kueue_objects(plan(run_program), "ResourceFlavor"))
    assert set(flavors) == {"pai-cpu", "gpu-nvidia-h100-80gb-hbm3", "gpu-nvidia-l40s"}
    assert flavors["pai-cpu"]["spec"] == {}
    for product in PRODUCTS:
        spec = flavors[gpu_flavor_name(product)]["spec"]
        assert spec["nodeLabels"] == {"nvidia.com/gpu.product": product}
        assert spec["tolerations"] == GPU["tolerations"]


def test_flavors_have_no_tolerations_when_gpu_nodes_are_not_tainted(run_program: Program) -> None:
    flavors = kueue_objects(plan(run_program, gpu={**GPU, "tolerations": []}), "ResourceFlavor")
    assert not [f for f in flavors if "tolerations" in f["spec"]]


def test_each_tenant_gets_its_nominal_quota_in_one_cohort(run_program: Program) -> None:
    records = plan(run_program)
    queues = by_name(kueue_objects(records, "ClusterQueue"))
    assert set(queues) == {"research", "apps"}
    (cohort,) = kueue_objects(records, "Cohort")
    for tenant in TENANTS:
        spec = queues[tenant["name"]]["spec"]
        assert spec["cohortName"] == cohort["metadata"]["name"] == "pai"
        assert spec["namespaceSelector"] == {"matchLabels": {namespaces.TENANT_LABEL: tenant["name"]}}
        cpu, gpu = spec["resourceGroups"]
        assert cpu["coveredResources"] == ["cpu", "memory"]
        assert cpu["flavors"] == [{"name": "pai-cpu", "resources": [
            {"name": "cpu", "nominalQuota": tenant["quota"]["cpu"], "borrowingLimit": 0},
            {"name": "memory", "nominalQuota": tenant["quota"]["memory"], "borrowingLimit": 0}]}]
        assert gpu["coveredResources"] == ["nvidia.com/gpu"]
        # Every product's flavor is listed, at 0 where the tenant has no quota: it can borrow idle ones.
        assert {f["name"]: f["resources"][0]["nominalQuota"] for f in gpu["flavors"]} == {
            gpu_flavor_name(p): tenant["quota"]["gpus"].get(p, 0) for p in PRODUCTS}
        assert spec["preemption"]["reclaimWithinCohort"] == "Any"


def test_reclaim_can_be_turned_off(run_program: Program) -> None:
    queues = kueue_objects(run_program(minimal(kueue={"reclaim": False, "cohort": "shared"})), "ClusterQueue")
    assert [(q["spec"]["cohortName"], q["spec"]["preemption"]["reclaimWithinCohort"]) for q in queues] == [
        ("shared", "Never")]


def test_a_local_queue_in_each_tenant_namespace(run_program: Program) -> None:
    records = plan(run_program)
    queues = kueue_objects(records, "LocalQueue")
    assert sorted((q["metadata"]["namespace"], q["metadata"]["name"], q["spec"]["clusterQueue"]) for q in queues) == [
        ("apps", namespaces.TENANT_QUEUE, "apps"), ("research", namespaces.TENANT_QUEUE, "research")]


def test_cpu_only_cluster_queues_carry_no_gpu_group(run_stack: Callable[[str], list[Registered]]) -> None:
    records = run_stack("dev")
    assert list(by_name(kueue_objects(records, "ResourceFlavor"))) == ["pai-cpu"]
    for queue in kueue_objects(records, "ClusterQueue"):
        assert [g["coveredResources"] for g in queue["spec"]["resourceGroups"]] == [["cpu", "memory"]]


def test_manager_admits_jobs_and_kserve_deployments_in_tenant_namespaces_only(run_program: Program) -> None:
    records = plan(run_program)
    config = yaml.safe_load(kueue_release(records)["values"]["managerConfig"]["controllerManagerConfigYaml"])
    assert config == manager_config()
    assert {"batch/job", "pod", "deployment"} <= set(config["integrations"]["frameworks"])
    assert config["manageJobsWithoutQueueName"] is False  # only workloads labelled with a queue are held
    (expression,) = config["managedJobsNamespaceSelector"]["matchExpressions"]
    assert expression == {"key": namespaces.TENANT_LABEL, "operator": "Exists"}
    tenant_namespaces = [o for o in objects(records) if o["kind"] == "Namespace"
                         and o["metadata"]["name"] in {t["name"] for t in TENANTS}]
    assert tenant_namespaces and all(namespaces.TENANT_LABEL in n["metadata"]["labels"] for n in tenant_namespaces)


def test_manager_config_keeps_the_charts_settings() -> None:
    default = yaml.safe_load(chart_defaults("kueue", "0.19.2")["managerConfig"]["controllerManagerConfigYaml"])
    ours = manager_config()
    assert {k: v for k, v in ours.items() if k in default and k != "integrations"} == {
        k: v for k, v in default.items() if k != "integrations"}
    assert set(ours["integrations"]["frameworks"]) <= set(default["integrations"]["frameworks"])


def test_no_kueue_without_its_key(run_program: Program) -> None:
    assert not [r for r in run_program(minimal()) if "kueue" in r.type.lower()]


@pytest.mark.parametrize("mirror", [None, MIRROR])
def test_image_is_pinned_and_on_the_mirror_in_air_gap_mode(run_program: Program, mirror: str | None) -> None:
    registry = {"mirror": mirror, "pullSecret": "mirror-pull"} if mirror else {}
    release = kueue_release(plan(run_program, **({"registry": registry} if registry else {})))
    validate_helm_values("kueue", release["version"], release["values"])
    manager = release["values"]["controllerManager"]
    pin = CATALOG.chart("kueue").images["controllerManager.manager.image"]
    assert manager["manager"]["image"] == {
        "repository": f"{MIRROR}/kueue/kueue" if mirror else "registry.k8s.io/kueue/kueue",
        "tag": pin.tag, "pullPolicy": "IfNotPresent"}
    if mirror:
        assert release["chart"] == f"oci://{MIRROR}/charts/kueue"
        assert manager["imagePullSecrets"] == [{"name": "mirror-pull"}]
    else:
        assert release["chart"] == "oci://registry.k8s.io/kueue/charts/kueue" and "imagePullSecrets" not in manager


def test_catalog_pins_the_released_image_of_the_chart_version() -> None:
    """The chart in git names the staging image; the release pins registry.k8s.io/kueue/kueue:v<chart version>."""
    pin = CATALOG.chart("kueue")
    image = pin.images["controllerManager.manager.image"]
    reference = chart_defaults("kueue", pin.version)["controllerManager"]["manager"]["image"]
    assert reference["repository"].rsplit("/", 1)[-1] == image.repository.rsplit("/", 1)[-1] == "kueue"
    assert reference["tag"] == f"release-{pin.version.rsplit('.', 1)[0]}"
    assert image.tag == f"v{pin.version}"


def test_namespace_quota_leaves_gpus_to_kueue_so_they_can_be_borrowed(run_program: Program) -> None:
    """Without Kueue the ResourceQuota caps a tenant's GPUs at its quota; with Kueue it would block borrowing."""
    def hard(records: list[Registered]) -> dict[str, dict[str, str]]:
        return {o["metadata"]["namespace"]: o["spec"]["hard"] for o in objects(records)
                if o["kind"] == "ResourceQuota"}

    queued = hard(plan(run_program))
    assert all("requests.nvidia.com/gpu" not in h for h in queued.values())
    assert queued["research"]["requests.cpu"] == "64"
    capped = hard(run_program(minimal(gpu=GPU, tenants=TENANTS)))
    assert capped["research"]["requests.nvidia.com/gpu"] == "4"


def test_resource_groups_pass_kueues_own_rules(run_program: Program) -> None:
    """What the CRD's CEL rules and Kueue's webhook check and the JSON schema cannot: each flavor lists the
    group's covered resources in order, and no resource or flavor is in two groups."""
    for queue in kueue_objects(plan(run_program), "ClusterQueue"):
        groups = queue["spec"]["resourceGroups"]
        for group in groups:
            for flavor in group["flavors"]:
                assert [r["name"] for r in flavor["resources"]] == group["coveredResources"]
        resources = [r for g in groups for r in g["coveredResources"]]
        flavors = [f["name"] for g in groups for f in g["flavors"]]
        assert len(resources) == len(set(resources)) and len(flavors) == len(set(flavors))
