"""ModelEndpoints: one KServe InferenceService per configured model, in its tenant's namespace.

Each endpoint is named after the model; its predictor Service is `<model>-predictor.<tenant>.svc.cluster.local`
(port 80 -> namespaces.SERVING_PORT). The engine comes from the engine rule (`Model.resolved_engine`); the
routing name clients ask for is the served model name the engine reports, and is carried as an annotation for
the gateway. Weights come from the gallery (oci://, mounted from a modelcar), S3 (s3://, with the store's keys in a
Secret the storage initializer reads through a ServiceAccount) or a PersistentVolumeClaim (pvc://). An
`mlflow://NAME@ALIAS` source arrives resolved to the gallery digest the alias names (config.resolve_registered),
and the endpoint carries the alias in an annotation.

A model on this stack's Harbor is pulled by the kubelet (the modelcar is a container image) with the gallery's
pull robot: a dockerconfigjson Secret in the tenant's namespace, named in the predictor's own `imagePullSecrets`.
KServe merges those with the runtime's (the air-gap mirror's pull secret), and a ServiceAccount's imagePullSecrets
reach only pods that list none, so the ServiceAccount's copy alone would be lost in air-gap mode. Where the platform
creates the mirror's pull Secret (given the mirror account), each tenant with endpoints gets one, and the predictor
names it too, so the endpoint waits for it; KServe merges the two lists by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import namespaces
from components.config import S3, Model, Registry, Toleration
from components.kserve import DEPLOYMENT_MODE
from components.kube import GPU_TOLERATION, RegistryLogin, meta, pull_secret, tolerations
from components.serving_runtimes import RUNTIMES, runtime_key

API_VERSION = "serving.kserve.io/v1beta1"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"  # set on each GPU node by GPU Feature Discovery
POD_SECURITY_CONTEXT = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
S3_SECRET = "pai-s3"
GALLERY_PULL_SECRET = "pai-gallery-pull"
# On an endpoint whose source was `mlflow://NAME@ALIAS`: that source, beside the gallery digest it resolved to.
REGISTERED_MODEL_ANNOTATION = "pai.io/registered-model"
MODEL_SERVICE_ACCOUNT = "pai-model-reader"  # one per tenant that reads S3 or this Harbor
# The Secret keys kserve-resources' storage initializer reads (kserve.storage.s3.*Name in its values).
S3_ACCESS_KEY = "AWS_ACCESS_KEY_ID"
S3_SECRET_KEY = "AWS_SECRET_ACCESS_KEY"


@dataclass(frozen=True)
class S3Access:
    """The S3 store and its keys (Pulumi secrets)."""

    store: S3
    access_key_id: pulumi.Output[str]
    secret_access_key: pulumi.Output[str]


@dataclass(frozen=True)
class GalleryPull(RegistryLogin):
    """This stack's Harbor and its pull robot (Harbor.pull_robot_name / pull_robot_secret, a Pulumi secret)."""

    def serves(self, model: Model) -> bool:
        return model.source.startswith(f"oci://{self.host}/")


@dataclass(frozen=True)
class ModelEndpointsArgs:
    models: list[Model]
    tenant_namespaces: dict[str, pulumi.Output[str]]  # from Tenancy
    runtime_names: dict[str, pulumi.Output[str]]  # from ServingRuntimes, by RUNTIMES key
    s3: S3Access | None = None
    gallery: GalleryPull | None = None  # where Harbor is part of the stack
    registry: Registry = field(default_factory=Registry)
    mirror_login: RegistryLogin | None = None  # the air-gap mirror's account, where the platform makes its Secret
    depends_on: list[pulumi.Resource] = field(default_factory=list)  # the KServe release (CRDs, webhooks)
    gpu_tolerations: list[Toleration] = field(default_factory=list)  # the GPU nodes' taints (pai:gpu.tolerations)


@dataclass(frozen=True)
class Reader:
    """A tenant's model ServiceAccount and, where it pulls from the gallery, its pull Secret (names as Outputs)."""

    account: pulumi.Output[str]
    pull_secret: pulumi.Output[str] | None


class ModelEndpoints(pulumi.ComponentResource):
    """The InferenceServices, and per tenant that reads from S3 or this Harbor its Secrets and ServiceAccount."""

    def __init__(self, name: str, args: ModelEndpointsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pai:serving:ModelEndpoints", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        gallery = args.gallery

        def from_gallery(model: Model) -> bool:
            return gallery is not None and gallery.serves(model)

        def from_s3(model: Model) -> bool:
            return model.source.startswith("s3://")

        readers: dict[str, Reader] = {}
        for tenant in sorted({m.tenant for m in args.models if from_s3(m) or from_gallery(m)}):
            own = [m for m in args.models if m.tenant == tenant]
            reads_s3 = any(map(from_s3, own))
            if reads_s3 and args.s3 is None:
                raise ValueError("s3:// model sources need the S3 store and its keys")
            readers[tenant] = model_reader(f"{name}-{tenant}", args.tenant_namespaces[tenant],
                                           args.s3 if reads_s3 else None,
                                           gallery if any(map(from_gallery, own)) else None, child)
        # Where the platform makes the mirror's pull Secret: in each tenant namespace the runtime pods pull in.
        mirror_pulls: dict[str, pulumi.Output[str]] = {}
        login, mirror_secret = args.mirror_login, args.registry.pullSecret
        if login is not None and mirror_secret is not None:
            mirror_pulls = {tenant: pull_secret(f"{name}-{tenant}-mirror-pull-secret", mirror_secret, login,
                                                args.tenant_namespaces[tenant], child)
                            for tenant in sorted({m.tenant for m in args.models})}
        after = pulumi.ResourceOptions(parent=self, depends_on=args.depends_on)
        for model in args.models:
            runtime = args.runtime_names[runtime_key(model)]  # the runtime's CR comes first (data dependency)
            reader = readers.get(model.tenant) if from_s3(model) or from_gallery(model) else None
            account = reader.account if reader else None
            pull_secrets = [reader.pull_secret] if reader and reader.pull_secret and from_gallery(model) else []
            pull_secrets += [mirror_pulls[model.tenant]] if model.tenant in mirror_pulls else []
            k8s.apiextensions.CustomResource(
                f"{name}-{model.name}",
                api_version=API_VERSION,
                kind="InferenceService",
                metadata=meta(model.name, args.tenant_namespaces[model.tenant], labels=endpoint_labels(model),
                              annotations=endpoint_annotations(model)),
                spec={"predictor": predictor(model, runtime, account, pull_secrets, args.gpu_tolerations)},
                opts=after,
            )
        self.register_outputs({})


def endpoint_labels(model: Model) -> dict[str, str]:
    """On the InferenceService and its pods: the engine, the model and the tenant's Kueue queue."""
    return {namespaces.ENGINE_LABEL: model.resolved_engine, namespaces.MODEL_LABEL: model.name,
            namespaces.QUEUE_LABEL: namespaces.TENANT_QUEUE}


def endpoint_annotations(model: Model) -> dict[str, str]:
    """The routing name; Standard mode; a fixed replica count (`replicas`), with no autoscaler; and the MLflow
    alias the source was resolved from, where it was."""
    registered = {REGISTERED_MODEL_ANNOTATION: model.registered_as} if model.registered_as else {}
    return {namespaces.ROUTING_NAME_ANNOTATION: model.routingName, "serving.kserve.io/deploymentMode": DEPLOYMENT_MODE,
            "serving.kserve.io/autoscalerClass": "none", **registered}


def predictor(model: Model, runtime: pulumi.Input[str], service_account: pulumi.Input[str] | None,
              pull_secrets: Sequence[pulumi.Input[str]], gpu_tolerations: Sequence[Toleration]) -> dict[str, Any]:
    """The predictor: the model on our runtime, its replicas, GPUs and node selection, and how it reads its
    weights (the ServiceAccount; the gallery's pull Secret for the modelcar image, the mirror's where the platform
    creates it)."""
    # The runtime's defaults, set here in full: KServe would otherwise default the endpoint's own.
    resources = {bound: dict(values) for bound, values in RUNTIMES[runtime_key(model)].resources.items()}
    spec: dict[str, Any] = {
        "minReplicas": model.replicas,
        "maxReplicas": model.replicas,
        "labels": endpoint_labels(model),
        "annotations": {namespaces.ROUTING_NAME_ANNOTATION: model.routingName},
        # Pod-wide, so the containers KServe adds (modelcar, storage initializer) are non-root and confined too.
        "securityContext": POD_SECURITY_CONTEXT,
        "model": {
            "modelFormat": {"name": model.format},
            "runtime": runtime,
            "storageUri": model.source,
            "args": engine_args(model),
            "resources": resources,
        },
    }
    if model.gpus:
        for bound in ("requests", "limits"):
            resources.setdefault(bound, {})[GPU_RESOURCE] = str(model.gpus)
        spec["tolerations"] = tolerations([GPU_TOLERATION], gpu_tolerations)
    if model.product:
        spec["nodeSelector"] = {GPU_PRODUCT_LABEL: model.product}
    if service_account is not None:
        spec["serviceAccountName"] = service_account
    if pull_secrets:
        spec["imagePullSecrets"] = [{"name": secret} for secret in pull_secrets]
    return spec


def engine_args(model: Model) -> list[str]:
    """Arguments added to the runtime's: the routing name as the served model name, and engine specifics."""
    engine = model.resolved_engine
    if engine == "vllm":
        return ["--served-model-name", model.routingName,
                *(["--tensor-parallel-size", str(model.gpus)] if model.gpus > 1 else [])]
    if engine == "infinity":
        return ["--served-model-name", model.routingName, "--engine", "optimum" if model.format == "onnx" else "torch"]
    return ["--alias", model.routingName]


def model_reader(name: str, namespace: pulumi.Output[str], s3: S3Access | None, gallery: GalleryPull | None,
                 opts: pulumi.ResourceOptions) -> Reader:
    """A tenant's ServiceAccount for its S3 and gallery models: it lists the S3 storage Secret the storage
    initializer reads, and the gallery pull Secret as an imagePullSecret (for the tenant's other pods on it)."""
    secrets = [s3_secret(name, s3, namespace, opts)] if s3 else []
    gallery_secret = (pull_secret(f"{name}-gallery-pull-secret", GALLERY_PULL_SECRET, gallery, namespace, opts)
                      if gallery else None)
    account = k8s.core.v1.ServiceAccount(
        f"{name}-model-service-account",
        metadata=meta(MODEL_SERVICE_ACCOUNT, namespace),
        secrets=[{"name": secret} for secret in secrets] or None,
        image_pull_secrets=[{"name": gallery_secret}] if gallery_secret else None,
        opts=opts,
    )
    return Reader(account=account.metadata["name"], pull_secret=gallery_secret)


def s3_secret(name: str, s3: S3Access, namespace: pulumi.Output[str],
              opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
    """The storage Secret: the keys as Pulumi secrets, the store in KServe's annotations; returns its name."""
    store = s3.store
    annotations = {"serving.kserve.io/s3-endpoint": store.endpoint,
                   "serving.kserve.io/s3-usehttps": "1" if store.useHttps else "0",
                   "serving.kserve.io/s3-verifyssl": "1" if store.verifySsl else "0"}
    if store.region:
        annotations["serving.kserve.io/s3-region"] = store.region
    secret = k8s.core.v1.Secret(
        f"{name}-s3-secret",
        metadata=meta(S3_SECRET, namespace, annotations=annotations),
        type="Opaque",
        string_data={S3_ACCESS_KEY: s3.access_key_id, S3_SECRET_KEY: s3.secret_access_key},
        opts=opts,
    )
    return secret.metadata["name"]
