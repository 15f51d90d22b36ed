#!/usr/bin/env python3
"""Derive the CRDs the e2e stand-in charts install, and those a VKS Supervisor serves (Cluster API, vm-operator), from
the pinned upstream CRDs in ../shared/reference/crds, into tests/e2e/crds/<set>.json (so a clone runs the e2e tests
alone). Kept: names, scope, versions with their schemas (CEL rules, defaults, patterns), subresources, and the API
approval annotation of *.k8s.io groups; dropped: descriptions, printer columns, and conversion webhooks (no operator
runs to serve them). Run again when a pinned CRD set changes.

The Cluster API and vm-operator files are controller-gen's bases, which declare no conversion: their releases add
`conversion: {strategy: Webhook}` with kustomize (cluster-api config/crd/patches/webhook_in_clusters.yaml,
vm-operator config/crd/patches/webhook_in_virtualmachineclasses.yaml). The test server therefore converts between
served versions with strategy None (only apiVersion changes): the e2e tests write and read these objects in the
storage version (Cluster v1beta2, VirtualMachineClass v1alpha5) and check the other served versions by dry-run
admission only."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SETS = ("cert-manager-v1.21.1", "kserve-v0.20.0", "envoy-gateway-v1.9.0",
        "gateway-api-standard-from-envoy-gateway-v1.9.0", "envoy-ai-gateway-v1.1.0", "kueue-v0.19.2",
        "prometheus-operator-kps-88.5.3", "gpu-operator-v26.7.0")
# What a VKS Supervisor serves that the program writes or reads: Cluster and ClusterClass, VirtualMachineClass and
# VirtualMachineImage.
SUPERVISOR_SETS = ("cluster-api-v1.12.11", "vm-operator-release-vc-9.1.0")
# An older Supervisor's Cluster API (v1beta1 storage, no v1beta2), from crds-older, into tests/e2e/crds/older/ (a
# server takes one set per CRD name: the e2e test of v1beta1 Clusters installs it on a server of its own).
OLDER_SETS = ("cluster-api-v1.10.10",)
APPROVAL = "api-approved.kubernetes.io"
LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def strip(node: Any) -> Any:
    """The schema without `description` keys (a property that is named `description` stays)."""
    if isinstance(node, dict):
        return {k: (strip_properties(v) if k == "properties" else strip(v))
                for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [strip(item) for item in node]
    return node


def strip_properties(properties: dict[str, Any]) -> dict[str, Any]:
    return {name: strip(schema) for name, schema in properties.items()}


def compact(crd: dict[str, Any]) -> dict[str, Any]:
    spec = crd["spec"]
    versions = [{key: (strip(value) if key == "schema" else value) for key, value in version.items()
                 if key in ("name", "served", "storage", "schema", "subresources")} for version in spec["versions"]]
    names = {k: v for k, v in spec["names"].items() if k in ("kind", "listKind", "plural", "singular")}
    metadata = {"name": crd["metadata"]["name"]}
    approval = (crd["metadata"].get("annotations") or {}).get(APPROVAL)
    if approval:  # the API server refuses a *.k8s.io CRD without it
        metadata["annotations"] = {APPROVAL: approval}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": metadata,
            "spec": {"group": spec["group"], "names": names, "scope": spec["scope"], "versions": versions}}


def derive(reference: Path, folder: str, name: str, out: Path) -> None:
    crds = []
    for path in sorted((reference / folder / name).glob("*.yaml")):
        for doc in yaml.load_all(path.read_text(), Loader=LOADER):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                crds.append(compact(doc))
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"source": f"shared/reference/{folder}/{name}", "crds": crds}, sort_keys=True) + "\n")
    print(f"{out.relative_to(REPO)}: {len(crds)} CRDs")


def main(reference: Path) -> None:
    crds = REPO / "tests" / "e2e" / "crds"
    for name in SETS + SUPERVISOR_SETS:
        derive(reference, "crds", name, crds / f"{name}.json")
    for name in OLDER_SETS:
        derive(reference, "crds-older", name, crds / "older" / f"{name}.json")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "reference")
