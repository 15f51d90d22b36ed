"""ModelEndpoints: one KServe InferenceService per configured model, in its tenant's namespace.

Each endpoint is named after the model; its predictor Service is `<model>-predictor.<tenant>.svc.cluster.local`
(port 80 -> namespaces.SERVING_PORT). The engine comes from the engine rule (`Model.resolved_engine`); the
routing name clients ask for is the served model name the engine reports, and is carried as an annotation for
the gateway. Weights come from the gallery (oci://, mounted from a modelcar), S3 (s3://, with the store's keys in a
Secret the storage initializer reads through a ServiceAccount) or a PersistentVolumeClaim (pvc://).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import namespaces
from components.config import S3, Model
from components.kserve import DEPLOYMENT_MODE
from components.kube import meta
from components.serving_runtimes import RUNTIMES, runtime_key

API_VERSION = "serving.kserve.io/v1beta1"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"  # set on each GPU node by GPU Feature Discovery
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
POD_SECURITY_CONTEXT = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
S3_SECRET = "pai-s3"
S3_SERVICE_ACCOUNT = "pai-s3-reader"
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
class ModelEndpointsArgs:
    models: list[Model]
    tenant_namespaces: dict[str, pulumi.Output[str]]  # from Tenancy
    runtime_names: dict[str, pulumi.Output[str]]  # from ServingRuntimes, by RUNTIMES key
    s3: S3Access | None = None
    depends_on: list[pulumi.Resource] = field(default_factory=list)  # the KServe release (CRDs, webhooks)


class ModelEndpoints(pulumi.ComponentResource):
    """The InferenceServices, and per tenant that reads from S3 its storage Secret and ServiceAccount."""

    def __init__(self, name: str, args: ModelEndpointsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pai:serving:ModelEndpoints", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s3_accounts: dict[str, pulumi.Output[str]] = {}
        for tenant in sorted({m.tenant for m in args.models if m.source.startswith("s3://")}):
            if args.s3 is None:
                raise ValueError("s3:// model sources need the S3 store and its keys")
            s3_accounts[tenant] = s3_reader(f"{name}-{tenant}", args.s3, args.tenant_namespaces[tenant], child)
        after = pulumi.ResourceOptions(parent=self, depends_on=args.depends_on)
        for model in args.models:
            runtime = args.runtime_names[runtime_key(model)]  # the runtime's CR comes first (data dependency)
            k8s.apiextensions.CustomResource(
                f"{name}-{model.name}",
                api_version=API_VERSION,
                kind="InferenceService",
                metadata=meta(model.name, args.tenant_namespaces[model.tenant], labels=endpoint_labels(model),
                              annotations=endpoint_annotations(model)),
                spec={"predictor": predictor(model, runtime, s3_accounts.get(model.tenant))},
                opts=after,
            )
        self.register_outputs({})


def endpoint_labels(model: Model) -> dict[str, str]:
    """On the InferenceService and its pods: the engine, the model and the tenant's Kueue queue."""
    return {namespaces.ENGINE_LABEL: model.resolved_engine, namespaces.MODEL_LABEL: model.name,
            namespaces.QUEUE_LABEL: namespaces.TENANT_QUEUE}


def endpoint_annotations(model: Model) -> dict[str, str]:
    """The routing name; Standard mode; and a fixed replica count (`replicas`), with no autoscaler."""
    return {namespaces.ROUTING_NAME_ANNOTATION: model.routingName, "serving.kserve.io/deploymentMode": DEPLOYMENT_MODE,
            "serving.kserve.io/autoscalerClass": "none"}


def predictor(model: Model, runtime: pulumi.Input[str], service_account: pulumi.Input[str] | None) -> dict[str, Any]:
    """The predictor: the model on our runtime, its replicas, GPUs and node selection."""
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
        spec["tolerations"] = [GPU_TOLERATION]
    if model.product:
        spec["nodeSelector"] = {GPU_PRODUCT_LABEL: model.product}
    if service_account is not None:
        spec["serviceAccountName"] = service_account
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


def s3_reader(name: str, s3: S3Access, namespace: pulumi.Output[str],
              opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
    """The storage Secret (keys as Pulumi secrets, the store in KServe's annotations) and the ServiceAccount that
    lists it, which the storage initializer of every S3-backed endpoint in the namespace reads; returns the
    ServiceAccount's name."""
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
    account = k8s.core.v1.ServiceAccount(
        f"{name}-s3-service-account",
        metadata=meta(S3_SERVICE_ACCOUNT, namespace),
        secrets=[{"name": secret.metadata["name"]}],
        opts=opts,
    )
    return account.metadata["name"]
