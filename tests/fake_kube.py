"""A fake Kubernetes API server for the real `kubernetes` client: recorded-shape objects over HTTP on 127.0.0.1.

It serves GET on collections (`/api/v1/nodes`, `/api/v1/namespaces/<ns>/pods`, `/apis/<group>/<v>/<plural>`)
with `limit`/`continue` pagination and equality `labelSelector`s, single objects by name, and `/version`;
`requests` counts every request by path. The builders below make objects in the shapes a real cluster with the
GPU Operator returns (GFD node labels, Helm release Secrets, ClusterPolicy, CRDs, operand pods).
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

# Built-in collections answer an empty list when nothing was added; any other (a CRD's) answers 404 then.
LIST_KINDS = {"nodes": "NodeList", "secrets": "SecretList", "pods": "PodList", "resourcequotas": "ResourceQuotaList",
              "customresourcedefinitions": "CustomResourceDefinitionList"}


class FakeKube:
    """Objects by collection path; `add` files an object under its collection (and, for namespaced ones, the
    all-namespaces collection too)."""

    def __init__(self, version: str = "v1.33.2") -> None:
        self.version = version
        self.collections: dict[str, list[dict[str, Any]]] = {}
        self.requests: Counter[str] = Counter()
        self.forbidden: set[str] = set()  # paths answered 403, as RBAC does for a reader without the permission
        self.documents: dict[str, dict[str, Any]] = {}  # other paths answered as they are (API discovery)
        self.lock = threading.Lock()

    def add(self, collection: str, obj: dict[str, Any]) -> None:
        self.collections.setdefault(collection, []).append(obj)
        namespace = obj["metadata"].get("namespace")
        if namespace and f"/namespaces/{namespace}/" in collection:
            self.collections.setdefault(collection.replace(f"/namespaces/{namespace}", ""), []).append(obj)

    def calls(self) -> int:
        return sum(self.requests.values())

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests[path] += 1
        if path in self.forbidden:
            return 403, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
                         "message": f'secrets is forbidden: User "reader" cannot list resource at {path}'}
        if path == "/version":
            major, minor = self.version.removeprefix("v").split(".")[:2]
            return 200, {"major": major, "minor": minor, "gitVersion": self.version,
                         "gitCommit": "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", "gitTreeState": "clean",
                         "buildDate": "2025-06-17T18:36:25Z", "goVersion": "go1.24.4", "compiler": "gc",
                         "platform": "linux/amd64"}
        if path in self.documents:
            return 200, self.documents[path]
        if path in self.collections or path.rsplit("/", 1)[-1] in LIST_KINDS:
            return 200, self._page(path, query)
        parent, _, name = path.rpartition("/")
        for obj in self.collections.get(parent, []):
            if obj["metadata"]["name"] == name:
                return 200, obj
        return 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                     "message": f"{path} not found"}

    def _page(self, path: str, query: dict[str, list[str]]) -> dict[str, Any]:
        selector = dict(term.split("=", 1) for term in query.get("labelSelector", [""])[0].split(",") if term)
        items = [o for o in self.collections.get(path, [])
                 if all(o["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())]
        start = int(query.get("continue", ["0"])[0] or 0)
        limit = int(query.get("limit", ["0"])[0] or 0) or len(items)
        page, rest = items[start:start + limit], items[start + limit:]
        meta: dict[str, Any] = {"resourceVersion": "1000"}
        if rest:
            meta.update({"continue": str(start + limit), "remainingItemCount": len(rest)})
        plural = path.rsplit("/", 1)[-1]
        kind = LIST_KINDS.get(plural, "List")
        return {"kind": kind, "apiVersion": "v1", "metadata": meta, "items": page}


@contextmanager
def serving(fake: FakeKube) -> Iterator[str]:
    """Serve `fake` on 127.0.0.1 and a free port; yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            code, body = fake.answer(url.path.rstrip("/") or "/", parse_qs(url.query))
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def kubeconfig(server: str, context: str = "fake") -> dict[str, Any]:
    """A kubeconfig with one context pointing at `server` (token auth)."""
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": context, "cluster": {"server": server}}],
        "users": [{"name": context, "user": {"token": "fake-token"}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
    }


def write_kubeconfig(path: Path, server: str, context: str = "fake") -> Path:
    """`kubeconfig(server, context)` written to `path`."""
    path.write_text(yaml.safe_dump(kubeconfig(server, context)))
    return path


def gfd_node(name: str, product: str | None = "NVIDIA-H100-80GB-HBM3", count: int = 1,
             driver: str = "570.148.08", cuda: str = "12.8", compute: str = "9.0", mig: str = "none") -> dict[str, Any]:
    """A Node as GPU Feature Discovery labels it (no GFD labels when `product` is None: a CPU node)."""
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    if product is not None:
        d_major, d_minor, d_rev = driver.split(".")
        c_major, c_minor = cuda.split(".")
        cc_major, cc_minor = compute.split(".")
        labels |= {
            "nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": product, "nvidia.com/gpu.count": str(count),
            "nvidia.com/cuda.driver-version.major": d_major, "nvidia.com/cuda.driver-version.minor": d_minor,
            "nvidia.com/cuda.driver-version.revision": d_rev, "nvidia.com/cuda.driver-version.full": driver,
            "nvidia.com/cuda.runtime-version.major": c_major, "nvidia.com/cuda.runtime-version.minor": c_minor,
            "nvidia.com/cuda.runtime-version.full": cuda,
            "nvidia.com/gpu.compute.major": cc_major, "nvidia.com/gpu.compute.minor": cc_minor,
            "nvidia.com/mig.strategy": mig, "nvidia.com/gpu.family": "hopper",
        }
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels, "uid": f"uid-{name}", "resourceVersion": "1"},
        "status": {
            "capacity": {"cpu": "32", "memory": "263846320Ki", "nvidia.com/gpu": str(count if product else 0)},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "nodeInfo": {"architecture": "amd64", "bootID": f"boot-{name}", "containerRuntimeVersion": "containerd://2.0.5",
                         "kernelVersion": "6.8.0-60-generic", "kubeProxyVersion": "", "kubeletVersion": "v1.33.2",
                         "machineID": f"machine-{name}", "operatingSystem": "linux", "osImage": "Ubuntu 24.04.2 LTS",
                         "systemUUID": f"uuid-{name}"}},
    }


def helm_release(name: str, namespace: str, chart: str, version: str, revision: int = 1,
                 status: str = "deployed", values: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Helm 3 release Secret as helm writes it (helm itself reads it back): data.release is base64(gzip(release
    JSON)), base64-encoded again by the API; `config` holds the values it was installed with."""
    deployed = f"2026-0{min(revision, 9)}-01T10:00:00.000000000Z"
    release = {"name": name, "namespace": namespace, "version": revision,
               "info": {"status": status, "first_deployed": "2026-01-01T10:00:00.000000000Z",
                        "last_deployed": deployed, "description": "Install complete"},
               "chart": {"metadata": {"apiVersion": "v2", "name": chart, "version": version, "appVersion": version}},
               "config": values or {},
               "manifest": f"---\n# Source: {chart}/templates/NOTES.txt\n"}
    encoded = base64.b64encode(gzip.compress(json.dumps(release).encode()))
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {"name": f"sh.helm.release.v1.{name}.v{revision}", "namespace": namespace,
                     "labels": {"owner": "helm", "name": name, "status": status, "version": str(revision)}},
        "data": {"release": base64.b64encode(encoded).decode()},
    }


def cluster_policy(state: str = "ready", driver: dict[str, Any] | None = None) -> dict[str, Any]:
    """The GPU Operator's ClusterPolicy with a `spec.driver` and `status.state`."""
    spec_driver = driver if driver is not None else {
        "enabled": True, "repository": "nvcr.io/nvidia", "image": "driver", "version": "570.148.08"}
    # The blocks the real CRD requires (the chart renders them all; tests/e2e writes this to a real API server).
    required = ("daemonsets", "dcgm", "dcgmExporter", "devicePlugin", "gfd", "nodeStatusExporter", "operator",
                "toolkit")
    return {"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy", "metadata": {"name": "cluster-policy"},
            "spec": {**{block: {} for block in required}, "driver": spec_driver},
            "status": {"state": state, "namespace": "gpu-operator"}}


def crd(name: str, stored: list[str], served: list[str]) -> dict[str, Any]:
    group = name.split(".", 1)[1]
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": name},
        "spec": {"group": group, "scope": "Cluster",
                 "names": {"plural": name.split(".")[0], "kind": "Kind", "singular": "kind", "listKind": "KindList"},
                 "versions": [{"name": v, "served": True, "storage": v == stored[-1],
                               "schema": {"openAPIV3Schema": {"type": "object"}}} for v in served]},
        "status": {"storedVersions": stored, "acceptedNames": {"plural": name.split(".")[0], "kind": "Kind"}},
    }


def operand_pod(name: str, app: str, node: str, ready: bool = True, restarts: int = 0,
                waiting: str | None = None, namespace: str = "gpu-operator") -> dict[str, Any]:
    """A GPU Operator operand pod (driver daemonset, operator validator, ...) on `node`."""
    running = {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
    state: dict[str, Any] = {"waiting": {"reason": waiting}} if waiting else running
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}},
        "spec": {"nodeName": node, "containers": [{"name": app, "image": f"nvcr.io/nvidia/{app}:v1"}]},
        "status": {"phase": "Running", "containerStatuses": [{
            "name": app, "ready": ready, "restartCount": restarts, "image": f"nvcr.io/nvidia/{app}:v1",
            "imageID": "", "state": state}]},
    }


VM_OPERATOR = "vmoperator.vmware.com"


def serve_vm_operator(fake: FakeKube, versions: tuple[str, ...] = ("v1alpha5", "v1alpha4", "v1alpha3", "v1alpha2"),
                      classes_namespaced: bool = True) -> str:
    """The discovery documents of vm-operator's API group as a Supervisor serves them (newest first); returns the
    newest version. `classes_namespaced` False: VirtualMachineClasses are cluster-scoped (older Supervisors)."""
    group = [{"groupVersion": f"{VM_OPERATOR}/{v}", "version": v} for v in versions]
    fake.documents[f"/apis/{VM_OPERATOR}"] = {"kind": "APIGroup", "apiVersion": "v1", "name": VM_OPERATOR,
                                              "versions": group, "preferredVersion": group[0]}
    for v in versions:
        fake.documents[f"/apis/{VM_OPERATOR}/{v}"] = {"kind": "APIResourceList", "apiVersion": "v1",
                                                      "groupVersion": f"{VM_OPERATOR}/{v}", "resources": [
            {"name": "virtualmachineclasses", "singularName": "virtualmachineclass", "namespaced": classes_namespaced,
             "kind": "VirtualMachineClass", "verbs": ["get", "list", "watch"]},
            {"name": "virtualmachineclassbindings", "singularName": "virtualmachineclassbinding", "namespaced": True,
             "kind": "VirtualMachineClassBinding", "verbs": ["get", "list", "watch"]},
            {"name": "virtualmachineimages", "singularName": "virtualmachineimage", "namespaced": True,
             "kind": "VirtualMachineImage", "verbs": ["get", "list", "watch"]}]}
    return versions[0]


def vm_class(name: str, namespace: str | None, memory: str = "64Gi", profile: str | None = None,
             in_config_spec: bool = False, reservation: str | None = None, version: str = "v1alpha5",
             cpus: int = 8) -> dict[str, Any]:
    """A VirtualMachineClass as vm-operator serves it: a vGPU `profile` in spec.hardware.devices.vgpuDevices, or
    (`in_config_spec`) only inside spec.configSpec's deviceChange, as the vSphere client writes classes with a
    vGPU; `reservation`: spec.policies.resources.requests.memory. namespace None: cluster-scoped (older)."""
    spec: dict[str, Any] = {"hardware": {"cpus": cpus, "memory": memory}, "policies": {"resources": {
        "requests": {"cpu": "0", "memory": reservation or "0"}, "limits": {"cpu": "0", "memory": "0"}}}}
    if profile and in_config_spec:
        spec["configSpec"] = {"_typeName": "VirtualMachineConfigSpec", "numCPUs": cpus, "deviceChange": [{
            "_typeName": "VirtualDeviceConfigSpec", "operation": "add", "device": {
                "_typeName": "VirtualPCIPassthrough", "key": -200,
                "backing": {"_typeName": "VirtualPCIPassthroughVmiopBackingInfo", "vgpu": profile}}}]}
    elif profile:
        spec["hardware"]["devices"] = {"vgpuDevices": [{"profileName": profile}]}
    metadata: dict[str, Any] = {"name": name, "uid": f"uid-{name}", "resourceVersion": "1"}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": f"{VM_OPERATOR}/{version}", "kind": "VirtualMachineClass", "metadata": metadata,
            "spec": spec, "status": {}}


def vm_class_binding(name: str, namespace: str) -> dict[str, Any]:
    """A VirtualMachineClassBinding (vm-operator v1alpha1): the cluster-scoped class `name` usable in `namespace`."""
    return {"apiVersion": f"{VM_OPERATOR}/v1alpha1", "kind": "VirtualMachineClassBinding",
            "metadata": {"name": name, "namespace": namespace},
            "classRef": {"apiVersion": f"{VM_OPERATOR}/v1alpha1", "kind": "VirtualMachineClass", "name": name}}


def resource_quota(namespace: str, name: str, hard: dict[str, str], used: dict[str, str] | None = None
                   ) -> dict[str, Any]:
    """A ResourceQuota with `hard` limits and `used` (the Supervisor writes a vSphere namespace's limits as one)."""
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name, "namespace": namespace},
            "spec": {"hard": hard}, "status": {"hard": hard, "used": used or {k: "0" for k in hard}}}


def vm_image(name: str, namespace: str, display: str, os_type: str, os_version: str, product: str,
             version: str = "v1alpha5") -> dict[str, Any]:
    """A VirtualMachineImage of a VKS release from the namespace's content library."""
    return {"apiVersion": f"{VM_OPERATOR}/{version}", "kind": "VirtualMachineImage",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"providerRef": {"apiVersion": "imageregistry.vmware.com/v1alpha2", "kind": "ContentLibraryItem",
                                     "name": name}},
            "status": {"name": display, "osInfo": {"type": os_type, "version": os_version},
                       "productInfo": {"product": "VKS release", "vendor": "VMware", "version": product,
                                       "fullVersion": product}}}


def cluster_class(name: str, namespace: str, variables: list[str], version: str = "v1beta2") -> dict[str, Any]:
    """A Cluster API ClusterClass with the variable names its status lists. The spec names the two templates the
    real schema requires (tests/e2e admits it on a real API server)."""
    def ref(kind: str, api_version: str) -> dict[str, str]:
        return {"kind": kind, "apiVersion": api_version, "name": f"{name}-{kind.lower()}"}

    return {"apiVersion": f"cluster.x-k8s.io/{version}", "kind": "ClusterClass",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"infrastructure": {"templateRef": ref("VSphereClusterTemplate",
                                                           "vmware.infrastructure.cluster.x-k8s.io/v1beta1")},
                     "controlPlane": {"templateRef": ref("KubeadmControlPlaneTemplate",
                                                         "controlplane.cluster.x-k8s.io/v1beta2")}},
            "status": {"variables": [{"name": v, "definitions": [{"from": "inline", "required": False, "schema": {
                "openAPIV3Schema": {"type": "object"}}}]} for v in variables]}}
