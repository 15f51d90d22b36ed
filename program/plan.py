"""The offline plan of a stack: the resource tree, the parts in install order with their charts and images, as a
table, as JSON, or as files to review."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.catalog import CATALOG, ChartImage, ChartPin
from program.deploy import deploy
from program.offline import Registered, StackConfig, run_offline

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
# The file that marks a folder as written by `paictl plan --out`: the paths the plan wrote there.
OWNER_FILE = ".paictl-plan.json"


class PlanOutError(Exception):
    """A --out folder the plan may not write into."""


@dataclass(frozen=True)
class Part:
    """A platform part (a component under the root): what it waits for, the charts it installs and the images
    it pulls."""

    type: str
    name: str
    after: tuple[str, ...]
    charts: tuple[tuple[str, str, str], ...]  # (release, chart, version)
    images: tuple[str, ...]


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


def parts(records: list[Registered]) -> list[Part]:
    """The parts in install order: each after the parts it waits for (`depends_on` and inputs taken from their
    resources), ties by name."""
    by_key = {r.key: r for r in records}
    roots = {r.key for r in records if r.parent is None and not r.custom}
    owners = {r.key: r.key for r in records if not r.custom and r.parent in roots}

    def owner(key: str) -> str | None:
        while key in by_key and key not in owners:
            key = by_key[key].parent or ""
        return owners.get(key)

    members: dict[str, list[Registered]] = defaultdict(list)
    for record in records:
        part = owner(record.key)
        if part is not None:
            members[part].append(record)
    found = {}
    for key, own in members.items():
        after = sorted({by_key[o].name for r in own for d in r.dependencies
                        if (o := owner(d)) is not None and o != key})
        releases = [r for r in own if r.type == HELM_RELEASE]
        images = sorted({*(i for r in own if is_kubernetes_object(r) for i in image_references(r.inputs)),
                         *(i for r in releases for i in release_images(r.inputs))})
        found[by_key[key].name] = Part(
            type=by_key[key].type, name=by_key[key].name, after=tuple(after),
            charts=tuple(sorted((r.name, str(r.inputs.get("chart")), str(r.inputs.get("version")))
                                for r in releases)),
            images=tuple(images))
    ordered: list[Part] = []
    while len(ordered) < len(found):
        done = {p.name for p in ordered}
        ready = sorted(n for n, p in found.items() if n not in done and set(p.after) <= done)
        ordered.append(found[ready[0] if ready else min(n for n in found if n not in done)])
    return ordered


def chart_pin(chart: str, version: str) -> ChartPin | None:
    """The catalog's pin of a chart a release installs, by chart name (the last path segment of an OCI source)."""
    name = chart.rsplit("/", 1)[-1]
    for pin in CATALOG.charts.values():
        if pin.chart == name and (version == pin.version or version in pin.versions):
            return pin.at(version) if pin.versions else pin
    return None


def release_images(inputs: dict[str, Any]) -> list[str]:
    """The images a Helm release pulls: each image block the catalog pins for its chart, as its values render it
    (on the mirror in air-gap mode), else the catalog's reference."""
    pin = chart_pin(str(inputs.get("chart")), str(inputs.get("version")))
    if pin is None:
        return []
    values = inputs.get("values") or {}
    return [_block_reference(values, path, image) or image.ref for path, image in pin.images_at(pin.version).items()]


def value_at(values: dict[str, Any], path: str) -> Any:
    """The value at a dotted Helm values path, None where there is none."""
    found: Any = values
    for key in path.split("."):
        if not isinstance(found, dict) or key not in found:
            return None
        found = found[key]
    return found


def _block_reference(values: dict[str, Any], path: str, pinned: ChartImage) -> str | None:
    """The image reference the values name at a catalog image path: a string, or a block of `registry`,
    `repository`, `image` and `tag` (the GPU Operator's `repository` + `image` + `version`, its image name left to
    the chart's default when the values set the repository alone); the pinned tag where the values leave it to the
    chart. None when the values name no image there, or no registry host."""
    block = value_at(values, path)
    if isinstance(block, dict):
        own, repository = pinned.repository.rsplit("/", 1)[-1], block.get("repository")
        image = block.get("image") or (isinstance(repository, str) and not repository.endswith(f"/{own}") and own)
        name = "/".join(p for p in (block.get("registry"), block.get("repository"), image) if isinstance(p, str) and p)
        if not name:  # a tag or version alone: the chart's repository, which is the catalog's
            return None
        tag = block.get("tag") or block.get("version") or pinned.tag
        block = name if ":" in name.rsplit("/", 1)[-1] else f"{name}:{tag}"
    if not isinstance(block, str) or "." not in block.split("/", 1)[0]:
        return None
    return block


def image_references(value: Any) -> Iterator[str]:
    """Every string under an `image` key anywhere in an object: containers of any pod spec, template or CR."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "image" and isinstance(item, str):
                yield item
            else:
                yield from image_references(item)
    elif isinstance(value, list):
        for item in value:
            yield from image_references(item)


def to_json(stack: str, records: list[Registered]) -> str:
    """Every resource with what it waits for, and the parts in install order with their charts and images."""
    resources = [{"type": r.type, "name": r.name, "parent": r.parent, "dependencies": list(r.dependencies),
                  "inputs": r.inputs, "read": r.read} for r in records]
    order = [{"type": p.type, "name": p.name, "after": list(p.after), "images": list(p.images),
              "charts": [{"release": r, "chart": c, "version": v} for r, c, v in p.charts]} for p in parts(records)]
    return json.dumps({"stack": stack, "parts": order, "resources": resources}, indent=2, sort_keys=True) + "\n"


def to_table(stack: str, records: list[Registered]) -> str:
    """The component tree, each component with the count of its resources by kind."""
    components = [r for r in records if not r.custom]
    reads = [r for r in records if r.read]
    order = parts(records)
    by_name = {p.name: p for p in order}
    lines = [f"stack {stack}: {len(records) - len(reads)} resources, {len(components)} components"
             + (f", {len(reads)} read(s) of existing objects" if reads else ""),
             f"install order: {', '.join(p.name for p in order)}"]
    for record in records:
        if record.custom and record.parent is not None:
            continue
        depth = _depth(record, records)
        own = Counter(_kind(r) for r in records if r.parent == record.key and r.custom and not r.read)
        counts = ", ".join(f"{kind} x{n}" for kind, n in sorted(own.items()))
        lines.append(f"{'  ' * depth}{record.type}  {record.name}" + (f"  [{counts}]" if counts else ""))
        lines += [f"{'  ' * (depth + 1)}reads {_kind(r)} {r.inputs['id']}" for r in reads if r.parent == record.key]
        part = by_name.get(record.name) if not record.custom else None
        if part is not None:
            indent = "  " * (depth + 1)
            lines.append(f"{indent}after: {', '.join(part.after) or '-'}")
            lines += [f"{indent}chart {chart} {version}  (release {name})" for name, chart, version in part.charts]
            lines += [f"{indent}image {image}" for image in part.images]
    return "\n".join(lines) + "\n"


def write_files(records: list[Registered], out: Path) -> list[Path]:
    """One YAML file per Kubernetes object, one values file per Helm release; returns the paths written.

    `out` is new, empty or written by an earlier plan (OWNER_FILE lists its files): what that plan wrote and this
    one does not is removed, so the folder holds exactly this plan. Anything else is refused before a file is
    written."""
    earlier = _owned(out)
    files: dict[Path, str] = {}
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
        files[path] = body
    for stale in sorted(earlier - set(files)):
        stale.unlink(missing_ok=True)
        for folder in stale.parents:
            if folder == out or any(folder.iterdir()):
                break
            folder.rmdir()
    for path, body in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    owned = sorted(str(p.relative_to(out)) for p in files)
    (out / OWNER_FILE).write_text(json.dumps({"files": owned}, indent=1) + "\n")
    return list(files)


def _owned(out: Path) -> set[Path]:
    """The files an earlier plan wrote into `out` (none for a new or empty folder); PlanOutError for a folder the
    plan does not own, or a marker that names a path outside it."""
    if not out.exists():
        return set()
    if not out.is_dir():
        raise PlanOutError(f"--out {out}: not a folder")
    marker = out / OWNER_FILE
    if not marker.is_file():
        if any(out.iterdir()):
            raise PlanOutError(f"--out {out}: not empty and not written by paictl plan (no {OWNER_FILE}); "
                               "give a new or empty folder, or one an earlier plan wrote")
        return set()
    try:
        listed = json.loads(marker.read_text())["files"]
    except (ValueError, KeyError, TypeError):
        raise PlanOutError(f"--out {out}: {OWNER_FILE} is not a list of the files a plan wrote") from None
    root = out.resolve()
    paths = {out / p for p in listed if isinstance(p, str)}
    if len(paths) != len(listed) or not all((p.resolve()).is_relative_to(root) and p.resolve() != root
                                            for p in paths):
        raise PlanOutError(f"--out {out}: {OWNER_FILE} names paths outside the folder")
    return paths


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
