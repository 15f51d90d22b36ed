"""A VKS workload cluster: the Cluster API `Cluster` on the Supervisor (a vSphere namespace), built from the
ClusterClass's grouped topology variables, waited for until it is available, and its kubeconfig read back from the
Secret Cluster API writes beside it, for the platform's own Kubernetes provider."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config import NodePool, Supervisor
from components.kube import meta, resource_name
from components.values import merge

GROUP = "cluster.x-k8s.io"
# The worker class of the builtin-generic ClusterClasses.
WORKER_CLASS = "node-pool"
# The readiness condition per API version: v1beta2 Clusters summarize into Available, v1beta1 ones into Ready.
READY_CONDITION = {"v1beta2": "Available", "v1beta1": "Ready"}
# pulumi-kubernetes waits for the condition (status True, observed at the object's generation) on create and
# update: pkg/metadata/overrides.go:99 (ReadyCondition, "condition=" at :143), pkg/await/condition/kubectl.go:29.
WAIT_FOR = "pulumi.com/waitFor"
# Creating a cluster (control plane then workers, one VM each) and rolling GPU pools one node at a time (maxSurge 0)
# take long; the provider's default would give up after minutes.
TIMEOUTS = pulumi.CustomTimeouts(create="90m", update="180m", delete="60m")
# The VKS TKr resolver's label selector over OSImages for a machineDeployment: the GPU Operator's driver
# containers exist for Ubuntu, not for Photon OS (VMware docs, "TKr Resolution").
OS_IMAGE_ANNOTATION = "run.tanzu.vmware.com/resolve-os-image"
UBUNTU = "os-name=ubuntu"
# The key of the kubeconfig in the Secret `<cluster>-kubeconfig` Cluster API writes in the Cluster's namespace.
KUBECONFIG_KEY = "value"
# Where the node volumes mount (the builtin-generic classes' `volumes` variable).
CONTAINERD_PATH = "/var/lib/containerd"
KUBELET_PATH = "/var/lib/kubelet"


def class_fields(supervisor: Supervisor) -> list[str]:
    """The topology fields that name the ClusterClass. VKS moves a cluster to a newer ClusterClass on upgrade;
    with server-side apply, ignoreChanges on a field another manager now owns drops it from the program's apply,
    else sends the live value (pulumi-kubernetes v4.25 pkg/await/await.go:663 and :679, handleSSAIgnoreFields), and
    Diff leaves it out (pkg/provider/provider.go:1442): the class set at creation is never put back over VKS's
    choice. The class is therefore a creation-time setting. The release is not ignored (see topology_version)."""
    if supervisor.apiVersion == "v1beta2":
        return ["spec.topology.classRef"]
    return ["spec.topology.class", "spec.topology.classNamespace"]


def topology_version(release: str) -> str:
    """The release as `spec.topology.version`: the Kubernetes version of the VKS release (its TKr), which is the
    release name with `+` for `---` (v1.33.3---vmware.1-fips-vkr.1 -> v1.33.3+vmware.1-fips-vkr.1). The TKr
    resolver takes the version as a prefix and writes the resolved TKr's Kubernetes version back: written in that
    form already, the resolver's rewrite changes nothing, so the program and VKS never disagree on the field, and a
    new release is still an in-place update of it."""
    return release.replace("---", "+", 1)


def volumes(pool: NodePool) -> list[dict[str, str]]:
    """The pool's node volumes: containerd's images and kubelet's pods (emptyDirs, logs)."""
    return [{"name": "containerd", "mountPath": CONTAINERD_PATH, "capacity": pool.containerd_volume},
            {"name": "kubelet", "mountPath": KUBELET_PATH, "capacity": pool.kubelet_volume}]


def pool_variables(pool: NodePool) -> list[dict[str, Any]]:
    """The grouped variables a pool overrides: its VM class, storage class, volumes, node labels and taints."""
    overrides: list[dict[str, Any]] = [{"name": "vmClass", "value": pool.vmClass}]
    if pool.storageClass is not None:
        overrides.append({"name": "storageClass", "value": pool.storageClass})
    overrides.append({"name": "volumes", "value": volumes(pool)})
    node: dict[str, Any] = {}
    if pool.labels:
        node["labels"] = dict(pool.labels)
    if pool.node_taints:
        node["taints"] = [{"key": t.key, "value": t.value, "effect": t.effect} for t in pool.node_taints]
    if node:
        overrides.append({"name": "node", "value": node})
    return overrides


def machine_deployment(pool: NodePool, api_version: str) -> dict[str, Any]:
    """A worker pool of the `node-pool` class. A GPU pool runs the Ubuntu node image and rolls one node at a time
    without a surge node (no spare vGPU for one)."""
    deployment: dict[str, Any] = {"class": WORKER_CLASS, "name": pool.name, "replicas": pool.replicas,
                                  "variables": {"overrides": pool_variables(pool)}}
    if pool.gpu:
        deployment["metadata"] = {"annotations": {OS_IMAGE_ANNOTATION: UBUNTU}}
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
        if api_version == "v1beta2":
            deployment["rollout"] = {"strategy": strategy}
        else:
            deployment["strategy"] = strategy
    return deployment


def cluster_variables(supervisor: Supervisor, default_storage_class: str) -> list[dict[str, Any]]:
    """The cluster-wide grouped variables: the control plane's VM class (the workers override theirs), the
    storage class of the nodes' disks, the cluster's default StorageClass for volumes, then the stack's extra
    grouped variables (its own vsphereOptions win over the default StorageClass)."""
    extra = dict(supervisor.variables)
    ours = {"persistentVolumes": {"defaultStorageClass": default_storage_class}}
    given = extra.pop("vsphereOptions", {})
    options = merge(ours, given) if isinstance(given, dict) else given
    return [{"name": "vmClass", "value": supervisor.controlPlane.vmClass},
            {"name": "storageClass", "value": supervisor.storageClass},
            {"name": "vsphereOptions", "value": options},
            *({"name": name, "value": value} for name, value in extra.items())]


def cluster_spec(supervisor: Supervisor, default_storage_class: str) -> dict[str, Any]:
    """The Cluster's spec: a managed topology of the ClusterClass at the release, with the control plane and one
    machineDeployment per node pool."""
    if supervisor.apiVersion == "v1beta2":
        class_ref: dict[str, Any] = {"classRef": {"name": supervisor.clusterClass,
                                                  "namespace": supervisor.clusterClassNamespace}}
    else:
        class_ref = {"class": supervisor.clusterClass, "classNamespace": supervisor.clusterClassNamespace}
    return {
        "clusterNetwork": {"pods": {"cidrBlocks": list(supervisor.podCidrs)},
                           "services": {"cidrBlocks": list(supervisor.serviceCidrs)},
                           "serviceDomain": supervisor.serviceDomain},
        "topology": {
            **class_ref,
            "version": topology_version(supervisor.release),
            "controlPlane": {"replicas": supervisor.controlPlane.replicas},
            "workers": {"machineDeployments": [machine_deployment(p, supervisor.apiVersion)
                                               for p in supervisor.nodePools]},
            "variables": cluster_variables(supervisor, default_storage_class),
        },
    }


def decoded(data: Mapping[str, str]) -> str:
    """The kubeconfig from the Secret's data (base64, as the API returns it)."""
    return base64.b64decode(data[KUBECONFIG_KEY]).decode()


@dataclass(frozen=True)
class VksClusterArgs:
    supervisor: Supervisor
    provider: k8s.Provider  # the Supervisor's: a vSphere namespace user's kubeconfig
    # The cluster's default StorageClass for persistent volumes (pai:cluster.storageClass, else the nodes').
    default_storage_class: str | None = None


class VksCluster(pulumi.ComponentResource):
    """The workload cluster on the Supervisor, through the Supervisor's provider. `kubeconfig` (a Pulumi secret)
    is the cluster's admin kubeconfig, known once the Cluster is available."""

    name: pulumi.Output[str]
    namespace: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]

    def __init__(self, name: str, args: VksClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pai:vks:VksCluster", name, None, opts)
        sup = args.supervisor
        cluster = k8s.apiextensions.CustomResource(
            f"{name}-cluster",
            api_version=f"{GROUP}/{sup.apiVersion}",
            kind="Cluster",
            metadata=meta(sup.cluster, sup.namespace,
                          annotations={WAIT_FOR: f"condition={READY_CONDITION[sup.apiVersion]}"}),
            spec=cluster_spec(sup, args.default_storage_class or sup.storageClass),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, custom_timeouts=TIMEOUTS,
                                        ignore_changes=class_fields(sup)),
        )
        self.name = resource_name(cluster)
        self.namespace = cluster.metadata["namespace"]  # type: ignore[attr-defined]
        # Read once the Cluster exists (its id is known): a first preview skips the read instead of failing on a
        # Secret that is not there yet. A read records no dependency of its id, so depends_on: what uses the
        # kubeconfig (the platform's provider, the platform) is destroyed before the Cluster.
        secret = k8s.core.v1.Secret.get(
            f"{name}-kubeconfig",
            cluster.id.apply(lambda _: f"{sup.namespace}/{sup.cluster}-kubeconfig"),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[cluster]),
        )
        self.kubeconfig = pulumi.Output.secret(secret.data.apply(decoded))
        self.register_outputs({"name": self.name, "namespace": self.namespace, "kubeconfig": self.kubeconfig})
