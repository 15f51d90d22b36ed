#!/usr/bin/env python3
"""Derive the structural facts the tests need from ../shared/reference into tests/reference/.

Chart defaults (values tree and subchart dependencies) per pinned chart version, CRD schemas without their
`description` fields per upstream project (crds/, and crds-older/ for older releases of the same kinds), the VKS
ClusterClass topology variables' schemas, and the interop tables the matrix is held to; each file names the
upstream files it came from (SOURCES.tsv). Compact JSON with sorted keys, so a run on the same reference writes the
same bytes. `--check` writes nothing and exits 1 naming each file that differs from a fresh derivation.

    python3 scripts/derive-reference.py [--reference DIR] [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REFERENCE = REPO.parent / "shared" / "reference"
OUT = REPO / "tests" / "reference"
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Keys of a schema node whose values are schemas, or maps or lists of schemas (property names stay as they are).
_SCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SCHEMA_ONE = ("items", "additionalProperties", "not")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
# The interop-facts.yaml tables the tests compare the matrix with.
_INTEROP = {"toolkit_driver_table": ("cuda_min_driver", "toolkit_driver_table"),
            "vgpu_releases": ("vgpu_releases", "releases"), "gpu_compute_capability": ("gpu_compute_capability",)}


def strip_descriptions(schema: Any) -> Any:
    """An OpenAPI schema node without `description`, recursively (a property named `description` stays)."""
    if not isinstance(schema, dict):
        return schema
    out = {k: v for k, v in schema.items() if k != "description"}
    for key in _SCHEMA_MAPS:
        if isinstance(schema.get(key), dict):
            out[key] = {name: strip_descriptions(node) for name, node in schema[key].items()}
    for key in _SCHEMA_ONE:
        if isinstance(schema.get(key), dict):
            out[key] = strip_descriptions(schema[key])
    for key in _SCHEMA_LISTS:
        if isinstance(schema.get(key), list):
            out[key] = [strip_descriptions(node) for node in schema[key]]
    return out


def _sources(reference: Path) -> dict[str, str]:
    """Reference file -> "repository ref path" from SOURCES.tsv."""
    rows = [line.split("\t") for line in (reference / "SOURCES.tsv").read_text().splitlines()]
    return {row[0]: " ".join(row[1:4]) for row in rows if len(row) >= 4 and not row[0].startswith(("#", "file"))}


def _dump(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def _load(path: Path) -> Any:
    data = yaml.load(path.read_text(), Loader=_LOADER)
    if json.loads(json.dumps(data)) != data:
        raise SystemExit(f"{path}: holds values JSON cannot carry (non-string keys, dates)")
    return data


def _chart(version_dir: Path, sources: dict[str, str], reference: Path) -> dict[str, Any]:
    meta = _load(version_dir / "Chart.yaml") or {}
    keep = ("name", "alias", "version", "condition")
    files = [version_dir / "Chart.yaml", version_dir / "values.yaml"]
    return {"sources": [sources.get(str(p.relative_to(reference)), "") for p in files],
            "dependencies": [{k: d[k] for k in keep if k in d} for d in meta.get("dependencies") or []],
            "values": _load(version_dir / "values.yaml") or {}}


def _crds(project_dir: Path, sources: dict[str, str], reference: Path) -> dict[str, Any]:
    crds, files = [], sorted(project_dir.glob("*.yaml"))
    for path in files:
        for doc in yaml.load_all(path.read_text(), Loader=_LOADER):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                spec = doc["spec"]
                crds.append({"name": doc["metadata"]["name"], "group": spec["group"], "kind": spec["names"]["kind"],
                             "versions": [{"name": v["name"], "served": bool(v.get("served")),
                                           "storage": bool(v.get("storage")),
                                           "schema": strip_descriptions(v["schema"]["openAPIV3Schema"])}
                                          for v in spec["versions"]]})
    return {"sources": [sources.get(str(p.relative_to(reference)), "") for p in files], "crds": crds}


def _vks_variables(path: Path, sources: dict[str, str], reference: Path) -> dict[str, Any]:
    """The schemas of a ClusterClass's topology variables by name (the file's `$comment` says how partial)."""
    schema = json.loads(path.read_text())
    return {"sources": [sources.get(str(path.relative_to(reference)), "")],
            "variables": {name: node for name, node in schema.items() if not name.startswith("$")}}


def _interop(reference: Path) -> dict[str, Any]:
    facts = _load(reference / "interop-facts.yaml")
    out: dict[str, Any] = {"source": "interop-facts.yaml (every row names its upstream source)"}
    for name, path in _INTEROP.items():
        node = facts
        for key in path:
            node = node[key]
        out[name] = node
    return out


def derive(reference: Path) -> dict[str, str]:
    """Path under tests/reference -> file content."""
    sources = _sources(reference)
    files = {f"charts/{d.parent.name}/{d.name}.json": _dump(_chart(d, sources, reference))
             for d in sorted(reference.glob("charts/*/*")) if (d / "values.yaml").is_file()}
    # crds-older/ holds older releases of kinds crds/ defines (Cluster API v1beta1 as VKS 3.4 and before serve it).
    files |= {f"{d.parent.name}/{d.name}.json": _dump(_crds(d, sources, reference))
              for folder in ("crds", "crds-older") for d in sorted(reference.glob(f"{folder}/*"))}
    files |= {f"vks/{p.name}": _dump(_vks_variables(p, sources, reference))
              for p in sorted(reference.glob("vks/*.schema.json"))}
    files["interop.json"] = _dump(_interop(reference))
    return files


def stale(files: dict[str, str], out: Path = OUT) -> list[str]:
    """What differs between a derivation and the committed files: changed, missing and extra paths."""
    committed = {str(p.relative_to(out)) for p in out.glob("**/*.json")}
    changed = [name for name, text in files.items() if not (out / name).is_file() or (out / name).read_text() != text]
    return sorted([*changed, *(committed - set(files))])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    parser.add_argument("--check", action="store_true", help="compare with tests/reference, write nothing")
    args = parser.parse_args()
    if not (args.reference / "SOURCES.tsv").is_file():
        print(f"{args.reference}: no reference data (SOURCES.tsv) here", file=sys.stderr)
        return 2
    files = derive(args.reference)
    differ = stale(files)
    if args.check:
        for name in differ:
            print(f"tests/reference/{name} differs from a fresh derivation", file=sys.stderr)
        return 1 if differ else 0
    for name in differ:
        target = OUT / name
        if name in files:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(files[name])
        else:
            target.unlink()
    print(f"tests/reference: {len(files)} files, {len(differ)} written or removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
