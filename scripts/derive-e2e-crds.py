#!/usr/bin/env python3
"""Derive the CRDs the e2e stand-in charts install from the pinned upstream CRDs in ../shared/reference/crds, into
tests/e2e/crds/<set>.json (so a clone runs the e2e tests alone). Kept: names, scope, versions with their schemas
(CEL rules, defaults, patterns), subresources, and the API approval annotation of *.k8s.io groups; dropped:
descriptions, printer columns, and conversion webhooks (no operator runs to serve them). Run again when a pinned
CRD set changes."""

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


def main(reference: Path) -> None:
    for name in SETS:
        crds = []
        for path in sorted((reference / "crds" / name).glob("*.yaml")):
            for doc in yaml.load_all(path.read_text(), Loader=LOADER):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    crds.append(compact(doc))
        out = REPO / "tests" / "e2e" / "crds" / f"{name}.json"
        out.write_text(json.dumps({"source": f"shared/reference/crds/{name}", "crds": crds}, sort_keys=True) + "\n")
        print(f"{out.relative_to(REPO)}: {len(crds)} CRDs")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "reference")
