"""Stand-in charts for the end-to-end stack: each catalog chart under its own name and pinned version, holding only
the CRDs the real chart installs (from tests/e2e/crds, derived from the pinned upstream CRDs), pushed to a local
registry as OCI charts where the air-gap mirror would hold them (<mirror>/charts/<name>:<version>).

They prove the engine, the provider, the OCI chart path and our objects against the real CRD schemas; they do not
prove the operators, whose Deployments, webhooks and controllers none of them contain."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import yaml
from registries import push_chart

from airgap.oci import Registry
from components.catalog import CATALOG

CRDS = Path(__file__).resolve().parent / "crds"
# The CRD sets each real chart installs (charts not named here install none).
CHART_CRDS: dict[str, tuple[str, ...]] = {
    "cert-manager": ("cert-manager-v1.21.1",),
    "kserve-crd": ("kserve-v0.20.0",),
    "gateway-helm": ("envoy-gateway-v1.9.0", "gateway-api-standard-from-envoy-gateway-v1.9.0"),
    "ai-gateway-crds-helm": ("envoy-ai-gateway-v1.1.0",),
    "kueue": ("kueue-v0.19.2",),
    "kube-prometheus-stack": ("prometheus-operator-kps-88.5.3",),
    "gpu-operator": ("gpu-operator-v26.7.0",),
}


def _add(tar: tarfile.TarFile, path: str, content: str) -> None:
    data = content.encode()
    info = tarfile.TarInfo(path)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def stand_in(name: str, version: str) -> bytes:
    """The chart package (.tgz): Chart.yaml and, in crds/, the CRDs of its sets, one file per CRD."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        _add(tar, f"{name}/Chart.yaml", yaml.safe_dump({
            "apiVersion": "v2", "name": name, "version": version,
            "description": "pai e2e stand-in: the CRDs of the real chart, no operator"}))
        for crd_set in CHART_CRDS.get(name, ()):
            for crd in json.loads((CRDS / f"{crd_set}.json").read_text())["crds"]:
                _add(tar, f"{name}/crds/{crd['metadata']['name']}.yaml", json.dumps(crd))  # JSON is YAML
    return buffer.getvalue()


def push_stand_ins(client: Registry, prefix: str) -> list[str]:
    """Every catalog chart's stand-in at `prefix`/charts/<name>:<version>; returns the references."""
    pushed = []
    for pin in CATALOG.charts.values():
        push_chart(client, f"{prefix}/charts/{pin.chart}", pin.version, stand_in(pin.chart, pin.version))
        pushed.append(f"{client.host}/{prefix}/charts/{pin.chart}:{pin.version}")
    return pushed
