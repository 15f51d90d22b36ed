"""Supervisor facts via the `kubernetes` client (origin "supervisor"): what a vSphere namespace offers the VKS
workload cluster a stack creates there.

Read, in the namespace: the VirtualMachineClasses (vmoperator.vmware.com, the newest version the Supervisor
serves from v1alpha5 down; namespaced on vSphere 8.0U3 and later, cluster-scoped and bound to the namespace by a
VirtualMachineClassBinding on older Supervisors) with their vGPU profiles, memory and memory reservation; the
namespace's ResourceQuotas (memory); the ClusterClass the stack names (its variable names) and the
VirtualMachineImages (node OS of the releases), each where the reader may read it (403/404: left out). Lists are
paged as in validation.sources.kubernetes; errors are one-line ClusterErrors naming the Supervisor.

`read_supervisor(kubeconfig, namespace)` is the entry point for a kubeconfig file (`paictl validate --live
--supervisor-kubeconfig`, tests against a real API server); `read_supervisor_text` for the secret value of
pai:supervisorKubeconfig (the program's preflight).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import parse_quantity

from validation.facts import ClusterClassFacts, Facts, Origin, QuotaFacts, VmClassFacts, VmImageFacts
from validation.sources.kubernetes import (
    ClusterError,
    _get,
    _optional,
    _pages,
    _reading,
    api_client,
    api_client_from_text,
)

VM_OPERATOR = "vmoperator.vmware.com"
VM_OPERATOR_VERSIONS = ("v1alpha5", "v1alpha4", "v1alpha3", "v1alpha2", "v1alpha1")
CLUSTER_API = "cluster.x-k8s.io"
CLUSTER_API_VERSIONS = ("v1beta2", "v1beta1")
VMIOP_BACKING = "VirtualPCIPassthroughVmiopBackingInfo"
MEMORY = ("limits.memory", "requests.memory", "memory")
WHAT = "Supervisor"


def read_supervisor(kubeconfig: Path | None, namespace: str, context: str | None = None,
                    cluster_class: tuple[str, str] | None = None) -> Facts:
    """Connect with a kubeconfig file (default: $KUBECONFIG or ~/.kube/config) and read the vSphere namespace's
    facts; `cluster_class`: (namespace, name) of the ClusterClass to read too."""
    with api_client(kubeconfig, context) as api:
        return supervisor_facts(api, namespace, cluster_class)


def read_supervisor_text(text: str, label: str, namespace: str,
                         cluster_class: tuple[str, str] | None = None) -> Facts:
    """As read_supervisor, from a kubeconfig held as a secret value (`label` names it in errors)."""
    with api_client_from_text(text, label) as api:
        return supervisor_facts(api, namespace, cluster_class)


def supervisor_facts(api: ApiClient, namespace: str, cluster_class: tuple[str, str] | None = None) -> Facts:
    """The namespace's VM classes, quotas and images, and the ClusterClass, from the Supervisor behind `api`."""
    host = api.configuration.host
    with _reading(api, WHAT):
        version, namespaced = _vm_operator(api, host)
        base = f"/apis/{VM_OPERATOR}/{version}"
        if namespaced:
            classes = list(_pages(api, f"{base}/namespaces/{namespace}/virtualmachineclasses"))
        else:
            bound = {(b.get("classRef") or {}).get("name") for b in _readable(
                api, f"{base}/namespaces/{namespace}/virtualmachineclassbindings")}
            classes = [c for c in _pages(api, f"{base}/virtualmachineclasses") if c["metadata"]["name"] in bound]
        quotas = list(_pages(api, f"/api/v1/namespaces/{namespace}/resourcequotas"))
        images = _readable(api, f"{base}/namespaces/{namespace}/virtualmachineimages") + _readable(
            api, f"{base}/clustervirtualmachineimages")
        classes_of_cluster = _cluster_class(api, *cluster_class) if cluster_class else []
    origin: Origin = "supervisor"
    return Facts(
        sources={origin: f"{host} namespace {namespace}"},
        vm_classes=[_vm_class(c, namespace) for c in classes],
        quotas=[QuotaFacts(origin=origin, namespace=namespace, name=q["metadata"]["name"],
                           hard=_memory((q.get("spec") or {}).get("hard")),
                           used=_memory((q.get("status") or {}).get("used"))) for q in quotas],
        cluster_classes=classes_of_cluster,
        vm_images=[_image(i) for i in images],
    )


def _vm_operator(api: ApiClient, host: str) -> tuple[str, bool]:
    """The newest vm-operator version the Supervisor serves, and whether its VM classes are namespaced."""
    try:
        group = _get(api, f"/apis/{VM_OPERATOR}")
    except ApiException as exc:
        if exc.status != 404:
            raise
        raise ClusterError(f"{WHAT} {host}: serves no {VM_OPERATOR} API (is this a Supervisor's kubeconfig?)"
                           ) from None
    served = {v.get("version") for v in group.get("versions") or []}
    version = next((v for v in VM_OPERATOR_VERSIONS if v in served), None)
    if version is None:
        raise ClusterError(f"{WHAT} {host}: serves {VM_OPERATOR} {', '.join(sorted(map(str, served)))}, none of "
                           f"{', '.join(VM_OPERATOR_VERSIONS)}")
    resources = _get(api, f"/apis/{VM_OPERATOR}/{version}").get("resources") or []
    kind: dict[str, Any] = next((r for r in resources if r.get("name") == "virtualmachineclasses"), {})
    return version, bool(kind.get("namespaced", True))


def _readable(api: ApiClient, path: str) -> list[dict[str, Any]]:
    """A collection, empty where it is not served (404) or the reader may not list it (403)."""
    return _optional(lambda: list(_pages(api, path)), (403, 404))


def _cluster_class(api: ApiClient, namespace: str, name: str) -> list[ClusterClassFacts]:
    """The ClusterClass's variable names (status.variables), from the newest Cluster API version served; none
    where it is not found or not readable (the vks-cluster-class check then says so)."""
    for version in CLUSTER_API_VERSIONS:
        try:
            found = _get(api, f"/apis/{CLUSTER_API}/{version}/namespaces/{namespace}/clusterclasses/{name}")
        except ApiException as exc:
            if exc.status in (403, 404):
                continue
            raise
        variables = [v["name"] for v in (found.get("status") or {}).get("variables") or [] if v.get("name")]
        return [ClusterClassFacts(origin="supervisor", namespace=namespace, name=name, variables=variables)]
    return []


def _vm_class(obj: dict[str, Any], namespace: str) -> VmClassFacts:
    spec = obj.get("spec") or {}
    hardware = spec.get("hardware") or {}
    config_spec = _config_spec(spec.get("configSpec"))
    profiles = [d["profileName"] for d in (hardware.get("devices") or {}).get("vgpuDevices") or []
                if d.get("profileName")]
    for change in config_spec.get("deviceChange") or []:
        backing = ((change or {}).get("device") or {}).get("backing") or {}
        if backing.get("_typeName") == VMIOP_BACKING and backing.get("vgpu") and backing["vgpu"] not in profiles:
            profiles.append(backing["vgpu"])
    memory = _bytes(hardware.get("memory")) or _mebibytes(config_spec.get("memoryMB"))
    requests = ((spec.get("policies") or {}).get("resources") or {}).get("requests") or {}
    reservation = _bytes(requests.get("memory")) or _mebibytes(
        (config_spec.get("memoryAllocation") or {}).get("reservation"))
    if config_spec.get("memoryReservationLockedToMax") is True:
        reservation = memory
    return VmClassFacts(origin="supervisor", namespace=namespace, name=obj["metadata"]["name"],
                        vgpu_profiles=profiles, memory=memory, memory_reservation=reservation)


def _config_spec(value: Any) -> dict[str, Any]:
    """spec.configSpec: a VirtualMachineConfigSpec as JSON (an object, or a JSON string in some writers)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _image(obj: dict[str, Any]) -> VmImageFacts:
    status = obj.get("status") or {}
    os_info, product = status.get("osInfo") or {}, status.get("productInfo") or {}
    return VmImageFacts(origin="supervisor", name=obj["metadata"]["name"], display_name=status.get("name"),
                        os_type=os_info.get("type"), os_version=os_info.get("version"),
                        product_version=product.get("fullVersion") or product.get("version"))


def _memory(resources: dict[str, Any] | None) -> dict[str, int]:
    """The memory entries of a ResourceQuota's hard or used, in bytes."""
    found = {k: _bytes(v) for k, v in (resources or {}).items() if k in MEMORY}
    return {k: v for k, v in found.items() if v is not None}


def _mebibytes(value: Any) -> int | None:
    """A configSpec size in MiB (memoryMB, memoryAllocation.reservation) in bytes; None where it is not a number."""
    return value * 2**20 if isinstance(value, int) else None


def _bytes(quantity: Any) -> int | None:
    """A Kubernetes quantity (64Gi, 68719476736, 64G, 1.5Gi) in bytes; None where it is absent or not a
    non-negative one."""
    if quantity is None:
        return None
    try:
        value = parse_quantity(str(quantity).strip())  # type: ignore[no-untyped-call]
    except ValueError:
        return None
    return int(value) if value.is_finite() and value >= 0 else None

