"""Kueue: GPU and CPU quotas per tenant. A ResourceFlavor per GPU product (GPU Feature Discovery's
`nvidia.com/gpu.product` node label) plus one for CPU, a ClusterQueue per tenant with its nominal quota, all
in one Cohort so idle quota is borrowed, and the LocalQueue every tenant namespace submits to. Jobs and the
Deployments KServe creates for InferenceServices (RawDeployment) are admitted through that queue."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components import namespaces
from components.catalog import CATALOG
from components.config import Gpu, Registry, Tenant
from components.config import Kueue as KueueConfig
from components.kube import RegistryLogin, helm_release, meta, mirror_pull_secret, platform_namespace, tolerations
from components.values import nested

API_VERSION = "kueue.x-k8s.io/v1beta2"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
CPU_FLAVOR = "pai-cpu"
CPU_RESOURCES = ["cpu", "memory"]
# Kueue's integrations for the platform's workloads: batch Jobs, and the Deployments KServe RawDeployment creates
# for each InferenceService. `deployment` needs `pod`: Kueue admits each of the Deployment's pods (they inherit
# the queue-name label) as a workload of its own, so a replica waits in the queue until quota is free.
FRAMEWORKS = ["batch/job", "pod", "deployment"]


@dataclass(frozen=True)
class KueueArgs:
    kueue: KueueConfig
    tenants: list[Tenant]
    tenant_namespaces: dict[str, pulumi.Input[str]]
    registry: Registry
    gpu: Gpu | None = None
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    mirror_login: RegistryLogin | None = None  # the air-gap mirror's account, where the platform makes its Secret
    pod_security: str | None = None  # the Pod Security level its namespace enforces (config.Cluster.pod_security)


class Kueue(pulumi.ComponentResource):
    """The Kueue release and the flavors, cohort and queues that carry each tenant's quota."""

    namespace: pulumi.Output[str]
    release: k8s.helm.v3.Release  # what model endpoints wait for: Kueue's webhooks must hold their pods

    def __init__(self, name: str, args: KueueArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pai:kueue:Kueue", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        pin = CATALOG.chart("kueue")
        ns = platform_namespace(f"{name}-namespace", namespaces.KUEUE, child, enforce=args.pod_security)
        self.namespace = ns.metadata["name"]
        pull_secret = mirror_pull_secret(f"{name}-mirror-pull-secret", self.namespace, args.registry,
                                         args.mirror_login, child)
        self.release = release = helm_release(
            f"{name}-release", "kueue", pin, args.registry.mirror, self.namespace,
            kueue_values(args.registry, pull_secret),
            pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )
        after_release = pulumi.ResourceOptions(parent=self, depends_on=[release])
        flavors = resource_flavors(args.gpu)
        for flavor in flavors:
            custom_resource(f"{name}-flavor-{flavor['metadata']['name']}", flavor, after_release)
        cohort = custom_resource(f"{name}-cohort", {"apiVersion": API_VERSION, "kind": "Cohort",
                                                    "metadata": meta(args.kueue.cohort), "spec": {}}, after_release)
        queues: dict[str, pulumi.Output[str]] = {}
        for tenant in args.tenants:
            cluster_queue = custom_resource(
                f"{name}-{tenant.name}-cluster-queue",
                {"apiVersion": API_VERSION, "kind": "ClusterQueue", "metadata": meta(tenant.name),
                 "spec": cluster_queue_spec(tenant, args.kueue, args.gpu)},
                pulumi.ResourceOptions(parent=self, depends_on=[release, cohort]),
            )
            namespace = args.tenant_namespaces[tenant.name]
            custom_resource(
                f"{name}-{tenant.name}-local-queue",
                {"apiVersion": API_VERSION, "kind": "LocalQueue", "metadata": meta(namespaces.TENANT_QUEUE, namespace),
                 "spec": {"clusterQueue": tenant.name}},
                pulumi.ResourceOptions(parent=self, depends_on=[release, cluster_queue]),
            )
            queues[tenant.name] = pulumi.Output.concat(namespace, "/", namespaces.TENANT_QUEUE)
        self.register_outputs({"namespace": self.namespace, "release": release.status, "localQueues": queues})


def custom_resource(name: str, body: dict[str, Any], opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(
        name, api_version=body["apiVersion"], kind=body["kind"], metadata=body["metadata"],
        spec=body["spec"], opts=opts,
    )


def gpu_flavor_name(product: str) -> str:
    """A ResourceFlavor name (a DNS subdomain) for a GPU product: NVIDIA-H100-80GB-HBM3 -> gpu-nvidia-h100-80gb-hbm3."""
    return "gpu-" + re.sub(r"[^a-z0-9.-]+", "-", product.lower()).strip("-.")


def resource_flavors(gpu: Gpu | None) -> list[dict[str, Any]]:
    """The CPU flavor (any node) and one flavor per GPU product, selecting its nodes by the GFD label and
    tolerating the GPU nodes' configured taints."""
    flavors: list[dict[str, Any]] = [
        {"apiVersion": API_VERSION, "kind": "ResourceFlavor", "metadata": meta(CPU_FLAVOR), "spec": {}},
    ]
    for product in gpu.products if gpu else []:
        spec: dict[str, Any] = {"nodeLabels": {GPU_PRODUCT_LABEL: product}}
        if gpu and gpu.tolerations:
            spec["tolerations"] = tolerations([], gpu.tolerations)
        flavors.append({"apiVersion": API_VERSION, "kind": "ResourceFlavor",
                        "metadata": meta(gpu_flavor_name(product)), "spec": spec})
    return flavors


def cluster_queue_spec(tenant: Tenant, kueue: KueueConfig, gpu: Gpu | None) -> dict[str, Any]:
    """The tenant's nominal quota: cpu and memory on the CPU flavor, not borrowed (the namespace's ResourceQuota
    caps them too), and GPUs per product, 0 where the tenant has none: it may borrow idle GPUs of any product
    from the cohort."""
    quota = tenant.quota
    groups: list[dict[str, Any]] = [{
        "coveredResources": CPU_RESOURCES,
        "flavors": [{"name": CPU_FLAVOR, "resources": [
            {"name": "cpu", "nominalQuota": quota.cpu, "borrowingLimit": 0},
            {"name": "memory", "nominalQuota": quota.memory, "borrowingLimit": 0}]}],
    }]
    if gpu:
        groups.append({
            "coveredResources": [GPU_RESOURCE],
            "flavors": [{"name": gpu_flavor_name(p),
                         "resources": [{"name": GPU_RESOURCE, "nominalQuota": quota.gpus.get(p, 0)}]}
                        for p in gpu.products],
        })
    return {
        "cohortName": kueue.cohort,
        "namespaceSelector": {"matchLabels": {namespaces.TENANT_LABEL: tenant.name}},
        "queueingStrategy": "BestEffortFIFO",
        "resourceGroups": groups,
        "preemption": {"reclaimWithinCohort": "Any" if kueue.reclaim else "Never",
                       "withinClusterQueue": "LowerPriority"},
    }


def manager_config() -> dict[str, Any]:
    """The controller's Configuration: the chart's defaults, with the platform's integrations, and only tenant
    namespaces managed (the pod and deployment webhooks act nowhere else)."""
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "health": {"healthProbeBindAddress": ":8081"},
        "metrics": {"bindAddress": ":8443"},
        "webhook": {"port": 9443},
        "leaderElection": {"leaderElect": True, "resourceName": "c1f6bfd2.kueue.x-k8s.io"},
        "controller": {"groupKindConcurrency": {
            "Job.batch": 5, "Pod": 5, "Workload.kueue.x-k8s.io": 10, "LocalQueue.kueue.x-k8s.io": 5,
            "ClusterQueue.kueue.x-k8s.io": 5, "ResourceFlavor.kueue.x-k8s.io": 1}},
        "clientConnection": {"qps": 300, "burst": 500},
        "manageJobsWithoutQueueName": False,
        "managedJobsNamespaceSelector": {"matchExpressions": [
            {"key": namespaces.TENANT_LABEL, "operator": "Exists"}]},
        "integrations": {"frameworks": FRAMEWORKS},
    }


def kueue_values(registry: Registry, pull_secret: pulumi.Input[str] | None) -> dict[str, Any]:
    """Helm values: the pinned controller image (on the mirror in air-gap mode) and the manager config."""
    (path, image), = CATALOG.chart("kueue").images.items()
    repository = f"{registry.mirror}/{image.path}" if registry.mirror else image.repository
    values: dict[str, Any] = {
        "managerConfig": {"controllerManagerConfigYaml": yaml.safe_dump(manager_config(), sort_keys=False)},
        **nested(path, {"repository": repository, "tag": image.tag, "pullPolicy": "IfNotPresent"}),
    }
    if pull_secret:
        values["controllerManager"]["imagePullSecrets"] = [{"name": pull_secret}]
    return values
