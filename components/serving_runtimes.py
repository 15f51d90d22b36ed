"""ServingRuntimes: the platform's KServe ClusterServingRuntimes, one per model server: vLLM (completion on GPU),
Infinity (embeddings, a GPU and a CPU build) and the llama.cpp server (completion on CPU, GGUF only).

Every runtime serves the OpenAI API and Prometheus metrics (/metrics) on namespaces.SERVING_PORT, in a container
port named namespaces.SERVING_PORT_NAME, as a non-root user, with health probes and resource defaults. The model
is mounted at /mnt/models (a modelcar for oci://, the storage initializer for s3:// and pvc://); each endpoint
adds the arguments that name it (ModelEndpoints).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import namespaces
from components.config import ENGINE_FORMATS, Model, Registry, Runtimes
from components.kserve import MODEL_UID
from components.kube import meta, resource_name
from components.values import on_mirror

API_VERSION = "serving.kserve.io/v1alpha1"
MODEL_DIR = "/mnt/models"  # where KServe mounts the model
PORT = str(namespaces.SERVING_PORT)
HEALTH_PATH = "/health"  # vLLM, Infinity and llama-server all answer 200 here once the model is loaded
METRICS_PATH = "/metrics"
# Writable caches for a non-root user; no telemetry (air-gapped clusters cannot reach it anyway).
COMMON_ENV = {"HOME": "/tmp", "HF_HOME": "/tmp/hf", "HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1"}
# llama-server takes a file, not a directory: the first GGUF file under the model (split models start there).
LLAMACPP_START = 'exec /app/llama-server --model "$(find {dir} -name "*.gguf" | sort | head -n 1)" "$@"'


@dataclass(frozen=True)
class RuntimeDefinition:
    """One ClusterServingRuntime: which engine it runs, from which image key, how the server is started."""

    name: str
    engine: str
    image: str  # the pai:runtimes key (a field of config.Runtimes)
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    resources: dict[str, dict[str, str]]
    shared_memory: bool = False  # vLLM's worker processes exchange tensors through /dev/shm


def infinity(name: str, image: str, device: str, memory: str) -> RuntimeDefinition:
    """Infinity's OpenAI-style server (/v1/embeddings, /v1/models) on a GPU or CPU build."""
    return RuntimeDefinition(
        name=name, engine="infinity", image=image,
        command=("infinity_emb", "v2"),
        args=("--model-id", MODEL_DIR, "--host", "0.0.0.0", "--port", PORT, "--url-prefix", "/v1",
              "--device", device),
        env=(("INFINITY_ANONYMOUS_USAGE_STATS", "0"),),
        resources={"requests": {"cpu": "2", "memory": memory}, "limits": {"memory": memory}},
    )


RUNTIMES = {
    "vllm": RuntimeDefinition(
        name="pai-vllm", engine="vllm", image="vllm",
        command=("vllm", "serve"),
        args=(MODEL_DIR, "--host", "0.0.0.0", "--port", PORT),
        env=(("VLLM_NO_USAGE_STATS", "1"),),
        resources={"requests": {"cpu": "4", "memory": "32Gi"}, "limits": {"memory": "32Gi"}},
        shared_memory=True,
    ),
    "infinity": infinity("pai-infinity", "infinity", device="cuda", memory="8Gi"),
    "infinityCpu": infinity("pai-infinity-cpu", "infinityCpu", device="cpu", memory="4Gi"),
    "llamacpp": RuntimeDefinition(
        name="pai-llamacpp", engine="llamacpp", image="llamacpp",
        command=("/bin/sh", "-c", LLAMACPP_START.format(dir=MODEL_DIR), "llama-server"),
        args=("--host", "0.0.0.0", "--port", PORT, "--metrics"),
        env=(),
        resources={"requests": {"cpu": "4", "memory": "8Gi"}, "limits": {"memory": "8Gi"}},
    ),
}


def runtime_key(model: Model) -> str:
    """The RUNTIMES key of the runtime that serves a model: its engine's, with Infinity's CPU build for an
    embedding model with no GPU."""
    engine = model.resolved_engine
    return "infinityCpu" if engine == "infinity" and not model.gpus else engine


@dataclass(frozen=True)
class ServingRuntimesArgs:
    runtimes: Runtimes
    registry: Registry
    kserve: pulumi.Resource | None = None  # the KServe release: its CRDs and webhooks come first


class ServingRuntimes(pulumi.ComponentResource):
    """Every ClusterServingRuntime of the platform, whether or not a configured model uses it, so tenants can
    deploy their own endpoints on them."""

    names: dict[str, pulumi.Output[str]]  # by RUNTIMES key

    def __init__(self, name: str, args: ServingRuntimesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pai:serving:ServingRuntimes", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=[args.kserve] if args.kserve else None)
        self.names = {}
        for key, runtime in RUNTIMES.items():
            image = on_mirror(args.runtimes.image(runtime.image), args.registry.mirror)
            resource = k8s.apiextensions.CustomResource(
                f"{name}-{runtime.name}",
                api_version=API_VERSION,
                kind="ClusterServingRuntime",
                metadata=meta(runtime.name, labels={namespaces.ENGINE_LABEL: runtime.engine}),
                spec=runtime_spec(runtime, image, args.registry.pullSecret),
                opts=child,
            )
            self.names[key] = resource_name(resource)
        self.register_outputs({"names": self.names})


def runtime_spec(runtime: RuntimeDefinition, image: str, pull_secret: str | None) -> dict[str, Any]:
    """The ClusterServingRuntime spec: model formats by the engine rule, one server container."""
    spec: dict[str, Any] = {
        # Endpoints name their runtime; none is picked automatically by format alone, since the engine rule
        # also depends on the model's type and GPUs.
        "supportedModelFormats": [{"name": f, "autoSelect": False} for f in ENGINE_FORMATS[runtime.engine]],
        "multiModel": False,
        "labels": {namespaces.ENGINE_LABEL: runtime.engine},
        # KServe's metrics aggregation and Prometheus annotations read these.
        "annotations": {"prometheus.kserve.io/port": PORT, "prometheus.kserve.io/path": METRICS_PATH},
        "containers": [container(runtime, image)],
    }
    if runtime.shared_memory:
        spec["volumes"] = [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}}]
    if pull_secret:
        spec["imagePullSecrets"] = [{"name": pull_secret}]
    return spec


def container(runtime: RuntimeDefinition, image: str) -> dict[str, Any]:
    env = {**COMMON_ENV, **dict(runtime.env)}
    spec: dict[str, Any] = {
        "name": "kserve-container",
        "image": image,
        "command": list(runtime.command),
        "args": list(runtime.args),
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "ports": [{"name": namespaces.SERVING_PORT_NAME, "containerPort": namespaces.SERVING_PORT,
                   "protocol": "TCP"}],
        "resources": runtime.resources,
        # Loading a large model takes minutes: the startup probe allows 30, then liveness takes over.
        "startupProbe": probe(period=10, failures=180),
        "readinessProbe": probe(period=10, failures=3),
        "livenessProbe": probe(period=30, failures=5),
        "securityContext": SECURITY_CONTEXT,
    }
    if runtime.shared_memory:
        spec["volumeMounts"] = [{"name": "dshm", "mountPath": "/dev/shm"}]
    return spec


def probe(period: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": HEALTH_PATH, "port": namespaces.SERVING_PORT}, "periodSeconds": period,
            "timeoutSeconds": 5, "failureThreshold": failures}


SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    # The server images run as root by default; the runtimes run them as the modelcar's UID, never root.
    "runAsUser": MODEL_UID,
    "runAsGroup": MODEL_UID,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
