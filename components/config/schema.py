"""The typed models of the `pai:` keys and the patterns their values must match."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated, Literal

import pulumi
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from components.catalog import CATALOG
from components.images import normalized
from components.stackfile import shown

NAMESPACE = "pai"


DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
DRIVER_VERSION = re.compile(r"^\d{3}\.\d{1,3}\.\d{1,3}$")
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|Pi|M|G|T|P)?$"
K8S_MINOR = r"^1\.\d{1,2}$"
ROUTING_NAME = r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.:-]*$"
GPU_PRODUCT = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
REGISTRY_PREFIX = r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$"
HOSTNAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
ENDPOINT = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?$"
OBJECT_NAME = r"^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$"
DURATION = r"^[0-9]+(ms|s|m|h|d|w|y)$"
HTTP_URL = r"^https?://[a-z0-9.-]+(:[0-9]+)?(/[^\s]*)?$"
# What each pattern means, for error messages.
PATTERNS = {
    DNS_LABEL: "a DNS label (lowercase letters, digits and '-', at most 63 characters)",
    QUANTITY: "a Kubernetes quantity like 16, 500m or 64Gi",
    K8S_MINOR: "a Kubernetes minor version like 1.33",
    ROUTING_NAME: "a routing name like provider/model",
    GPU_PRODUCT: "a GPU Feature Discovery product name like NVIDIA-H100-80GB-HBM3",
    REGISTRY_PREFIX: "a registry host with an optional path, like harbor.example.com/mirror",
    HOSTNAME: "a DNS name like pai.example.com",
    ENDPOINT: "a host with an optional port, like minio.example.com:9000",
    OBJECT_NAME: "a Kubernetes object name (lowercase letters, digits, '-' and '.')",
    DURATION: "a Prometheus duration like 15d or 12h",
    HTTP_URL: "an http(s) URL like https://s3.example.com",
}
IMAGE_REF = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$")
OCI_SOURCE = re.compile(r"^oci://[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+(:[\w][\w.-]{0,127}|@sha256:[0-9a-f]{64})$")
S3_SOURCE = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?$")
PVC_SOURCE = re.compile(r"^pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?(/[^\s]*)?$")
# A registered model version by alias (`paictl model register`), resolved at plan time to its gallery digest.
MLFLOW_SOURCE = re.compile(r"^mlflow://(?P<name>[A-Za-z0-9][\w.-]{0,255})@(?P<alias>[A-Za-z0-9][\w-]{0,255})$")
OCI_DIGEST_SOURCE = re.compile(r"^oci://[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+@sha256:[0-9a-f]{64}$")

# Keys that must be Pulumi secrets (`pulumi config set --secret KEY ...`), never plain text.
SECRET_KEYS = (
    "harborAdminPassword",
    "nlsClientToken",
    "grafanaAdminPassword",
    "mlflowDbPassword",
    "s3AccessKeyId",
    "s3SecretAccessKey",
    "mlflowAdminPassword",
    "kubeconfig",
    "mirrorPullUsername",
    "mirrorPullPassword",
    "supervisorKubeconfig",
)

Engine = Literal["vllm", "infinity", "llamacpp"]
# The GPU nodes' OS as the GPU Operator names it in the driver image tag (<version>-<os>): the OSes its driver
# images are built for. VKS GPU nodes run the Ubuntu node image (there is no driver image for Photon OS).
NodeOS = Literal["ubuntu20.04", "ubuntu22.04", "ubuntu24.04", "rhel8.10", "rhel9.4", "rhel9.6"]
ENGINE_FORMATS: dict[str, tuple[str, ...]] = {
    "vllm": ("safetensors",),
    "infinity": ("safetensors", "onnx"),
    "llamacpp": ("gguf",),
}


class ConfigError(pulumi.RunError):
    """A stack config that cannot be deployed; one line per problem."""


class Strict(BaseModel):
    """Base of every config model: unknown keys are errors, keys are camelCase as in the stack file."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


class Ingress(Strict):
    className: str = Field(default="envoy", pattern=OBJECT_NAME, max_length=253)
    domain: str | None = Field(default=None, pattern=HOSTNAME)


class Cluster(Strict):
    """`target` vks is a VKS (vSphere Kubernetes Service) cluster, which differs from a generic one in three ways
    the platform acts on: its Supervisor enforces Pod Security `restricted` on every namespace without a label
    (TKr 1.26 and later), so the platform's own namespaces get an explicit level; it has a default StorageClass only
    when its Cluster sets vsphereOptions.persistentVolumes.defaultStorageClass, so volumes need `storageClass`; its
    GPU nodes run the Ubuntu node image (no GPU Operator driver image exists for Photon OS)."""

    target: Literal["vks", "generic"]
    kubernetesVersion: str = Field(pattern=K8S_MINOR)
    ingress: Ingress = Ingress()
    storageClass: str | None = None

    @property
    def pod_security(self) -> str | None:
        """The Pod Security level the platform's own unprivileged namespaces enforce: on VKS baseline, what the
        charts' pods meet, in place of the Supervisor's restricted default; elsewhere the cluster's default."""
        return "baseline" if self.target == "vks" else None


class Operator(Strict):
    version: str = CATALOG.chart("gpu-operator").version

    @field_validator("version")
    @classmethod
    def _known(cls, value: str) -> str:
        return _one_of(value, sorted(CATALOG.chart("gpu-operator").versions))


class Licensing(Strict):
    featureType: Literal[1, 2, 4] = 1
    nlsEnabled: bool = True


class Driver(Strict):
    mode: Literal["datacenter", "vgpu", "preinstalled"]
    version: str | None = None
    image: str | None = None
    os: NodeOS = "ubuntu22.04"
    licensing: Licensing | None = None

    @field_validator("version")
    @classmethod
    def _driver_version(cls, value: str | None) -> str | None:
        return _driver(value)

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        return None if value is None else _image_ref(value, tag_required=False)


class Hosts(Strict):
    vgpuManagerVersion: str | None = None

    @field_validator("vgpuManagerVersion")
    @classmethod
    def _driver_version(cls, value: str | None) -> str | None:
        return _driver(value)


class Toleration(Strict):
    key: str
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class Gpu(Strict):
    operator: Operator = Operator()
    driver: Driver
    hosts: Hosts = Hosts()
    products: list[Annotated[str, Field(pattern=GPU_PRODUCT)]] = Field(min_length=1)
    migStrategy: Literal["none", "single", "mixed"] = "none"
    nodeSelector: dict[str, str] = {}
    tolerations: list[Toleration] = []


class Registry(Strict):
    mirror: str | None = Field(default=None, pattern=REGISTRY_PREFIX)
    # Where Harbor and what serves it (cert-manager, the Gateway) pull from when the mirror is this stack's own
    # Harbor, which cannot serve them before it runs: a registry outside the stack.
    bootstrap: str | None = Field(default=None, pattern=REGISTRY_PREFIX)
    pullSecret: str | None = Field(default=None, pattern=DNS_LABEL)


class Runtime(Strict):
    image: str

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        if value in CATALOG.images:
            return value
        if not any(c in value for c in "/:@"):
            raise ValueError(f"{shown(value)} is neither a catalog image ({', '.join(sorted(CATALOG.images))}) "
                             "nor an image reference")
        return _image_ref(value, tag_required=True)


class Runtimes(Strict):
    vllm: Runtime = Runtime(image="vllm")
    infinity: Runtime = Runtime(image="infinity")
    infinityCpu: Runtime = Runtime(image="infinity-cpu")  # Infinity's CPU build, for embeddings with no GPU
    llamacpp: Runtime = Runtime(image="llamacpp")

    def image(self, runtime: str) -> str:
        """The full image reference a runtime (vllm, infinity, infinityCpu, llamacpp) runs, resolved through the
        catalog."""
        ref: str = getattr(self, runtime).image
        return CATALOG.image(ref).ref if ref in CATALOG.images else ref


class Model(Strict):
    name: str = Field(pattern=DNS_LABEL)
    routingName: str = Field(pattern=ROUTING_NAME)
    type: Literal["completion", "embedding"]
    engine: Engine | None = None
    format: Literal["safetensors", "gguf", "onnx"]
    source: str
    gpus: int = Field(default=0, ge=0, le=64)
    product: str | None = None
    replicas: int = Field(default=1, ge=1, le=100)
    tenant: str

    _registered: str | None = PrivateAttr(default=None)  # the mlflow:// source this one was resolved from

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if any(p.match(value) for p in (OCI_SOURCE, S3_SOURCE, PVC_SOURCE, MLFLOW_SOURCE)):
            return value
        raise ValueError(f"{shown(value)} is not oci://HOST/PATH:TAG or oci://HOST/PATH@sha256:DIGEST, "
                         "s3://BUCKET/PATH, pvc://CLAIM/PATH or mlflow://MODEL@ALIAS")

    @property
    def registered_as(self) -> str | None:
        """The `mlflow://NAME@ALIAS` source the gallery digest in `source` was resolved from, if any."""
        return self._registered

    @property
    def resolved_engine(self) -> str:
        """The engine this model is served by: the configured one, else the engine rule's choice."""
        return self.engine or rule_engine(self)

    @property
    def route_key(self) -> str:
        """The routing name as a DNS label (openai/gpt-oss-20b -> openai-gpt-oss-20b): the gateway rule's name."""
        return re.sub(r"[^a-z0-9]+", "-", self.routingName.lower()).strip("-")[:63].rstrip("-")


Quantity = Annotated[str, Field(pattern=QUANTITY)]


class Quota(Strict):
    cpu: Quantity = "16"
    memory: Quantity = "64Gi"
    gpus: dict[str, Annotated[int, Field(ge=0)]] = {}


class Subject(Strict):
    kind: Literal["User", "Group", "ServiceAccount"]
    name: str
    namespace: str | None = Field(default=None, pattern=DNS_LABEL)

    @model_validator(mode="after")
    def _namespaced(self) -> Subject:
        if (self.kind == "ServiceAccount") != (self.namespace is not None):
            raise ValueError("namespace is required for a ServiceAccount and only for one")
        return self


class Tenant(Strict):
    name: str = Field(pattern=DNS_LABEL)
    deployers: list[Subject] = []
    quota: Quota = Quota()
    podSecurity: Literal["restricted", "baseline", "privileged"] = "baseline"
    egressCidrs: list[str] = []

    @field_validator("egressCidrs")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        return _cidr_list(values)


class S3(Strict):
    """The S3-compatible object store `s3://` model sources are read from; the keys are the secrets
    pai:s3AccessKeyId and pai:s3SecretAccessKey."""

    endpoint: str = Field(pattern=ENDPOINT)
    region: str | None = None
    useHttps: bool = True
    verifySsl: bool = True


class Kueue(Strict):
    """Kueue quotas: every tenant's ClusterQueue joins `cohort`, so idle quota is lent to the others."""

    cohort: str = Field(default="pai", pattern=DNS_LABEL)
    reclaim: bool = True  # a tenant may preempt borrowers to get its nominal quota back


# Histogram bucket bounds the latency SLOs can be measured at: a threshold must be a bucket bound of the
# runtime's latency histogram (vLLM's vllm:e2e_request_latency_seconds; Infinity's http_request_duration_seconds,
# the buckets prometheus-fastapi-instrumentator sets by default).
COMPLETION_LATENCY_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
                              120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
EMBEDDING_LATENCY_BUCKETS = (0.1, 0.5, 1.0)


class Slo(Strict):
    """Service level objectives of every model endpoint, over 30 days."""

    availability: float = Field(default=0.99, ge=0.9, lt=1)  # share of requests that are not 5xx
    latencyTarget: float = Field(default=0.95, ge=0.5, lt=1)  # share of requests faster than the thresholds
    completionSeconds: float = 10.0
    embeddingSeconds: float = 1.0

    @field_validator("completionSeconds")
    @classmethod
    def _completion_bucket(cls, value: float) -> float:
        return _bucket(value, COMPLETION_LATENCY_BUCKETS, "vllm:e2e_request_latency_seconds")

    @field_validator("embeddingSeconds")
    @classmethod
    def _embedding_bucket(cls, value: float) -> float:
        return _bucket(value, EMBEDDING_LATENCY_BUCKETS, "http_request_duration_seconds")


class Monitoring(Strict):
    """kube-prometheus-stack with Grafana; the admin password is the secret pai:grafanaAdminPassword."""

    retention: str = Field(default="15d", pattern=DURATION)
    storageSize: Quantity = "50Gi"
    slo: Slo = Slo()


class HarborStorage(Strict):
    """Persistent volume sizes of Harbor's stateful parts (all on pai:cluster.storageClass)."""

    registry: Quantity = "200Gi"
    database: Quantity = "10Gi"
    redis: Quantity = "2Gi"
    jobservice: Quantity = "1Gi"
    trivy: Quantity = "5Gi"


class HarborConfig(Strict):
    """Harbor, the registry and model gallery. `host` defaults to harbor.<pai:cluster.ingress.domain>; `expose`
    `gateway` puts it behind the platform Gateway, `clusterIP` keeps it in-cluster; `tlsSecret` names an existing
    kubernetes.io/tls Secret in the harbor namespace that the Gateway's Harbor listener (or, in-cluster, Harbor's
    own proxy) serves, else cert-manager issues one."""

    host: str | None = Field(default=None, pattern=HOSTNAME)
    expose: Literal["gateway", "clusterIP"] = "gateway"
    tlsSecret: str | None = Field(default=None, pattern=DNS_LABEL)
    verifyTls: bool = True  # whether Pulumi's Harbor provider verifies Harbor's certificate
    storage: HarborStorage = HarborStorage()


class GalleryMember(Strict):
    """A directory group given a role in a gallery project."""

    group: str
    type: Literal["oidc", "ldap", "internal"] = "oidc"
    role: Literal["projectadmin", "maintainer", "developer", "guest", "limitedguest"] = "guest"


class GalleryProject(Strict):
    name: str = Field(pattern=DNS_LABEL)
    quotaGb: int = Field(default=500, ge=1)
    members: list[GalleryMember] = []


class Gallery(Strict):
    """The model gallery's Harbor projects: models are pushed to dev, promoted to prod by tag."""

    dev: GalleryProject = GalleryProject(name="dev-models")
    prod: GalleryProject = GalleryProject(name="prod-models", quotaGb=1000)
    promotionTags: list[Annotated[str, Field(pattern=r"^[\w][\w.-]{0,127}$")]] = Field(
        default=["approved", "prod"], min_length=1)
    retainLast: int = Field(default=10, ge=1, le=1000)
    retentionSchedule: str = "Daily"
    charts: str = Field(default="charts", pattern=DNS_LABEL)
    chartsQuotaGb: int = Field(default=50, ge=1)
    mirrorQuotaGb: int = Field(default=2000, ge=1)


class MlflowDatabase(Strict):
    """PostgreSQL backend store: an external server at `host`, else the chart's bundled PostgreSQL."""

    host: str | None = Field(default=None, pattern=HOSTNAME)
    port: int = Field(default=5432, ge=1, le=65535)
    name: str = "mlflow"
    authName: str = "mlflow_auth"
    user: str = "mlflow"
    size: Quantity = "20Gi"


class MlflowArtifacts(Strict):
    """S3-compatible artifact store: an existing `endpoint`, else the chart's bundled MinIO."""

    endpoint: str | None = Field(default=None, pattern=HTTP_URL)
    bucket: str = Field(default="mlflow", pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    path: str = ""
    size: Quantity = "50Gi"


class MlflowConfig(Strict):
    """MLflow tracking server with basic auth; `host` defaults to mlflow.<pai:cluster.ingress.domain>."""

    host: str | None = Field(default=None, pattern=HOSTNAME)
    database: MlflowDatabase = MlflowDatabase()
    artifacts: MlflowArtifacts = MlflowArtifacts()
    adminUser: str = Field(default="admin", pattern=r"^[A-Za-z0-9_.-]+$")
    defaultPermission: Literal["READ", "EDIT", "MANAGE", "NO_PERMISSIONS"] = "READ"


class Validation(Strict):
    allowFailures: list[str] = []


# A VKS release (VKr) name as `topology.version` takes it, e.g. v1.33.3---vmware.1-fips-vkr.1.
VKS_RELEASE = re.compile(r"^v1\.(?P<minor>\d{1,2})\.(?P<patch>\d{1,3})---vmware\.\d+(-[a-z0-9.]+)*$")
# builtin-generic classes from v3.2.0 on take the grouped topology variables the platform writes; older classes
# (tanzukubernetescluster, builtin-generic-v3.1.0 and before) take the ungrouped names.
CLUSTER_CLASS = re.compile(r"^builtin-generic-v(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)$")
UNGROUPED_VARIABLES = ("defaultStorageClass", "ntp", "proxy", "trust", "nodePoolLabels", "nodePoolTaints",
                       "nodePoolVolumes", "storageClasses", "TKR_DATA", "extensionCert", "clusterEncryptionConfigYaml",
                       "controlPlaneVolumes", "controlPlaneCertificateRotation", "user")
# The variables of the grouped classes a stack may set beside those the platform writes (vsphere/variables).
GROUPED_VARIABLES = ("osConfiguration", "vsphereOptions", "kubernetes", "resourceConfiguration",
                     "bootstrapAddons", "networks", "kubeAPIServerFQDNs")
WRITTEN_VARIABLES = ("vmClass", "storageClass", "volumes", "node")
GPU_TAINT = "nvidia.com/gpu"


class Taint(Strict):
    key: str = Field(pattern=r"^([a-z0-9.-]+/)?[A-Za-z0-9][-A-Za-z0-9_.]*$", max_length=253)
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"

    @property
    def toleration(self) -> Toleration:
        """What tolerates the taint, whatever its value."""
        return Toleration(key=self.key, operator="Exists", effect=self.effect)


class NodePool(Strict):
    """A worker node pool (a machineDeployment of the ClusterClass's `node-pool` class). A GPU pool (`gpu: true`)
    runs the Ubuntu node image, is tainted nvidia.com/gpu:NoSchedule (which the GPU Operator tolerates), rolls out
    with maxSurge 0 (no spare vGPU for a surge node) and gets a containerd volume sized for serving images."""

    name: str = Field(pattern=DNS_LABEL)
    replicas: int = Field(ge=0, le=500)
    vmClass: str = Field(pattern=OBJECT_NAME, max_length=253)
    storageClass: str | None = Field(default=None, pattern=OBJECT_NAME, max_length=253)
    gpu: bool = False
    containerdVolume: Quantity | None = None
    kubeletVolume: Quantity | None = None
    labels: dict[str, str] = {}
    taints: list[Taint] = []

    @property
    def containerd_volume(self) -> str:
        """The containerd volume: given, else 200Gi on a GPU pool (serving images run to tens of GiB), 50Gi."""
        return self.containerdVolume or ("200Gi" if self.gpu else "50Gi")

    @property
    def kubelet_volume(self) -> str:
        """The kubelet volume (emptyDirs, logs): given, else 50Gi on a GPU pool, 25Gi."""
        return self.kubeletVolume or ("50Gi" if self.gpu else "25Gi")

    @property
    def node_taints(self) -> list[Taint]:
        """The pool's taints; a GPU pool's include nvidia.com/gpu:NoSchedule."""
        if self.gpu and not any(t.key == GPU_TAINT for t in self.taints):
            return [*self.taints, Taint(key=GPU_TAINT, value="present", effect="NoSchedule")]
        return list(self.taints)


class ControlPlane(Strict):
    replicas: Literal[1, 3] = 3
    vmClass: str = Field(pattern=OBJECT_NAME, max_length=253)


class Supervisor(Strict):
    """A VKS workload cluster the program creates on the Supervisor (a Cluster API `Cluster` in a vSphere
    namespace) before it installs the platform on it; the Supervisor's kubeconfig is the secret
    pai:supervisorKubeconfig."""

    namespace: str = Field(pattern=DNS_LABEL)
    cluster: str = Field(pattern=DNS_LABEL)
    release: str
    clusterClass: str
    clusterClassNamespace: str = Field(default="vmware-system-vks-public", pattern=DNS_LABEL)
    apiVersion: Literal["v1beta2", "v1beta1"] = "v1beta2"
    storageClass: str = Field(pattern=OBJECT_NAME, max_length=253)
    controlPlane: ControlPlane
    nodePools: list[NodePool] = Field(min_length=1)
    podCidrs: list[str] = ["192.168.156.0/20"]
    serviceCidrs: list[str] = ["10.96.0.0/12"]
    serviceDomain: str = Field(default="cluster.local", pattern=HOSTNAME)
    variables: dict[str, object] = {}

    @field_validator("release")
    @classmethod
    def _release(cls, value: str) -> str:
        if not VKS_RELEASE.match(value):
            raise ValueError(f"{shown(value)} is not a VKS release name like v1.33.3---vmware.1-fips-vkr.1")
        return value

    @field_validator("clusterClass")
    @classmethod
    def _grouped(cls, value: str) -> str:
        found = CLUSTER_CLASS.match(value)
        if found is None and value != "tanzukubernetescluster":
            raise ValueError(f"{shown(value)} is not a ClusterClass like builtin-generic-v3.4.0")
        if found is None or (int(found["major"]), int(found["minor"])) < (3, 2):
            raise ValueError(f"{shown(value)} takes the ungrouped topology variables; the platform writes the "
                             "grouped variables of builtin-generic-v3.2.0 and later")
        return value

    @field_validator("podCidrs", "serviceCidrs")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        if not values:
            raise ValueError("at least one CIDR is required")
        return _cidr_list(values)

    @field_validator("variables")
    @classmethod
    def _variables(cls, values: dict[str, object]) -> dict[str, object]:
        for name in values:
            if name in UNGROUPED_VARIABLES:
                raise ValueError(f"{shown(name)} is an ungrouped variable of tanzukubernetescluster and "
                                 "builtin-generic-v3.1.0, refused by the grouped classes; use one of "
                                 f"{', '.join(GROUPED_VARIABLES)}")
            if name in WRITTEN_VARIABLES:
                raise ValueError(f"{shown(name)} is written by the platform from pai:supervisor (vmClass, "
                                 "storageClass, nodePools); set it there")
            if name not in GROUPED_VARIABLES:
                raise ValueError(f"{shown(name)} is not one of {', '.join(GROUPED_VARIABLES)}")
        return values

    @field_validator("nodePools")
    @classmethod
    def _pools(cls, pools: list[NodePool]) -> list[NodePool]:
        names = [pool.name for pool in pools]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"node pool names repeat: {', '.join(duplicated)}")
        return pools

    @property
    def kubernetes_minor(self) -> str:
        """The Kubernetes minor version of the release, like 1.33."""
        minor = release_minor(self.release)
        assert minor is not None  # validated
        return minor

    @property
    def gpu_pools(self) -> list[NodePool]:
        return [pool for pool in self.nodePools if pool.gpu]


@dataclass(frozen=True)
class Secrets:
    """Secret config values, kept as Pulumi secret Outputs; None where the stack does not set one."""

    harborAdminPassword: pulumi.Output[str] | None = None
    nlsClientToken: pulumi.Output[str] | None = None
    grafanaAdminPassword: pulumi.Output[str] | None = None
    mlflowDbPassword: pulumi.Output[str] | None = None
    s3AccessKeyId: pulumi.Output[str] | None = None
    s3SecretAccessKey: pulumi.Output[str] | None = None
    mlflowAdminPassword: pulumi.Output[str] | None = None
    kubeconfig: pulumi.Output[str] | None = None
    mirrorPullUsername: pulumi.Output[str] | None = None
    mirrorPullPassword: pulumi.Output[str] | None = None
    supervisorKubeconfig: pulumi.Output[str] | None = None


class PlatformConfig(Strict):
    """The whole `pai:` namespace of a stack."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    cluster: Cluster
    gpu: Gpu | None = None
    registry: Registry = Registry()
    s3: S3 | None = None
    runtimes: Runtimes = Runtimes()
    models: list[Model] = []
    tenants: list[Tenant] = []
    kueue: Kueue | None = None
    monitoring: Monitoring | None = None


    harbor: HarborConfig | None = None
    gallery: Gallery = Gallery()
    mlflow: MlflowConfig | None = None
    supervisor: Supervisor | None = None
    validation: Validation = Validation()
    secrets: Secrets = Field(default_factory=Secrets, exclude=True)

    @property
    def gpu_nodes(self) -> Gpu | None:
        """pai:gpu as what runs on GPU nodes sees it: its tolerations (the GPU nodes' taints) with those of the
        Supervisor's GPU pools, which the platform writes itself (nvidia.com/gpu:NoSchedule and the pools' own)."""
        if self.gpu is None or self.supervisor is None:
            return self.gpu
        tolerations = list(self.gpu.tolerations)
        for pool in self.supervisor.gpu_pools:
            tolerations += [t.toleration for t in pool.node_taints if t.toleration not in tolerations]
        return self.gpu.model_copy(update={"tolerations": tolerations})

    @classmethod
    def from_pulumi(cls) -> PlatformConfig:
        """Parse the running stack's `pai:` config; raises ConfigError naming every problem."""
        from components.config.stack import from_pulumi  # reading a stack uses every part of the package

        return from_pulumi(cls)


def rule_engine(model: Model) -> str:
    """The engine rule: embeddings on Infinity, completion on GPU on vLLM, CPU completion on llama.cpp."""
    if model.type == "embedding":
        return "infinity"
    return "vllm" if model.gpus > 0 else "llamacpp"


def _one_of(value: str, allowed: list[str]) -> str:
    if value not in allowed:
        raise ValueError(f"{shown(value)} is not one of {', '.join(allowed)}")
    return value


def release_minor(release: str) -> str | None:
    """The Kubernetes minor of a VKS release name (v1.33.3---vmware.1-fips-vkr.1 is 1.33); None for another name."""
    found = VKS_RELEASE.match(release)
    return f"1.{found['minor']}" if found else None


def _cidr_list(values: list[str]) -> list[str]:
    for value in values:
        try:
            ipaddress.ip_network(value)
        except ValueError:
            raise ValueError(f"{shown(value)} is not a CIDR like 10.0.0.0/16") from None
    return values


def _driver(value: str | None) -> str | None:
    if value is not None and not DRIVER_VERSION.match(value):
        raise ValueError(f"{shown(value)} is not a driver version like 580.95.05")
    return value


def _bucket(value: float, buckets: tuple[float, ...], histogram: str) -> float:
    if value not in buckets:
        raise ValueError(f"{shown(value)} is not a bucket bound of {histogram} "
                         f"({', '.join(f'{b:g}' for b in buckets)})")
    return value


def _image_ref(given: str, tag_required: bool) -> str:
    """The reference normalized as the container tools do (Docker Hub short names get `docker.io/`, `library/`)."""
    value = normalized(given)
    if not IMAGE_REF.match(value):
        raise ValueError(f"{shown(given)} is not an image reference like registry.example.com/path/name:tag")
    name = value.split("@")[0].rsplit("/", 1)[-1]
    if name.partition(":")[2] == "latest":
        raise ValueError(f"{shown(given)} uses the tag 'latest': pin a version")
    if tag_required and ":" not in name and "@" not in value:
        raise ValueError(f"{shown(given)} has no tag or digest: pin a version")
    return value
