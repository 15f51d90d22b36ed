"""The bill of materials from the charts themselves: each pinned chart fetched and rendered by helm (driven through
pyhelm3) with the stack's values, and every image the rendered objects name, checked against the catalog's list.

Images are read where Kubernetes or an operator pulls them: `image` of every container, init container and hook,
image references passed in `args`, `command` and `env`, the `image` keys of JSON or YAML documents a ConfigMap
carries (controller configs), and the operand blocks of operator custom resources (`repository` + `image` +
`version`, the GPU Operator's ClusterPolicy, with the node OS appended to the driver tags as the operator does).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from pyhelm3 import Client, errors

from airgap.bom import (
    DIGEST,
    Bom,
    ChartSource,
    Entry,
    Status,
    bill_of_materials,
    chart_source,
    to_mirror,
    upstream_plan,
)
from components.config import PlatformConfig
from components.gpu_operator import OS_SUFFIXED
from components.images import normalized
from program.offline import Registered
from program.plan import HELM_RELEASE
from validation.sources.helm import every_helm_run

# An image reference in an argument or environment value: a path with a registry or namespace, a tag or digest.
_IMAGE = re.compile(r"^(?:[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]+)?/)+[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
                    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$")


class RenderError(Exception):
    """A chart that helm could not fetch or render, naming the chart and helm's message."""


@dataclass(frozen=True)
class Release:
    """One Helm release of the plan: what to fetch and the values to render it with."""

    name: str
    namespace: str
    source: ChartSource
    values: dict[str, Any]


@dataclass(frozen=True)
class Rendered:
    """An image the render names and where: the object (hooks marked) and the field path."""

    ref: str
    chart: str
    where: str


@dataclass(frozen=True)
class Difference:
    """The render and the catalog disagree on an image of a chart."""

    chart: str
    rendered: str | None
    catalog: str | None
    where: str

    def __str__(self) -> str:
        if self.catalog is None:
            return f"{self.chart} renders {self.rendered} ({self.where}), which is not in the catalog"
        if self.rendered is None:
            return f"{self.chart}: the catalog lists {self.catalog} ({self.where}), which the render names at no tag"
        return f"{self.chart} renders {self.rendered} ({self.where}), the catalog has {self.catalog}"


@dataclass(frozen=True)
class StackRender:
    """A stack's render: the bill of materials as the charts name it, every image with where, and how the
    catalog's bill differs."""

    bom: Bom
    images: list[Rendered]
    differences: list[Difference]


def render_stack(config: PlatformConfig, client: Client, sources: dict[str, str] | None = None) -> StackRender:
    """Render every chart of the stack's upstream plan with its values and compare with the catalog."""
    records = upstream_plan(config)
    bom = bill_of_materials(config, records)
    images = rendered_images(render_all(client, releases(records), sources), config.gpu.driver.os if config.gpu
                             else None)
    return StackRender(rendered_bom(bom, images), images, differences(bom, images))


def releases(records: list[Registered]) -> list[Release]:
    """The Helm releases of a plan, each with its chart's source and its values."""
    out = []
    for record in records:
        if record.type == HELM_RELEASE:
            inputs = record.inputs
            out.append(Release(inputs.get("name", record.name), inputs.get("namespace") or "default",
                               chart_source(inputs)[1], inputs.get("values") or {}))
    return out


def rewrite(url: str, sources: dict[str, str]) -> str:
    """A chart URL with the longest matching prefix in `sources` (upstream -> where to fetch it) replaced."""
    for prefix in sorted(sources, key=len, reverse=True):
        if url.startswith(prefix):
            return sources[prefix] + url[len(prefix):]
    return url


async def render_release(client: Client, release: Release, sources: dict[str, str]) -> list[dict[str, Any]]:
    """The objects (hooks included, CRDs not) a release renders, its chart fetched by pyhelm3 from OCI or from a
    classic repository."""
    source = release.source
    ref, repo = (rewrite(source.oci, sources), None) if source.oci else (source.chart, rewrite(source.repo or "",
                                                                                                sources))
    label = f"{source.chart} {source.version}"
    try:
        chart = await client.get_chart(ref, repo=repo, version=source.version)
        objects = await client.template_resources(chart, release.name, release.values, namespace=release.namespace)
        return [obj for obj in objects if isinstance(obj, dict)]
    except errors.Error as exc:
        message = exc.stderr.decode(errors="replace").strip().splitlines() or [f"exit {exc.returncode}"]
        raise RenderError(f"chart {label} from {repo or ref}: helm: {message[-1]}") from exc


def render_all(client: Client, releases: list[Release], sources: dict[str, str] | None = None
               ) -> list[tuple[Release, list[dict[str, Any]]]]:
    """Every release with the objects it renders, rendered concurrently."""

    async def run() -> list[list[dict[str, Any]]]:
        return await every_helm_run([render_release(client, r, sources or {}) for r in releases])

    return list(zip(releases, asyncio.run(run()), strict=True))


def images_in(obj: dict[str, Any], node_os: str | None = None, disabled: bool = False) -> Iterator[tuple[str, str]]:
    """(reference, where) of every image a rendered object names, references normalized (`docker.io/library/`);
    `disabled`: also the operand blocks a CR turns off (named, though nothing pulls them)."""
    meta = obj.get("metadata") or {}
    hook = " (hook)" if "helm.sh/hook" in (meta.get("annotations") or {}) else ""
    label = f"{obj.get('kind')}/{meta.get('name')}{hook}"
    for ref, path in _walk(obj, "", node_os, disabled):
        yield normalized(ref), f"{label} {path}"
    if obj.get("kind") == "ConfigMap":
        for key, text in sorted((obj.get("data") or {}).items()):
            for ref, path in _walk(_document(text), f"data.{key}", None, disabled):
                yield normalized(ref), f"{label} {path}"


def _document(text: Any) -> Any:
    """A ConfigMap value as the JSON or YAML document it holds, else nothing to read."""
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def _walk(value: Any, path: str, node_os: str | None, disabled: bool) -> Iterator[tuple[str, str]]:
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]", node_os, disabled)
        return
    if not isinstance(value, dict) or (value.get("enabled") is False and not disabled):
        return  # a block turned off pulls nothing
    # An operand block names its image in three parts; one with a part left empty takes the operator's default
    # (its own environment), named elsewhere in the render.
    operand = all(k in value for k in ("repository", "image", "version"))
    complete = operand and all(isinstance(value[k], str) and value[k] for k in ("repository", "image", "version"))
    if complete and (disabled or value.get("enabled") is not False):
        yield _operand(value, path, node_os), path
    for key, item in value.items():
        at = f"{path}.{key}" if path else key
        if key == "image" and isinstance(item, str) and item and not operand and not (
                "enabled" in value and not any(c in item for c in "/:@")):  # a bare operand name (`vgpu-manager`)
            tag = value.get("defaultImageVersion")  # KServe's explainer config: image + defaultImageVersion
            yield (f"{item}:{tag}" if isinstance(tag, str) and ":" not in item.rsplit("/", 1)[-1] else item), at
        elif key in ("args", "command") and isinstance(item, list):
            for i, arg in enumerate(item):
                text = arg.split("=", 1)[-1] if isinstance(arg, str) else ""
                if _is_image(text):
                    yield text, f"{at}[{i}]"
        elif key == "env" and isinstance(item, list):
            for i, env in enumerate(item):
                found = env.get("value") if isinstance(env, dict) else None
                if isinstance(found, str) and _is_image(found):
                    yield found, f"{at}[{i}] {env.get('name')}"
                elif isinstance(env, dict | list):
                    yield from _walk(env, f"{at}[{i}]", node_os, disabled)
        else:
            yield from _walk(item, at, node_os, disabled)


def _is_image(text: str) -> bool:
    """A string that is an image reference with a tag or digest (an argument's or environment variable's value)."""
    return bool(_IMAGE.match(text)) and (":" in text.rsplit("/", 1)[-1] or DIGEST in text)


def _operand(block: dict[str, Any], path: str, node_os: str | None) -> str:
    """An operator CR's operand image: `repository/image:version` (`@version` for a digest), with `-<node OS>` on
    the operands whose tag the operator completes with it. A disabled block (`enabled: false`) pulls nothing."""
    repository, image, version = (block[k] for k in ("repository", "image", "version"))
    if version.startswith("sha256:"):
        return f"{repository}/{image}@{version}"
    ref = f"{repository}/{image}:{version}"
    return f"{ref}-{node_os}" if node_os and path.rsplit(".", 1)[-1] in OS_SUFFIXED else ref


def rendered_images(renders: list[tuple[Release, list[dict[str, Any]]]], node_os: str | None) -> list[Rendered]:
    """Every image of every render, one per (reference, chart, where), sorted."""
    found = {Rendered(ref, f"{release.source.chart} {release.source.version}", where)
             for release, objects in renders for obj in objects for ref, where in images_in(obj, node_os)}
    return sorted(found, key=lambda r: (r.chart, r.ref, r.where))


def differences(bom: Bom, rendered: list[Rendered]) -> list[Difference]:
    """Where the render and the catalog's bill of materials disagree, chart by chart: an image the render names
    that the catalog does not list (naming the catalog's tag of that repository where it has one), and a catalog
    image whose repository the render names only at other tags. A catalog image of a part the stack leaves off
    (a disabled operand) is not a difference: it is pinned, but nothing pulls it."""
    out: list[Difference] = []
    for chart in sorted({r.chart for r in rendered}):
        catalog = {_bare(e.ref): e for e in bom.entries if e.kind == "image" and _of_chart(e, chart)}
        names = {r.ref: r for r in rendered if r.chart == chart}
        for ref, found in sorted(names.items()):
            if ref in catalog:
                continue
            same = [c for c in catalog if _repository(c) == _repository(ref)]
            out += [Difference(chart, ref, c, found.where) for c in same] or [Difference(chart, ref, None,
                                                                                          found.where)]
        rendered_repos = {_repository(r) for r in names}
        out += [Difference(chart, None, ref, ", ".join(e.origins)) for ref, e in sorted(catalog.items())
                if ref not in names and _repository(ref) in rendered_repos
                and not any(d.catalog == ref for d in out)]
    return out


def rendered_bom(bom: Bom, rendered: list[Rendered]) -> Bom:
    """The bill of materials with each chart's images as its render names them (digests kept where the catalog
    pins them); the images of the program's own objects, runtimes, charts and models as before."""
    digests = {_bare(e.ref): e.ref for e in bom.entries if DIGEST in e.ref}
    local = {_bare(e.ref) for e in bom.entries if e.status == "local"}
    entries: dict[tuple[str, str], Entry] = {}
    for e in bom.entries:
        own = tuple(o for o in e.origins if not o.startswith("chart ")) if e.kind == "image" else e.origins
        if own:
            entries[(e.kind, _bare(e.ref))] = Entry(e.kind, e.ref, e.status, own)
    for r in rendered:
        key = ("image", r.ref)
        before = entries.get(key)
        ref = digests.get(r.ref, r.ref)
        status: Status = "local" if r.ref in local else "resolved" if DIGEST in ref else "unresolved"
        origins = tuple(sorted({*(before.origins if before else ()), f"chart {r.chart}: {r.where}"}))
        entries[key] = Entry("image", ref, before.status if before else status, origins)
    ordered = sorted(entries.values(), key=lambda e: (e.kind, e.ref))
    return Bom(images=to_mirror(ordered, "image"), charts=bom.charts, models=bom.models, entries=ordered,
               chart_sources=bom.chart_sources, artifacts=bom.artifacts)


def _bare(ref: str) -> str:
    return ref.split(DIGEST)[0]


def _repository(ref: str) -> str:
    last = ref.rsplit("/", 1)
    return ref if ":" not in last[-1] else ref.rsplit(":", 1)[0]


def _of_chart(entry: Entry, chart: str) -> bool:
    return any(o.startswith(f"chart {chart}:") for o in entry.origins)
