"""`paictl plan`: the offline plan of a stack, as a resource tree, as JSON, or as files to review."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import yaml

from program.deploy import deploy
from program.offline import Registered, StackConfig, run_offline

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


def plan(config: StackConfig) -> list[Registered]:
    """Every resource the program registers for this config, in tree order (parents first, then by key)."""
    records = run_offline(deploy, config)
    children: dict[str | None, list[Registered]] = defaultdict(list)
    for record in records:
        children[record.parent].append(record)
    ordered: list[Registered] = []

    def walk(parent: str | None) -> None:
        for record in sorted(children[parent], key=lambda r: r.key):
            ordered.append(record)
            walk(record.key)

    walk(None)
    return ordered


def to_json(stack: str, records: list[Registered]) -> str:
    resources = [{"type": r.type, "name": r.name, "parent": r.parent, "inputs": r.inputs} for r in records]
    return json.dumps({"stack": stack, "resources": resources}, indent=2, sort_keys=True) + "\n"


def to_table(stack: str, records: list[Registered]) -> str:
    """The component tree, each component with the count of its resources by kind."""
    components = [r for r in records if not r.custom]
    lines = [f"stack {stack}: {len(records)} resources, {len(components)} components"]
    for record in records:
        if record.custom and record.parent is not None:
            continue
        depth = _depth(record, records)
        own = Counter(_kind(r) for r in records if r.parent == record.key and r.custom)
        counts = ", ".join(f"{kind} x{n}" for kind, n in sorted(own.items()))
        lines.append(f"{'  ' * depth}{record.type}  {record.name}" + (f"  [{counts}]" if counts else ""))
    return "\n".join(lines) + "\n"


def write_files(records: list[Registered], out: Path) -> list[Path]:
    """One YAML file per Kubernetes object, one values file per Helm release; returns the paths written."""
    written = []
    for record in records:
        if record.type == HELM_RELEASE:
            path = out / "helm" / f"{record.name}.values.yaml"
            header = {k: record.inputs.get(k) for k in ("chart", "version", "namespace", "repositoryOpts")}
            body = "# " + json.dumps(header, sort_keys=True) + "\n" + _yaml(record.inputs.get("values", {}))
        elif is_kubernetes_object(record):
            meta = record.inputs.get("metadata", {})
            folder = meta.get("namespace") or "_cluster"
            path = out / folder / f"{record.inputs['kind'].lower()}-{meta.get('name', record.name)}.yaml"
            body = _yaml(record.inputs)
        else:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
        written.append(path)
    return written


def is_kubernetes_object(record: Registered) -> bool:
    return record.custom and record.type.startswith("kubernetes:") and "kind" in record.inputs


def _kind(record: Registered) -> str:
    return record.type.rsplit(":", 1)[-1]


def _depth(record: Registered, records: list[Registered]) -> int:
    by_key = {r.key: r for r in records}
    depth, parent = 0, record.parent
    while parent is not None:
        depth += 1
        parent = by_key[parent].parent if parent in by_key else None
    return depth


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False)
