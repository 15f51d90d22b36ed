"""Stack configuration: the `pai:` keys of a stack, parsed once into typed models.

Every other module receives these objects, never raw dicts. A bad config raises `ConfigError`, whose
message names the stack file, the key path and what is allowed; the program stops before it registers
anything.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import types
import typing
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from components.catalog import CATALOG
from components.images import normalized
from components.stackfile import shown

NAMESPACE = "pai"
# Config namespaces a stack file may use besides pai: the providers the program runs (a key in any other namespace
# would be ignored, so a misspelled `pia:mlflow` is refused rather than dropped).
OTHER_NAMESPACES = ("kubernetes", "harbor", "pulumi")
STACK_FILE_ENV = "PAI_STACK_FILE"

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
        for value in values:
            try:
                ipaddress.ip_network(value)
            except ValueError:
                raise ValueError(f"{shown(value)} is not a CIDR like 10.0.0.0/16") from None
        return values


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
    validation: Validation = Validation()
    secrets: Secrets = Field(default_factory=Secrets, exclude=True)

    @classmethod
    def from_pulumi(cls) -> PlatformConfig:
        """Parse the running stack's `pai:` config; raises ConfigError naming every problem."""
        raw = _raw_config()
        source = stack_file()
        plain = {k: _decode(v) for k, v in raw.items() if k not in SECRET_KEYS}
        errors = _namespace_errors()
        errors += [f"pai:{k}: must be a secret: set it with `pulumi config set --secret {k} ...`"
                  for k in SECRET_KEYS if k in raw and not runtime_config.is_config_secret(f"{NAMESPACE}:{k}")]
        errors += [f"pai:{k}: unknown key; allowed: {', '.join(_top_level_keys())}"
                   for k in sorted(plain) if k not in cls.model_fields or k == "secrets"]
        parsed: PlatformConfig | None = None
        if not errors:
            try:
                parsed = cls.model_validate(plain)
            except ValidationError as exc:
                errors = [_describe(e) for e in exc.errors()]
        if parsed is not None:
            parsed, errors = resolve_registered(parsed)
            errors += consistency_errors(parsed, set(raw))
        if errors:
            raise ConfigError("\n".join(f"{source}: {e}" for e in errors))
        assert parsed is not None
        cfg = pulumi.Config(NAMESPACE)
        secrets = Secrets(**{k: cfg.require_secret(k) for k in SECRET_KEYS if k in raw})
        return parsed.model_copy(update={"secrets": secrets})


# (registered model, alias) -> the gallery reference by digest its version names (oci://HOST/PATH@sha256:...);
# raises LookupError saying why not. Installed by what can reach MLflow (paictl, the stack's entry point).
ModelResolver = Callable[[str, str], str]
_RESOLVER: list[ModelResolver] = []


def set_model_resolver(resolver: ModelResolver | None) -> None:
    """Resolve `mlflow://` model sources with `resolver` from now on (None: refuse them)."""
    _RESOLVER[:] = [resolver] if resolver else []


def resolve_registered(cfg: PlatformConfig) -> tuple[PlatformConfig, list[str]]:
    """The config with every `mlflow://NAME@ALIAS` source replaced by the gallery digest the alias names now."""
    models, errors = [], []
    for i, model in enumerate(cfg.models):
        found = MLFLOW_SOURCE.match(model.source)
        if not found:
            models.append(model)
            continue
        try:
            if not _RESOLVER:
                raise LookupError("no MLflow to resolve it from (run through paictl, or set MLFLOW_TRACKING_URI)")
            digest = _RESOLVER[0](found["name"], found["alias"])
            if not OCI_DIGEST_SOURCE.match(digest):
                raise LookupError(f"its model version's source {digest!r} is not a gallery reference by digest")
        except LookupError as exc:
            errors.append(f"pai:models[{i}].source: {model.source}: {exc}")
            models.append(model)
            continue
        resolved = model.model_copy(update={"source": digest})
        resolved._registered = model.source
        models.append(resolved)
    return cfg.model_copy(update={"models": models}), errors


def stack_file() -> str:
    """The file the config came from, for messages: set by paictl, else the stack's file under stacks/."""
    return os.environ.get(STACK_FILE_ENV) or f"stacks/Pulumi.{pulumi.get_stack()}.yaml"


def rule_engine(model: Model) -> str:
    """The engine rule: embeddings on Infinity, completion on GPU on vLLM, CPU completion on llama.cpp."""
    if model.type == "embedding":
        return "infinity"
    return "vllm" if model.gpus > 0 else "llamacpp"


def consistency_errors(cfg: PlatformConfig, set_keys: set[str]) -> list[str]:
    """Rules that span keys: unique names, references, the engine rule, required secrets."""
    errors: list[str] = []
    for field, values in (
        ("name", [m.name for m in cfg.models]),
        ("routingName", [m.routingName for m in cfg.models]),
    ):
        seen = Counter(values)
        errors += [f"pai:models[{i}].{field}: {v!r} is used by more than one model"
                   for i, v in enumerate(values) if seen[v] > 1 and values.index(v) != i]
    errors += _routing_errors(cfg.models)
    tenant_names = [t.name for t in cfg.tenants]
    errors += [f"pai:tenants[{i}].name: {n!r} is used by more than one tenant"
               for i, n in enumerate(tenant_names) if tenant_names.index(n) != i]
    products = cfg.gpu.products if cfg.gpu else []
    for i, tenant in enumerate(cfg.tenants):
        errors += [f"pai:tenants[{i}].quota.gpus.{p}: {p!r} is not a GPU product in pai:gpu.products "
                   f"({', '.join(products) or 'none configured'})"
                   for p in tenant.quota.gpus if p not in products]
    for i, model in enumerate(cfg.models):
        errors += _model_errors(f"pai:models[{i}]", model, cfg, tenant_names)
    if not [e for e in errors if ".tenant:" in e or ".quota.gpus." in e or ".gpus:" in e]:
        errors += _quota_errors(cfg)
    errors += _s3_errors(cfg, set_keys)
    if cfg.gpu:
        errors += _driver_errors(cfg.gpu.driver, set_keys)
    if cfg.monitoring is not None and "grafanaAdminPassword" not in set_keys:
        errors.append(_needs_secret("grafanaAdminPassword", "pai:monitoring needs the Grafana admin password"))
    errors += _vks_errors(cfg)
    errors += _harbor_errors(cfg, set_keys) + _mlflow_errors(cfg, set_keys) + _mirror_pull_errors(cfg, set_keys)
    if not [e for e in errors if e.startswith("pai:harbor.host")]:  # harbor_host needs a host or a domain
        errors += _gateway_host_errors(cfg) + _bootstrap_errors(cfg)
    return errors


def _quota_errors(cfg: PlatformConfig) -> list[str]:
    """Endpoints that cannot fit their tenant's GPU quota. With Kueue a replica's pod is admitted on one flavour
    (product) of its tenant's ClusterQueue: at most the quota of that product over the whole cohort (its own plus
    what it may borrow). Without Kueue the namespace's ResourceQuota caps all the tenant's GPU requests together."""
    if cfg.gpu is None:
        return []
    errors = []
    index = {t.name: i for i, t in enumerate(cfg.tenants)}
    if cfg.kueue is not None:
        cohort = {p: sum(t.quota.gpus.get(p, 0) for t in cfg.tenants) for p in cfg.gpu.products}
        for i, model in enumerate(cfg.models):
            usable = {p: n for p, n in cohort.items() if model.product in (None, p)}
            most = max(usable.values(), default=0)
            if model.gpus > most:
                product = max(usable, key=lambda p: usable[p])
                errors.append(f"pai:models[{i}].gpus: model {model.name!r} asks for {model.gpus} GPUs per replica; "
                              f"Kueue admits at most {most} {product} in cohort {cfg.kueue.cohort!r} (the sum of every "
                              f"tenant's pai:tenants[].quota.gpus.{product}): raise a quota or lower gpus")
        return errors
    for tenant in cfg.tenants:
        asked = [(m.name, m.gpus, m.replicas) for m in cfg.models if m.tenant == tenant.name and m.gpus]
        total, cap = sum(g * r for _, g, r in asked), sum(tenant.quota.gpus.values())
        if total > cap:
            parts = ", ".join(f"{name} {g} x {r}" for name, g, r in asked)
            errors.append(f"pai:tenants[{index[tenant.name]}].quota.gpus: tenant {tenant.name!r} may request {cap} "
                          f"GPUs (its ResourceQuota) but its endpoints ask for {total} ({parts}, GPUs x replicas): "
                          "raise the quota or lower gpus or replicas")
    return errors


def _vks_errors(cfg: PlatformConfig) -> list[str]:
    """What a VKS cluster needs that a generic one may not: a storage class for volumes, Ubuntu GPU nodes."""
    if cfg.cluster.target != "vks":
        return []
    errors = []
    stateful = [key for key, part in (("pai:harbor", cfg.harbor), ("pai:mlflow", cfg.mlflow),
                                      ("pai:monitoring", cfg.monitoring)) if part is not None]
    if stateful and cfg.cluster.storageClass is None:
        errors.append(f"pai:cluster.storageClass: target vks with volumes ({', '.join(stateful)}): name the vSphere "
                      "storage class they go on (kubectl get storageclass); a VKS cluster has a default only when its "
                      "Cluster sets vsphereOptions.persistentVolumes.defaultStorageClass")
    if cfg.gpu is not None and not cfg.gpu.driver.os.startswith("ubuntu"):
        errors.append(f"pai:gpu.driver.os: target vks: {cfg.gpu.driver.os!r} is not a VKS node image; VKS GPU nodes "
                      "run the Ubuntu node image (ubuntu20.04, ubuntu22.04, ubuntu24.04)")
    return errors


def _needs_secret(key: str, why: str) -> str:
    """A required secret that is not set: why it is needed, and how to set it."""
    return f"pai:{key}: {why} (`pulumi config set --secret {key} ...`)"


def _s3_errors(cfg: PlatformConfig, set_keys: set[str]) -> list[str]:
    """A model read from S3 needs the store's endpoint and both keys, as secrets."""
    readers = [m for m in cfg.models if m.source.startswith("s3://")]
    if not readers:
        return []
    first = f"model {readers[0].name!r} reads {readers[0].source}"
    errors = [] if cfg.s3 else [f"pai:s3: {first}: set pai:s3.endpoint (and region, useHttps, verifySsl as needed)"]
    errors += [f"pai:{key}: {first}: set it with `pulumi config set --secret {key} ...`"
               for key in ("s3AccessKeyId", "s3SecretAccessKey") if key not in set_keys]
    return errors


MIRROR_PULL_KEYS = ("mirrorPullUsername", "mirrorPullPassword")


def _mirror_pull_errors(cfg: PlatformConfig, set_keys: set[str]) -> list[str]:
    """The mirror account comes as a pair, and only with the mirror and the name of the Secret made from it."""
    given = [k for k in MIRROR_PULL_KEYS if k in set_keys]
    if not given:
        return []
    both = "pai:mirrorPullUsername and pai:mirrorPullPassword"
    errors = [_needs_secret(k, f"set together with pai:{given[0]}: the mirror's pull Secret needs both")
              for k in MIRROR_PULL_KEYS if k not in set_keys]
    if not cfg.registry.mirror:
        errors.append(f"pai:registry.mirror: {both} are an account on the air-gap mirror: set the mirror "
                      "(host/prefix) too")
    if not cfg.registry.pullSecret:
        errors.append(f"pai:registry.pullSecret: {both} make the platform create the mirror's pull Secret: "
                      "set its name too (e.g. mirror-pull)")
    return errors


def _routing_errors(models: list[Model]) -> list[str]:
    """The gateway names one rule per routing name by its route key."""
    errors = []
    first: dict[str, Model] = {}
    for i, model in enumerate(models):
        other = first.setdefault(model.route_key, model)
        if other is not model and other.routingName != model.routingName:
            errors.append(f"pai:models[{i}].routingName: {model.routingName!r} and {other.routingName!r} give the "
                          f"same gateway rule name {model.route_key!r}; rename one")
    return errors


def _harbor_errors(cfg: PlatformConfig, set_keys: set[str]) -> list[str]:
    if cfg.harbor is None:
        return []
    errors = []
    if "harborAdminPassword" not in set_keys:
        errors.append(_needs_secret("harborAdminPassword", "Harbor needs its admin password"))
    if cfg.harbor.host is None and cfg.cluster.ingress.domain is None:
        errors.append("pai:harbor.host: required when pai:cluster.ingress.domain is not set")
    gallery = cfg.gallery
    names = [("dev.name", gallery.dev.name), ("prod.name", gallery.prod.name), ("charts", gallery.charts),
             ("mirror", harbor_mirror_project(cfg))]
    seen = [n for _, n in names]
    errors += [f"pai:gallery.{key}: {name!r} is used by more than one gallery project"
               for i, (key, name) in enumerate(names) if seen.index(name) != i]
    prefix = f"oci://{harbor_host(cfg)}/"
    projects = [gallery.dev.name, gallery.prod.name]
    for i, model in enumerate(cfg.models):
        project = model.source.removeprefix(prefix).split("/", 1)[0]
        if model.source.startswith(prefix) and project not in projects:
            errors.append(f"pai:models[{i}].source: {project!r} is not a gallery project on this Harbor "
                          f"({', '.join(projects)})")
    return errors


def _mlflow_errors(cfg: PlatformConfig, set_keys: set[str]) -> list[str]:
    if cfg.mlflow is None:
        return []
    needed = ["mlflowDbPassword", "mlflowAdminPassword", "s3AccessKeyId", "s3SecretAccessKey"]
    errors = [_needs_secret(k, "MLflow needs it") for k in needed if k not in set_keys]
    if cfg.registry.mirror:
        if cfg.mlflow.database.host is None:
            errors.append("pai:mlflow.database.host: air-gap mode needs an external PostgreSQL (the chart's bundled "
                          "PostgreSQL image is not in the catalog)")
        if cfg.mlflow.artifacts.endpoint is None:
            errors.append("pai:mlflow.artifacts.endpoint: air-gap mode needs an existing S3 endpoint (the chart's "
                          "bundled MinIO image is not in the catalog)")
    return errors


def harbor_host(cfg: PlatformConfig) -> str:
    """Harbor's DNS name: pai:harbor.host, else harbor.<ingress domain>."""
    assert cfg.harbor is not None
    return cfg.harbor.host or f"harbor.{cfg.cluster.ingress.domain}"


def mlflow_host(mlflow: MlflowConfig, cluster: Cluster) -> str | None:
    """MLflow's Gateway hostname: pai:mlflow.host, else mlflow.<ingress domain>; None keeps MLflow in-cluster only."""
    return mlflow.host or (f"mlflow.{cluster.ingress.domain}" if cluster.ingress.domain else None)


def gateway_hosts(cfg: PlatformConfig) -> dict[str, str]:
    """Each hostname the platform Gateway listens on, by the config key it comes from."""
    hosts = {}
    if cfg.models and cfg.cluster.ingress.domain:
        hosts["pai:cluster.ingress.domain"] = cfg.cluster.ingress.domain
    if cfg.harbor is not None and cfg.harbor.expose == "gateway":
        hosts["pai:harbor.host"] = harbor_host(cfg)
    mlflow = mlflow_host(cfg.mlflow, cfg.cluster) if cfg.mlflow is not None else None
    if mlflow:
        hosts["pai:mlflow.host"] = mlflow
    return hosts


def _gateway_host_errors(cfg: PlatformConfig) -> list[str]:
    """Two Gateway listeners on one hostname conflict: each service needs its own."""
    seen: dict[str, str] = {}
    errors = []
    for key, host in gateway_hosts(cfg).items():
        if host in seen:
            errors.append(f"{key}: {host!r} is also {seen[host]}; the Gateway needs a hostname per service")
        seen.setdefault(host, key)
    return errors


def _bootstrap_errors(cfg: PlatformConfig) -> list[str]:
    """A mirror on this stack's own Harbor needs a bootstrap registry outside the stack, and only then."""
    mirror, bootstrap = cfg.registry.mirror, cfg.registry.bootstrap
    own = harbor_host(cfg) if cfg.harbor is not None else None
    on_own = mirror_on_own_harbor(cfg)
    if on_own and not bootstrap:
        return [f"pai:registry.mirror: {mirror} is on this stack's own Harbor, which cannot serve its own images, "
                "nor those of cert-manager and the Gateway in front of it, before it runs: set "
                "pai:registry.bootstrap to a registry outside this stack that holds them"]
    if bootstrap and bootstrap.split("/")[0] == own:
        return [f"pai:registry.bootstrap: {bootstrap} is this stack's own Harbor; it must be a registry outside "
                "this stack"]
    if bootstrap and not on_own:
        where = f"({own})" if own else "(pai:harbor is not set)"
        return [f"pai:registry.bootstrap: only for a pai:registry.mirror on this stack's own Harbor {where}; "
                + (f"{mirror} is not" if mirror else "pai:registry.mirror is not set")]
    return []


def mirror_on_own_harbor(cfg: PlatformConfig) -> bool:
    """The air-gap mirror is a project of the Harbor this stack installs."""
    mirror = cfg.registry.mirror
    return cfg.harbor is not None and mirror is not None and mirror.split("/")[0] == harbor_host(cfg)


def harbor_chain_registry(cfg: PlatformConfig) -> Registry:
    """The registry config of Harbor and what serves it (cert-manager, the Gateway): the bootstrap registry in
    place of a mirror on this stack's own Harbor, else the stack's own."""
    if cfg.registry.bootstrap:
        return cfg.registry.model_copy(update={"mirror": cfg.registry.bootstrap})
    return cfg.registry


def harbor_mirror_project(cfg: PlatformConfig) -> str:
    """The Harbor project the air-gap mirror pushes into: the mirror's first path part when the mirror is on
    this Harbor, else `mirror`."""
    mirror = cfg.registry.mirror
    if mirror_on_own_harbor(cfg) and mirror and "/" in mirror:
        return mirror.split("/")[1]
    return "mirror"


def _model_errors(path: str, model: Model, cfg: PlatformConfig, tenants: list[str]) -> list[str]:
    errors = []
    if model.tenant not in tenants:
        errors.append(f"{path}.tenant: {model.tenant!r} is not one of the tenants in pai:tenants "
                      f"({', '.join(tenants) or 'none configured'})")
    if model.gpus and cfg.gpu is None:
        errors.append(f"{path}.gpus: model {model.name!r} asks for {model.gpus} GPU(s) but pai:gpu is not configured")
    if model.product is not None and model.product not in (cfg.gpu.products if cfg.gpu else []):
        errors.append(f"{path}.product: {model.product!r} is not a GPU product in pai:gpu.products")
    if model.product is not None and not model.gpus:
        errors.append(f"{path}.product: model {model.name!r} names a GPU product but asks for no GPUs")
    expected = rule_engine(model)
    engine = model.resolved_engine
    where = "on GPU" if model.gpus else "on CPU"
    if engine != expected:
        article = "an" if model.type[0] in "aeiou" else "a"
        errors.append(f"{path}.engine: model {model.name!r} is {article} {model.type} model {where}: the engine rule "
                      f"serves it with {expected}, not {engine}")
    elif model.format not in ENGINE_FORMATS[engine]:
        hint = " (a completion model with no GPU needs GGUF weights)" if engine == "llamacpp" else ""
        errors.append(f"{path}.format: model {model.name!r}: {engine} serves "
                      f"{', '.join(ENGINE_FORMATS[engine])}, not {model.format}{hint}")
    return errors


def _driver_errors(driver: Driver, set_keys: set[str]) -> list[str]:
    errors = []
    if driver.mode == "vgpu":
        if driver.image is None:
            errors.append("pai:gpu.driver.image: vgpu mode needs the customer-built vGPU guest driver image "
                          "from the private registry")
        if driver.version is None:
            errors.append("pai:gpu.driver.version: vgpu mode needs the guest driver version")
        if driver.licensing is not None and not driver.licensing.nlsEnabled:
            errors.append("pai:gpu.driver.licensing.nlsEnabled: vGPU 15 and later license only through the NVIDIA "
                          "License System; the legacy license server is not supported (set true or omit)")
        if "nlsClientToken" not in set_keys:
            errors.append(_needs_secret("nlsClientToken", "vgpu mode needs the NLS client configuration token"))
    if driver.image is not None and ("@" in driver.image or ":" in driver.image.rsplit("/", 1)[-1]):
        errors.append(f"pai:gpu.driver.image: {driver.image!r}: give the repository without a tag or digest; "
                      "the GPU Operator pulls <image>:<driver.version>-<node OS>, e.g. :580.95.05-ubuntu22.04")
    if driver.mode != "vgpu":
        if driver.licensing is not None:
            errors.append(f"pai:gpu.driver.licensing: only vgpu mode is licensed, not {driver.mode}")
        if driver.mode == "preinstalled" and driver.image is not None:
            errors.append("pai:gpu.driver.image: preinstalled mode installs no driver image")
    return errors


def _all_config() -> dict[str, Any]:
    """Every key of the running stack, with its namespace."""
    return {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}


def _raw_config() -> dict[str, Any]:
    """Every `pai:` key of the running stack, without the namespace."""
    prefix = f"{NAMESPACE}:"
    return {k[len(prefix):]: v for k, v in _all_config().items() if k.startswith(prefix)}


def _namespace_errors() -> list[str]:
    """Keys in a namespace the program reads nothing from: most likely a misspelled `pai:`."""
    errors = []
    for key in sorted(_all_config()):
        namespace, _, name = key.partition(":")
        if namespace not in (NAMESPACE, *OTHER_NAMESPACES):
            errors.append(f"{shown(key)[1:-1]}: unknown namespace {shown(namespace)}; the platform's keys are "
                          f"pai:<key> (pai:{name}?), provider settings {', '.join(f'{n}:' for n in OTHER_NAMESPACES)}")
    return errors


def _decode(value: Any) -> Any:
    """Pulumi hands object and list values over as JSON text."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _top_level_keys() -> list[str]:
    return [f"pai:{k}" for k in [*PlatformConfig.model_fields, *SECRET_KEYS] if k != "secrets"]


def _one_of(value: str, allowed: list[str]) -> str:
    if value not in allowed:
        raise ValueError(f"{shown(value)} is not one of {', '.join(allowed)}")
    return value


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


def _describe(error: Any) -> str:
    """One line for one pydantic error: key path, offending value, what is allowed."""
    loc = error["loc"]
    path = _path(loc)
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        return f"{path}: unknown key; allowed: {', '.join(allowed)}"
    if kind == "missing":
        return f"{path}: required key is missing"
    if kind in ("literal_error", "enum"):
        expected = error["ctx"]["expected"].replace(" or ", ", ").replace("'", "")
        return f"{path}: {shown(value)} is not one of {expected}"
    if kind == "string_pattern_mismatch":
        pattern = error["ctx"]["pattern"]
        return f"{path}: {shown(value)} is not {PATTERNS.get(pattern, 'of the form ' + pattern)}"
    if kind == "value_error":
        return f"{path}: {error['msg'].removeprefix('Value error, ')}"
    if kind == "string_type" and isinstance(value, int | float) and not isinstance(value, bool):
        return (f"{path}: {shown(value)} is a number in YAML, not a string: quote it in the stack file (unquoted, "
                "YAML reads 1.30 as the number 1.3)")
    if kind in TYPE_NAMES:
        return f"{path}: {shown(value)} is not {TYPE_NAMES[kind]}"
    return f"{path}: {error['msg'].lower()} (got {shown(value)})"


TYPE_NAMES = {
    "int_parsing": "an integer", "int_type": "an integer", "int_from_float": "an integer",
    "bool_parsing": "true or false", "bool_type": "true or false",
    "string_type": "a string", "list_type": "a list", "dict_type": "a mapping", "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _path(loc: tuple[Any, ...]) -> str:
    text = f"{NAMESPACE}:"
    for i, part in enumerate(loc):
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if i else "") + str(part)
    return text


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at `loc` accepts, found by walking the field annotations."""
    annotation: Any = PlatformConfig
    for part in loc:
        annotation = _model_of(annotation)
        if isinstance(part, int):
            annotation = typing.get_args(annotation)[0]
        else:
            annotation = annotation.model_fields[part].annotation
    model = _model_of(annotation)
    return [k for k in model.model_fields if k != "secrets"]


def _model_of(annotation: Any) -> Any:
    """Strip Optional[...] from an annotation."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation
