"""Cluster facts via the `kubernetes` client: GPU nodes (GPU Feature Discovery labels), the Kubernetes version,
the ClusterPolicy, CRD stored versions and the GPU Operator's pods (Helm releases: validation.sources.helm).

Every collection is read as paginated lists (`limit` / `continue`), never one call per node: the number of
API calls grows with nodes / PAGE, not with nodes. Requests go through the client's ApiClient (kubeconfig, auth,
TLS, connection pool) as the generated `list_*` methods build them, and the JSON is read as plain dicts: the
generated API classes and models cost about a second of imports per run, more than the reads themselves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from kubernetes import config
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError

from components.namespaces import GPU_OPERATOR
from validation.facts import (
    ClusterPolicyFacts,
    CrdFacts,
    DriverFacts,
    Facts,
    KubernetesFacts,
    NodeFacts,
    PodFacts,
)

PAGE = 250
GFD = "nvidia.com/"
# GPU Operator operand pods by their `app` label; others keep the label as component.
_COMPONENTS = (("driver", "driver"), ("validator", "validator"), ("toolkit", "toolkit"),
               ("device-plugin", "device-plugin"), ("feature-discovery", "gpu-feature-discovery"),
               ("dcgm", "dcgm-exporter"), ("mig-manager", "mig-manager"))


class ClusterError(Exception):
    """The cluster could not be reached or read (kubeconfig, connection, permissions)."""


def api_client(kubeconfig: Path | None = None, context: str | None = None) -> ApiClient:
    """An ApiClient from a kubeconfig file (default: $KUBECONFIG or ~/.kube/config) and context."""
    try:
        api: ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig) if kubeconfig else None, context=context, persist_config=False)
    except (ConfigException, OSError) as exc:
        raise ClusterError(f"kubeconfig {kubeconfig or '(default)'}: {exc}") from None
    return api


def api_client_from_text(text: str, label: str, context: str | None = None) -> ApiClient:
    """An ApiClient from a kubeconfig held as a secret value (`label` names it in errors: the value, and any part
    of it, never appears in a message)."""
    try:
        loaded = yaml.safe_load(text)
        if not isinstance(loaded, dict):
            raise ConfigException("not a YAML mapping")
        api: ApiClient = config.new_client_from_config_dict(  # type: ignore[no-untyped-call]
            loaded, context=context, persist_config=False)
    except yaml.YAMLError:
        raise ClusterError(f"{label}: not a kubeconfig (not YAML; the value is secret and not shown)") from None
    except (ConfigException, OSError, ValueError, TypeError) as exc:
        raise ClusterError(f"{label}: not a usable kubeconfig: {_redacted(str(exc), text)}") from None
    return api


def _redacted(message: str, secret: str) -> str:
    """The message, or a neutral one if it quotes any word of the secret."""
    words = {w for w in re.split(r"[\s:'\"]+", secret) if len(w) >= 8}
    return "the value is secret and not shown" if any(w in message for w in words) else message


def cluster_facts(api: ApiClient, namespace: str = GPU_OPERATOR) -> Facts:
    """Facts from the cluster behind `api`; `namespace`: where the GPU Operator runs."""
    return _read(api, namespace)[0]


def read_cluster(kubeconfig: Path | None = None, context: str | None = None) -> tuple[Facts, list[str]]:
    """Connect with a kubeconfig and read the facts; also the names of all nodes, GPU or not (a node whose driver
    never loaded has no GFD labels, but its VM is still found in vCenter by name)."""
    with api_client(kubeconfig, context) as api:
        return _read(api, GPU_OPERATOR)


def read_version(kubeconfig: Path | None = None, context: str | None = None) -> str:
    """The cluster's Kubernetes version (`/version`), one call."""
    with api_client(kubeconfig, context) as api, _reading(api):
        return str(_get(api, "/version")["gitVersion"])


@contextmanager
def _reading(api: ApiClient, what: str = "cluster") -> Iterator[None]:
    """API and connection errors as ClusterError naming the cluster (`what`: cluster, Supervisor)."""
    host = api.configuration.host
    try:
        yield
    except ApiException as exc:
        raise ClusterError(f"{what} {host}: {exc.status} {exc.reason}: {_message(exc)}") from None
    except HTTPError as exc:
        raise ClusterError(f"{what} {host}: {exc}") from None


def _read(api: ApiClient, namespace: str) -> tuple[Facts, list[str]]:
    host = api.configuration.host
    with _reading(api):
        version = str(_get(api, "/version")["gitVersion"])
        all_nodes = list(_pages(api, "/api/v1/nodes"))
        nodes = [n for n in map(_node, all_nodes) if n is not None]
        crds = [_crd(c) for c in _pages(api, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")]
        pods = [_pod(p) for p in _pages(api, f"/api/v1/namespaces/{namespace}/pods")]
        policies = _optional(lambda: list(_pages(api, "/apis/nvidia.com/v1/clusterpolicies")))
    return Facts(
        sources={"cluster": host},
        kubernetes=KubernetesFacts(origin="cluster", version=version),
        driver=_driver(policies[0]) if policies else None,
        nodes=nodes, crds=crds, pods=pods,
        cluster_policies=[ClusterPolicyFacts(origin="cluster", name=p["metadata"]["name"],
                                             state=(p.get("status") or {}).get("state")) for p in policies],
    ), [n["metadata"]["name"] for n in all_nodes]


def _get(api: ApiClient, path: str, **query: str | int) -> dict[str, Any]:
    """GET a path as JSON, built and authenticated as the generated API methods do; ApiException on non-2xx."""
    request = api.param_serialize("GET", path, query_params=list(query.items()) or None,
                                  header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
    response = api.call_api(*request)
    data: bytes = response.response.data
    if not 200 <= response.status <= 299:
        raise ApiException.from_response(http_resp=response, body=data.decode(errors="replace"), data=None)
    body: dict[str, Any] = json.loads(data)
    return body


def _pages(api: ApiClient, path: str, **query: str) -> Iterator[dict[str, Any]]:
    """Every item of a collection, PAGE at a time (limit / continue)."""
    token = ""
    while True:
        body = _get(api, path, limit=PAGE, **query, **({"continue": token} if token else {}))
        yield from body.get("items") or []
        token = (body.get("metadata") or {}).get("continue") or ""
        if not token:
            return


def _optional(read: Callable[[], list[dict[str, Any]]], statuses: tuple[int, ...] = (404,)) -> list[dict[str, Any]]:
    """A list of custom resources, empty when their CRD is not installed (404; or any of `statuses`)."""
    try:
        return read()
    except ApiException as exc:
        if exc.status in statuses:
            return []
        raise


def _message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message", ""))
    except (AttributeError, ValueError):
        return str(exc.body or "")[:200]


def _node(node: dict[str, Any]) -> NodeFacts | None:
    """A GPU node from its GFD labels; None for a node GFD has not labelled."""
    labels: dict[str, str] = node["metadata"].get("labels") or {}
    product = labels.get(GFD + "gpu.product")
    if product is None:
        return None

    def joined(*keys: str) -> str | None:
        parts = [labels.get(GFD + k) for k in keys]
        return ".".join(p for p in parts if p is not None) if all(parts) else None

    count = labels.get(GFD + "gpu.count", "")
    return NodeFacts(
        origin="cluster", name=node["metadata"]["name"], products={product: int(count) if count.isdigit() else 1},
        driver_version=labels.get(GFD + "cuda.driver-version.full")
        or joined("cuda.driver-version.major", "cuda.driver-version.minor", "cuda.driver-version.revision")
        or joined("cuda.driver.major", "cuda.driver.minor", "cuda.driver.rev"),
        cuda_driver_version=joined("cuda.runtime-version.major", "cuda.runtime-version.minor")
        or joined("cuda.runtime.major", "cuda.runtime.minor"),
        compute_capability=joined("gpu.compute.major", "gpu.compute.minor"),
        mig_mode=labels.get(GFD + "mig.strategy"),
    )


def _crd(crd: dict[str, Any]) -> CrdFacts:
    versions = crd.get("spec", {}).get("versions") or []
    return CrdFacts(origin="cluster", name=crd["metadata"]["name"],
                    stored_versions=list((crd.get("status") or {}).get("storedVersions") or []),
                    served_versions=[v["name"] for v in versions if v.get("served")])


def _driver(policy: dict[str, Any]) -> DriverFacts:
    """How the ClusterPolicy provides the driver: disabled (preinstalled), vGPU (licensing configured) or not."""
    spec = (policy.get("spec") or {}).get("driver") or {}
    if spec.get("enabled") is False:
        return DriverFacts(origin="cluster", mode="preinstalled")
    licensing = spec.get("licensingConfig") or {}
    vgpu = bool(licensing.get("nlsEnabled") or licensing.get("configMapName") or licensing.get("secretName"))
    image = "/".join(p for p in (spec.get("repository"), spec.get("image")) if p) or None
    return DriverFacts(origin="cluster", mode="vgpu" if vgpu else "datacenter", version=spec.get("version"),
                       image=image)


def _pod(pod: dict[str, Any]) -> PodFacts:
    app = (pod["metadata"].get("labels") or {}).get("app", pod["metadata"]["name"])
    component = next((name for key, name in _COMPONENTS if key in app), app)
    status = pod.get("status") or {}
    containers = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
    waiting = [c["state"]["waiting"].get("reason") for c in containers if (c.get("state") or {}).get("waiting")]
    return PodFacts(
        origin="cluster", name=pod["metadata"]["name"], namespace=pod["metadata"]["namespace"], component=component,
        node=(pod.get("spec") or {}).get("nodeName"), phase=status.get("phase"),
        ready=bool(status.get("containerStatuses")) and all(c.get("ready") for c in status["containerStatuses"]),
        restarts=sum(int(c.get("restartCount") or 0) for c in containers),
        waiting_reason=next((r for r in waiting if r), None),
    )
