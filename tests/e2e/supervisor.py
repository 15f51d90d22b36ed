"""A VKS Supervisor on the test API server, as far as the program sees one: the Cluster API and vm-operator CRDs
(tests/e2e/crds, derived by scripts/derive-e2e-crds.py), a vSphere namespace, and FakeVks. The objects in it
(VirtualMachineClasses with a vGPU profile in either place vm-operator takes one, or none; ResourceQuotas;
VirtualMachineImages; ClusterClasses) are those tests/fake_kube.py builds, here admitted by the real schemas.

No VKS controller runs here. FakeVks stands in for what they would do for a Cluster, and nothing more: when a
Cluster appears or its spec changes (a new generation), it writes the Secret `<cluster>-kubeconfig` (key `value`)
with a kubeconfig of the same test API server, then the Cluster's summary condition (Available for v1beta2, Ready
for v1beta1) True and `status.observedGeneration` at that generation, through the status subresource. So the
"workload cluster" the program installs the platform on is the test API server itself; no VM, node or control plane
is created, and nothing checks the topology as VKS would.

The CRDs declare no conversion webhook here (see scripts/derive-e2e-crds.py): the server converts between served
versions with strategy None, so objects are written and read in the storage versions (Cluster v1beta2,
VirtualMachineClass v1alpha5); other served versions are checked by dry-run admission only. An older Supervisor
(OLDER_SUPERVISOR_CRDS: Cluster API v1.10.10, v1beta1 storage) takes a server of its own."""

from __future__ import annotations

import base64
import datetime
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError

from e2e.cluster import put

SUPERVISOR_CRDS = ("cluster-api-v1.12.11", "vm-operator-release-vc-9.1.0")
OLDER_SUPERVISOR_CRDS = ("older/cluster-api-v1.10.10", "vm-operator-release-vc-9.1.0")
CLUSTER_GROUP = "cluster.x-k8s.io"
CLUSTER_API = f"{CLUSTER_GROUP}/v1beta2"  # the storage version
# The summary condition Cluster API writes per API version: stated here, not imported from components/vks_cluster.py,
# so a wrong condition there is a test that waits for ever, not a fake that agrees with it.
SUMMARY = {"v1beta2": "Available", "v1beta1": "Ready"}


def vsphere_namespace(dynamic: DynamicClient, name: str) -> None:
    put(dynamic, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def inline_kubeconfig(path: Path) -> str:
    """The kubeconfig at `path` with its certificate and key files inlined as *-data, as Cluster API writes one."""
    config = yaml.safe_load(path.read_text())
    for entry, keys in (("cluster", ("certificate-authority",)), ("user", ("client-certificate", "client-key"))):
        for item in config[f"{entry}s"]:
            for key in keys:
                if key in item[entry]:
                    data = Path(item[entry].pop(key)).read_bytes()
                    item[entry][f"{key}-data"] = base64.b64encode(data).decode()
    return yaml.safe_dump(config)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def answering() -> threading.Event:
    answer = threading.Event()
    answer.set()
    return answer


@dataclass
class FakeVks:
    """A thread that answers for VKS on the Clusters of `namespace` (see the module docstring), while `answer` is
    set (a test holds the answer back until it has seen the engine wait). `seen` holds each generation it made
    available, with the spec it saw then; `error` what stopped it, raised again on exit."""

    api: client.ApiClient
    namespace: str
    kubeconfig: str
    answer: threading.Event = field(default_factory=answering)
    api_version: str = "v1beta2"  # the Clusters' storage version on this server
    seen: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> FakeVks:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(30)
        if self.error is not None:
            raise RuntimeError(f"FakeVks failed: {self.error}") from self.error

    def _run(self) -> None:
        dynamic = DynamicClient(self.api)  # type: ignore[no-untyped-call]
        clusters = dynamic.resources.get(api_version=f"{CLUSTER_GROUP}/{self.api_version}", kind="Cluster")
        try:
            while not self._stop.is_set():
                # A watch the server ends after a second (so a stop or an answer is seen), started again with a
                # fresh list.
                for event in dynamic.watch(clusters, namespace=self.namespace,  # type: ignore[no-untyped-call]
                                           timeout=1):
                    if event["type"] in ("ADDED", "MODIFIED") and self.answer.is_set():
                        self._reconcile(dynamic, clusters, event["raw_object"])
                    if self._stop.is_set():
                        break
        except Exception as error:  # kept for the test to raise on exit
            self.error = error

    def _reconcile(self, dynamic: DynamicClient, clusters: Any, cluster: dict[str, Any]) -> None:
        meta = cluster["metadata"]
        if meta.get("deletionTimestamp"):
            return
        generation, summary = meta["generation"], SUMMARY[self.api_version]
        status = cluster.get("status") or {}
        if status.get("observedGeneration") == generation and any(
                c["type"] == summary and c["status"] == "True" for c in status.get("conditions") or []):
            return
        self._write_kubeconfig(dynamic, meta["name"], meta["uid"])
        condition = {"type": summary, "status": "True", "reason": summary, "lastTransitionTime": now(),
                     "message": "faked by the e2e test: no VKS controller runs"}
        if self.api_version == "v1beta2":  # v1beta1 conditions have no observedGeneration
            condition["observedGeneration"] = generation
        clusters.status.patch(name=meta["name"], namespace=self.namespace,
                              body={"status": {"observedGeneration": generation, "conditions": [condition]}},
                              content_type="application/merge-patch+json")
        self.seen.append((meta["name"], generation, json.loads(json.dumps(cluster["spec"]))))

    def _write_kubeconfig(self, dynamic: DynamicClient, cluster: str, uid: str) -> None:
        """The Secret Cluster API writes beside a Cluster: `<cluster>-kubeconfig`, key `value`, owned by the
        Cluster."""
        secret: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "type": "cluster.x-k8s.io/secret",
                  "metadata": {"name": f"{cluster}-kubeconfig", "namespace": self.namespace,
                               "labels": {"cluster.x-k8s.io/cluster-name": cluster},
                               "ownerReferences": [{"apiVersion": f"{CLUSTER_GROUP}/{self.api_version}",
                                                    "kind": "Cluster", "name": cluster, "uid": uid}]},
                  "stringData": {"value": self.kubeconfig}}
        try:
            dynamic.resources.get(api_version="v1", kind="Secret").get(name=secret["metadata"]["name"],
                                                                       namespace=self.namespace)
        except NotFoundError:
            put(dynamic, secret)
