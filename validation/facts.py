"""Facts: what the validation suite knows about a stack or a cluster, typed, each piece tagged with its origin.

This module is the contract between the sources of facts and the rules (validation/rules/).

Sources
    One function per source returns the facts it saw, and only those (partial facts; every other field keeps its
    empty default)::

        validation.sources.config.config_facts(cfg: PlatformConfig, source: str) -> Facts       origin "config"
        validation.sources.kubernetes.cluster_facts(api: kubernetes.client.ApiClient) -> Facts  origin "cluster"
        validation.sources.vsphere.vcenter_facts(si: vim.ServiceInstance) -> Facts              origin "vcenter"
        validation.sources.supervisor.supervisor_facts(api, namespace, ...) -> Facts            origin "supervisor"
        validation.sources.nvml.nvml_facts(node: str) -> Facts                                  origin "nvml"
        validation.sources.smoke.smoke_facts(...) -> Facts                                      origin "smoke"

    Every record a source emits carries `origin=<its origin>`, and the source adds one line to `Facts.sources`
    saying where it read (`{"config": "stacks/Pulumi.vks-prod.yaml"}`, `{"cluster": "https://10.0.0.1:6443"}`,
    `{"smoke": "level vllm on node gpu-1"}`); the report lists them. A source never guesses: a value it cannot
    read stays None (or the record is left out) and the rules that need it report `skip`.

Merge
    `merge(*parts)` combines partial facts. Lists are concatenated in argument order (records of the same node
    seen by several sources stay separate records, one per origin, so a rule can say which source disagrees);
    a scalar field (`kubernetes`, `operator`, `driver`) takes the LAST non-None value, so callers pass
    sources from the least to the most authoritative: config, then cluster, supervisor, vcenter, nvml, smoke.
    `observed_over(planned, observed)` is what `--live` uses: the live lists replace the config's plan.

Values
    Versions are strings as the source reports them: driver "570.148.08" (GFD `nvidia.com/cuda.driver-version.*`
    labels carry the driver version); CUDA "12.8" (major.minor: GFD `nvidia.com/cuda.runtime-version.*`, NVML
    `nvmlSystemGetCudaDriverVersion` 12080);
    compute capability "9.0" (GFD `nvidia.com/gpu.compute.major/minor`, NVML); Kubernetes "1.33" or "v1.33.2"
    (rules read major.minor); operator release "v26.7.0" (a Helm chart version). GPU products are GFD
    `nvidia.com/gpu.product` strings (NVIDIA-H100-80GB-HBM3).

What the rules read
    Nodes are grouped by `driver_version` (one check per image and driver, not per node); `products` gives the
    GPU product (compute capability, data-center flag through the matrix); `mig_mode` "mixed" meets the known
    driver issues; a vCenter NodeFacts with `vgpu_profile` (named as the Kubernetes node) marks a vGPU VM.
    `HostFacts.graphics_mode` is compared with "sharedDirect". The deployed operator is the `ReleaseFacts` whose
    chart is "gpu-operator". `PodFacts` with component "driver" or "validator" are checked for readiness and
    waiting reasons; `ClusterPolicyFacts.state` for "ready"; `CrdFacts.stored_versions` against the target
    release's served versions on upgrade. The VKS checks read the planned cluster (`vks`), the Supervisor's
    `vm_classes`, `quotas`, `cluster_classes` and `vm_images`, and the hosts' `vgpu_profiles`.

Wiring
    `paictl validate --live` calls `validation.live.live_facts(args, supervisor)`, which returns the merged live
    facts; the program's preflight merges the Supervisor's (validation.preflight.supervisor_facts).

Facts are plain pydantic models, so a probe that runs as a Job can print `facts.model_dump_json()` and the
caller read it back with `Facts.model_validate_json(text)`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Origin = Literal["config", "cluster", "supervisor", "vcenter", "nvml", "smoke"]
ORIGINS: tuple[Origin, ...] = ("config", "cluster", "supervisor", "vcenter", "nvml", "smoke")


class Record(BaseModel):
    """Base of every fact: immutable, unknown fields rejected, and the source it came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    origin: Origin


class KubernetesFacts(Record):
    """The cluster's Kubernetes version: planned (config: pai:cluster.kubernetesVersion) or the API server's."""

    version: str


class OperatorFacts(Record):
    """The GPU Operator release: planned (config: pai:gpu.operator.version) or deployed (cluster: the Helm
    release of chart gpu-operator)."""

    version: str


class DriverFacts(Record):
    """How the GPU driver is provided. Config: pai:gpu.driver; cluster: the ClusterPolicy's spec.driver.
    `version` is the planned/declared driver (None: the operator's default or unknown); `image` the driver
    repository (vGPU: the customer-built guest driver image)."""

    mode: Literal["datacenter", "vgpu", "preinstalled"]
    version: str | None = None
    image: str | None = None


class NodeFacts(Record):
    """A GPU node as one source saw it. Config emits one planned node per product in pai:gpu.products, named
    `planned <product>`, with the planned driver version; the cluster one per Node with GFD labels; vCenter
    one per node VM (vgpu_profile, host); NVML one per probed node.

    products: GPU product -> count on this node (GFD nvidia.com/gpu.product, nvidia.com/gpu.count).
    driver_version: the running (or planned) driver, e.g. 570.148.08 (GFD nvidia.com/cuda.driver-version.full,
    older GFD nvidia.com/cuda.driver.major/minor/rev, or NVML nvmlSystemGetDriverVersion); the CUDA rules read
    this one. cuda_driver_version: the newest CUDA the driver supports, "12.8" (GFD
    nvidia.com/cuda.runtime-version.full, older nvidia.com/cuda.runtime.major/minor; NVML
    nvmlSystemGetCudaDriverVersion 12080 -> "12.8"), reported, not yet checked.
    compute_capability: "9.0"; None: derive it from the product through the matrix. mig_mode: GFD
    nvidia.com/mig.strategy (none|single|mixed) or NVML (enabled|disabled). vgpu_profile: the VM's vGPU profile
    (nvidia_h100-80c); host: the ESXi host the VM runs on (vCenter)."""

    name: str
    products: dict[str, int] = {}
    driver_version: str | None = None
    cuda_driver_version: str | None = None
    compute_capability: str | None = None
    mig_mode: str | None = None
    vgpu_profile: str | None = None
    host: str | None = None


class HostFacts(Record):
    """An ESXi host (vCenter) or the planned host manager (config: pai:gpu.hosts.vgpuManagerVersion, name
    `pai:gpu.hosts`). vgpu_manager_version: the NVIDIA vGPU manager VIB version, e.g. 580.95.02;
    graphics_mode: host config.graphicsInfo graphicsType / default graphics type (sharedDirect = vGPU);
    vgpu_profiles: the vGPU profiles the host's GPUs offer (config.sharedPassthruGpuTypes, nvidia_h100xm-80c)."""

    name: str
    vgpu_manager_version: str | None = None
    graphics_mode: str | None = None
    vgpu_profiles: list[str] = []


class VksPoolFacts(BaseModel):
    """One planned group of VMs of a VKS workload cluster: a node pool, or the control plane (name
    `control-plane`), with its VM class and replicas; gpu: a GPU pool (its VM class must carry a vGPU profile)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    vm_class: str
    replicas: int
    gpu: bool = False


class VksPlanFacts(Record):
    """The VKS workload cluster a stack creates on the Supervisor (config: pai:supervisor): the vSphere namespace,
    the release (topology.version), the ClusterClass, the variables the Cluster sets and the VM groups;
    gpu_products: pai:gpu.products (vGPU type names on VKS); node_os: the OS the GPU nodes run and the guest
    driver image is built for (pai:gpu.driver.os, e.g. ubuntu22.04)."""

    namespace: str
    cluster: str
    release: str
    cluster_class: str
    cluster_class_namespace: str
    variables: list[str] = []
    pools: list[VksPoolFacts] = []
    gpu_products: list[str] = []
    node_os: str | None = None


class VmClassFacts(Record):
    """A VirtualMachineClass usable in a vSphere namespace (Supervisor: namespaced, or on older Supervisors bound
    to it by a VirtualMachineClassBinding). vgpu_profiles: from spec.hardware.devices.vgpuDevices[].profileName
    and from spec.configSpec's deviceChange (VirtualPCIPassthroughVmiopBackingInfo vgpu); memory: the VM's memory
    (spec.hardware.memory, else configSpec memoryMB), memory_reservation: spec.policies.resources.requests.memory
    (else configSpec memoryAllocation.reservation); both in bytes, None when the class does not say."""

    namespace: str
    name: str
    vgpu_profiles: list[str] = []
    memory: int | None = None
    memory_reservation: int | None = None


class QuotaFacts(Record):
    """A ResourceQuota of the vSphere namespace (the Supervisor writes the namespace's limits as one): its memory
    hard limits and use in bytes, by resource name (limits.memory, requests.memory, memory)."""

    namespace: str
    name: str
    hard: dict[str, int] = {}
    used: dict[str, int] = {}


class ClusterClassFacts(Record):
    """A Cluster API ClusterClass on the Supervisor: the variable names it defines (status.variables[].name)."""

    namespace: str
    name: str
    variables: list[str] = []


class VmImageFacts(Record):
    """A VirtualMachineImage (or ClusterVirtualMachineImage) the Supervisor serves: its display name
    (status.name, e.g. ubuntu-2204-amd64-v1.33.3---vmware.1-fips-vkr.1), OS (status.osInfo type/version) and
    product version (status.productInfo version/fullVersion)."""

    name: str
    display_name: str | None = None
    os_type: str | None = None
    os_version: str | None = None
    product_version: str | None = None


class RuntimeImageFacts(Record):
    """A serving runtime image that runs on GPU nodes: its engine, reference and the CUDA it is built with
    (config: the catalog's `cuda`; None: unknown). unverified: the catalog marks the CUDA value unverified.
    assumed: the tag is newer than every matrix row of its image, whose newest CUDA is assumed."""

    engine: str
    image: str
    cuda: str | None = None
    unverified: bool = False
    assumed: bool = False


class ModelFacts(Record):
    """A model endpoint: engine, weight format, GPUs it asks for and the GPU product it is pinned to."""

    name: str
    engine: str
    format: str
    gpus: int = 0
    product: str | None = None


class CrdFacts(Record):
    """A CustomResourceDefinition: its stored versions (status.storedVersions) and served versions.
    Config: the CRDs of the planned operator release from the matrix data."""

    name: str
    stored_versions: list[str] = []
    served_versions: list[str] = []


class ReleaseFacts(Record):
    """A Helm release: installed (cluster: read by helm through pyhelm3, latest revision) or planned by a stack
    (config). `values`: the values it was installed with or that the plan sets (never printed: they may hold
    secrets)."""

    name: str
    namespace: str
    chart: str
    version: str
    status: str
    values: dict[str, Any] = {}


class ClusterPolicyFacts(Record):
    """The GPU Operator's ClusterPolicy: status.state (ready | notReady | ...)."""

    name: str
    state: str | None = None


class PodFacts(Record):
    """A GPU Operator pod: component driver | validator | toolkit | device-plugin | ...; phase, readiness,
    restarts and the waiting reason of a container that is not running (CrashLoopBackOff, ImagePullBackOff)."""

    name: str
    namespace: str
    component: str
    node: str | None = None
    phase: str | None = None
    ready: bool = False
    restarts: int = 0
    waiting_reason: str | None = None


class SmokeFacts(Record):
    """One smoke probe run on a GPU node in a runtime image, at the deepest level available (vllm: generation
    from a tiny dummy-weight model; torch: a CUDA kernel; nvml: NVML only)."""

    node: str
    image: str
    level: Literal["vllm", "torch", "nvml"]
    ok: bool
    detail: str = ""


class Facts(BaseModel):
    """Everything known, from one or more sources. See the module docstring for the contract."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: dict[str, str] = {}
    kubernetes: KubernetesFacts | None = None
    operator: OperatorFacts | None = None
    driver: DriverFacts | None = None
    nodes: list[NodeFacts] = []
    hosts: list[HostFacts] = []
    runtime_images: list[RuntimeImageFacts] = []
    models: list[ModelFacts] = []
    crds: list[CrdFacts] = []
    releases: list[ReleaseFacts] = []
    cluster_policies: list[ClusterPolicyFacts] = []
    pods: list[PodFacts] = []
    smoke: list[SmokeFacts] = []
    vks: VksPlanFacts | None = None
    vm_classes: list[VmClassFacts] = []
    quotas: list[QuotaFacts] = []
    cluster_classes: list[ClusterClassFacts] = []
    vm_images: list[VmImageFacts] = []

    @property
    def deployed_operator(self) -> ReleaseFacts | None:
        """The deployed gpu-operator Helm release, if a source saw one."""
        return next((r for r in self.releases if r.chart == "gpu-operator"), None)

    @property
    def operator_version(self) -> OperatorFacts | None:
        """The operator release in force: the deployed one where known, else the planned one."""
        deployed = self.deployed_operator
        if deployed is not None:
            return OperatorFacts(version=deployed.version, origin=deployed.origin)
        return self.operator


LISTS = ("nodes", "hosts", "runtime_images", "models", "crds", "releases", "cluster_policies", "pods", "smoke",
         "vm_classes", "quotas", "cluster_classes", "vm_images")
SCALARS = ("kubernetes", "operator", "driver", "vks")


def merge(*parts: Facts) -> Facts:
    """One Facts from partial ones: lists concatenated in order, scalars from the last part that has them."""
    fields: dict[str, object] = {name: [r for p in parts for r in getattr(p, name)] for name in LISTS}
    for name in SCALARS:
        fields[name] = next((getattr(p, name) for p in reversed(parts) if getattr(p, name) is not None), None)
    fields["sources"] = {k: v for p in parts for k, v in p.sources.items()}
    return Facts.model_validate(fields)


def observed_over(planned: Facts, observed: Facts) -> Facts:
    """Live facts over a config's plan (`paictl validate --live`): each list the observed facts fill replaces
    the planned one (the cluster's nodes, not the planned ones); other lists are kept; scalars merge."""
    kept = planned.model_copy(update={name: [] for name in LISTS if getattr(observed, name)})
    return merge(kept, observed)
