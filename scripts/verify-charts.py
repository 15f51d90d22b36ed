#!/usr/bin/env python3
"""Verify the catalog against the real charts at every pin: render each pinned chart (upstream source at the pinned
tag, laid out as its release build packages it) with helm and the values of every bundled stack, and check

  (a) every value path the plan sets is read by a template (helm ignores unknown keys silently),
  (b) every image the render names is in the catalog at the same tag,
  (c) nothing in the airgap stack's render points outside the mirror or the bootstrap registry,
  (d) every pod that pulls from the mirror or the bootstrap registry carries its pull secret, the operand pods the
      GPU Operator creates from its ClusterPolicy and the Prometheus Operator from its CRs included,
  (e) every ConfigMap or Secret document a template fills (JSON, YAML) parses.

    scripts/verify-charts.py prepare --mirrors /work/.mirror --out /tmp/charts   # chart dirs from git mirrors
    scripts/verify-charts.py verify --charts /tmp/charts [--stack airgap ...]     # the report; exit 1 on a finding

`prepare` reads each chart from a bare git mirror of its upstream repository (`fetch`ed, never committed) with
`git archive`, applies what the project's release build does to it (version stamps, image substitutions; each
named with the build file it comes from below) and puts the pinned dependency subcharts in its `charts/`.
"""

from __future__ import annotations

import argparse
import asyncio
import configparser
import copy
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from airgap.bom import bill_of_materials, chart_source, platform_config, upstream_plan  # noqa: E402
from airgap.render import Rendered, differences, images_in  # noqa: E402
from components.catalog import CATALOG, ChartImage  # noqa: E402
from components.gpu_operator import OS_SUFFIXED  # noqa: E402
from program.offline import Registered, load_stack_file, stack_path  # noqa: E402
from program.plan import HELM_RELEASE, plan  # noqa: E402
from validation.sources.helm import helm_client  # noqa: E402

STACKS = ("dev", "vks-prod", "airgap")
# The GPU Operator releases no bundled stack pins, rendered with vks-prod's values at that version.
VARIANTS = {f"vks-prod@gpu-operator-{v}": ("vks-prod", v) for v in ("v26.3.3", "v25.10.1", "v25.3.0")}
# Parts no bundled stack turns on, rendered once more with these values (on the chart's defaults) to read the
# images the catalog pins for them: Harbor's nginx proxy and exporter, MLflow's oauth2-proxy sidecar. (The GPU
# Operator's DRA driver is in its GPUCluster CR, which the chart renders only for a cluster serving
# resource.k8s.io DeviceClass: helm template --api-versions, which pyhelm3 does not pass.)
EXTRA: dict[tuple[str, str], dict[str, Any]] = {
    ("harbor", "1.19.1"): {"expose": {"type": "clusterIP", "tls": {"enabled": False}}, "metrics": {"enabled": True}},
    ("mlflow", "1.11.5"): {"oauth2Proxy": {"enabled": True}},
    ("gpu-operator", "v25.3.0"): {"gds": {"enabled": True}},  # v25.3.0 renders its gds section only when enabled
}
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet", "Pod", "CronJob")


@dataclass(frozen=True)
class Part:
    """A chart directory in an upstream git repository at a tag or commit."""

    repo: str  # owner/name, the mirror's folder owner+name
    ref: str
    path: str
    stamp: str | None = None  # version and appVersion the release build writes into Chart.yaml
    values: dict[str, Any] = field(default_factory=dict)  # values.yaml edits of the release build (dotted paths)
    template: dict[str, str] | None = None  # values.tmpl.yaml -> values.yaml with these substitutions


@dataclass(frozen=True)
class Source:
    """A pinned chart and its pinned dependency subcharts (by dependency name); `drop`: dependencies left out, why."""

    chart: Part
    subcharts: dict[str, Part] = field(default_factory=dict)
    drop: dict[str, str] = field(default_factory=dict)


# IMAGE_REGISTRY of a promoted release (kubernetes-sigs/kueue hack/helm-chart-package.sh)
KUEUE = "registry.k8s.io/kueue"
SOURCES: dict[tuple[str, str], Source] = {
    # NFD subcharts are vendored in deployments/gpu-operator/charts at both tags (0.19.0 and 0.17.2, the
    # Chart.yaml dependency versions); .github/workflows/release-rc-assets.yaml: helm package --version
    # --app-version ${RELEASE_TAG}.
    ("gpu-operator", "v26.7.0"): Source(Part("NVIDIA/gpu-operator", "v26.7.0", "deployments/gpu-operator",
                                             stamp="v26.7.0")),
    ("gpu-operator", "v26.3.3"): Source(Part("NVIDIA/gpu-operator", "v26.3.3", "deployments/gpu-operator",
                                             stamp="v26.3.3")),
    ("gpu-operator", "v25.10.1"): Source(Part("NVIDIA/gpu-operator", "v25.10.1", "deployments/gpu-operator",
                                              stamp="v25.10.1")),
    ("gpu-operator", "v25.3.0"): Source(Part("NVIDIA/gpu-operator", "v25.3.0", "deployments/gpu-operator",
                                             stamp="v25.3.0")),
    # make/manifests.mk: yq sets .version and .appVersion to the release version.
    ("cert-manager", "v1.21.1"): Source(Part("cert-manager/cert-manager", "v1.21.1", "deploy/charts/cert-manager",
                                             stamp="v1.21.1")),
    ("kserve-crd", "v0.20.0"): Source(Part("kserve/kserve", "v0.20.0", "charts/kserve-crd")),
    ("kserve-resources", "v0.20.0"): Source(Part("kserve/kserve", "v0.20.0", "charts/kserve-resources")),
    # tools/make/helm.mk: envsubst of values.tmpl.yaml (GatewayImage=${IMAGE}:${TAG}), helm package --version
    # --app-version ${TAG}; the crds subchart is vendored.
    ("gateway-helm", "v1.9.0"): Source(Part(
        "envoyproxy/gateway", "v1.9.0", "charts/gateway-helm", stamp="v1.9.0",
        template={"GatewayImage": "docker.io/envoyproxy/gateway:v1.9.0", "GatewayImagePullPolicy": "IfNotPresent"})),
    # Makefile helm-package: helm package --app-version ${TAG} --version ${HELM_CHART_VERSION}.
    ("ai-gateway-crds-helm", "v1.1.0"): Source(Part("envoyproxy/ai-gateway", "v1.1.0",
                                                    "manifests/charts/ai-gateway-crds-helm", stamp="v1.1.0")),
    ("ai-gateway-helm", "v1.1.0"): Source(Part("envoyproxy/ai-gateway", "v1.1.0", "manifests/charts/ai-gateway-helm",
                                               stamp="v1.1.0")),
    # hack/helm-chart-package.sh: the released images, IfNotPresent; chart version without the v.
    ("kueue", "0.19.2"): Source(Part("kubernetes-sigs/kueue", "v0.19.2", "charts/kueue", values={
        "controllerManager.manager.image": {"repository": f"{KUEUE}/kueue", "tag": "v0.19.2",
                                            "pullPolicy": "IfNotPresent"},
        "kueueViz.backend.image": {"repository": f"{KUEUE}/kueueviz-backend", "tag": "v0.19.2",
                                   "pullPolicy": "IfNotPresent"},
        "kueueViz.frontend.image": {"repository": f"{KUEUE}/kueueviz-frontend", "tag": "v0.19.2",
                                    "pullPolicy": "IfNotPresent"}})),
    ("harbor", "1.19.1"): Source(Part("goharbor/harbor-helm", "v1.19.1", "")),
    ("kube-prometheus-stack", "88.5.3"): Source(
        Part("prometheus-community/helm-charts", "kube-prometheus-stack-88.5.3", "charts/kube-prometheus-stack"),
        subcharts={
            "kube-state-metrics": Part("prometheus-community/helm-charts", "kube-state-metrics-8.4.0",
                                       "charts/kube-state-metrics"),
            "prometheus-node-exporter": Part("prometheus-community/helm-charts", "prometheus-node-exporter-4.56.1",
                                             "charts/prometheus-node-exporter"),
            # 0.12.*: the newest 0.12 release (disabled: windowsMonitoring.enabled is false in every stack)
            "prometheus-windows-exporter": Part("prometheus-community/helm-charts",
                                                "prometheus-windows-exporter-0.12.8",
                                                "charts/prometheus-windows-exporter"),
            "grafana": Part("grafana-community/helm-charts", "grafana-12.11.1", "charts/grafana"),
        }),
    ("mlflow", "1.11.5"): Source(
        Part("community-charts/helm-charts", "mlflow-1.11.5", "charts/mlflow"),
        # minio/minio 43a74029 "update helm release v5.4.0" (helm/minio/Chart.yaml version 5.4.0)
        subcharts={"minio": Part("minio/minio", "43a740296", "helm/minio")},
        drop={"postgresql": "bitnami postgresql 18.8.12 is in no public git repository (bitnami/charts has "
                            "postgresql up to 17.1.0); the dev stack's bundled PostgreSQL is not rendered",
              "mysql": "disabled in every stack (mysql.enabled false)"}),
}


# ----------------------------------------------------------------------------------------------------- prepare


def git_archive(mirrors: Path, part: Part, into: Path) -> Path:
    """The chart directory of `part` extracted under `into` (a fresh folder)."""
    git_dir = mirrors / part.repo.replace("/", "+") / "repo"
    into.mkdir(parents=True)
    archive = subprocess.run(["git", f"--git-dir={git_dir}", "archive", "--format=tar", part.ref,
                              *([part.path] if part.path else [])], check=True, capture_output=True).stdout
    with tempfile.TemporaryFile() as tmp:
        tmp.write(archive)
        tmp.seek(0)
        with tarfile.open(fileobj=tmp) as tar:
            tar.extractall(into, filter="data")
    return into / part.path if part.path else into


def build(chart: Path, part: Part) -> None:
    """What the release build does to the chart directory before packaging it."""
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    if part.stamp:
        meta["version"], meta["appVersion"] = part.stamp.removeprefix("v") if meta.get("apiVersion") == "v1" \
            else part.stamp, part.stamp
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    if part.template is not None:
        text = (chart / "values.tmpl.yaml").read_text()
        for key, value in part.template.items():
            text = text.replace("${" + key + "}", value)
        (chart / "values.yaml").write_text(text)
    if part.values:
        values = yaml.safe_load((chart / "values.yaml").read_text())
        for path, edit in part.values.items():
            block = values
            for key in path.split("."):
                block = block.setdefault(key, {})
            block.update(edit)
        (chart / "values.yaml").write_text(yaml.safe_dump(values, sort_keys=False))


def prepare(mirrors: Path, out: Path) -> None:
    for (name, version), source in SOURCES.items():
        scratch = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=out))
        chart = git_archive(mirrors, source.chart, scratch / "src")
        build(chart, source.chart)
        for sub, part in source.subcharts.items():
            target = chart / "charts" / sub
            if target.exists():
                continue
            subchart = git_archive(mirrors, part, scratch / f"sub-{sub}")
            build(subchart, part)
            target.parent.mkdir(exist_ok=True)
            subchart.rename(target)
        if source.drop:
            meta = yaml.safe_load((chart / "Chart.yaml").read_text())
            meta["dependencies"] = [d for d in meta.get("dependencies", []) if d["name"] not in source.drop]
            (chart / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
        final = out / f"{name}-{version}"
        chart.rename(final)
        shutil.rmtree(scratch)
        meta = yaml.safe_load((final / "Chart.yaml").read_text())
        print(f"prepared {name} {version} from {source.chart.repo}@{source.chart.ref}:{source.chart.path or '.'}"
              f" (Chart.yaml {meta['name']} {meta['version']})"
              + "".join(f"; {s} from {p.repo}@{p.ref}:{p.path}" for s, p in source.subcharts.items())
              + "".join(f"; without {d}: {why}" for d, why in source.drop.items()))


# ------------------------------------------------------------------------------------------------------ verify


@dataclass
class Finding:
    check: str
    stack: str
    chart: str
    message: str

    def __str__(self) -> str:
        return f"({self.check}) {self.stack}: {self.chart}: {self.message}"


def chart_dirs(root: Path) -> dict[tuple[str, str], Path]:
    found = {}
    for meta_file in root.glob("*/Chart.yaml"):
        meta = yaml.safe_load(meta_file.read_text())
        found[(meta["name"], str(meta["version"]))] = meta_file.parent
    return found


def leaves(values: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(values, dict) and values:
        for key, item in values.items():
            yield from leaves(item, (*path, str(key)))
    else:
        yield path, values


def with_value(values: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(values)
    block = out
    for key in path[:-1]:
        block = block[key]
    block[path[-1]] = value
    return out


def perturbed(value: Any, n: int) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 7
    if isinstance(value, list):
        return [] if value else ["pai-probe"]
    if value is None:
        return f"pai-probe-{n}"
    return f"pai-probe-{n}"


class Renderer:
    def __init__(self, charts: dict[tuple[str, str], Path], concurrency: int) -> None:
        self.client = helm_client()
        self.charts = charts
        self.limit = asyncio.Semaphore(concurrency)

    async def render(self, chart: Path, name: str, namespace: str, values: dict[str, Any]) -> list[dict[str, Any]]:
        async with self.limit:
            loaded = await self.client.get_chart(chart)
            objects = await self.client.template_resources(loaded, name, values, namespace=namespace,
                                                           include_crds=True)
            return [o for o in objects if isinstance(o, dict)]


async def unread_paths(renderer: Renderer, chart: Path, name: str, namespace: str, values: dict[str, Any],
                       base: str) -> list[str]:
    """(a): value paths whose change leaves the render byte for byte the same. Strings are probed all at once
    (a unique marker each, found in the render: read); the rest one render each."""
    paths = [(p, v) for p, v in leaves(values) if p]
    markers = {f"pai-probe-{i}": p for i, (p, v) in enumerate(paths) if isinstance(v, str)}
    probe = values
    for marker, path in markers.items():
        probe = with_value(probe, path, marker)
    try:
        text = json.dumps(await renderer.render(chart, name, namespace, probe))
        seen = {path for marker, path in markers.items() if marker in text}
    except Exception:
        seen = set()

    async def unread(i: int, path: tuple[str, ...], value: Any) -> str | None:
        try:
            changed = await renderer.render(chart, name, namespace, with_value(values, path, perturbed(value, i)))
        except Exception:
            return None  # the chart refuses the changed value: it reads it
        return ".".join(path) if json.dumps(changed, sort_keys=True) == base else None

    results = await asyncio.gather(*(unread(i, p, v) for i, (p, v) in enumerate(paths) if p not in seen))
    return [r for r in results if r]


def pod_specs(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Pod":
        yield spec
    elif obj.get("kind") == "CronJob":
        yield ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get("spec") or {}
    elif obj.get("kind") in WORKLOADS:
        yield (spec.get("template") or {}).get("spec") or {}


def secret_names(items: Any) -> set[str]:
    return {i["name"] if isinstance(i, dict) else str(i) for i in items or []}


def pull_secret_findings(objects: list[dict[str, Any]], registries: tuple[str, ...], secret: str,
                         node_os: str | None) -> Iterator[str]:
    """(d) for the pods a render makes and the operand pods operators make from its CRs."""
    accounts = {o["metadata"]["name"]: secret_names(o.get("imagePullSecrets")) for o in objects
                if o.get("kind") == "ServiceAccount"}
    for obj in objects:
        label = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        for spec in pod_specs(obj):
            images = [c.get("image", "") for key in ("initContainers", "containers") for c in spec.get(key) or []]
            if not any(i.startswith(registries) for i in images):
                continue
            secrets = secret_names(spec.get("imagePullSecrets")) | accounts.get(spec.get("serviceAccountName", ""),
                                                                                 set())
            if secret not in secrets:
                yield f"{label} pulls {', '.join(sorted(set(images)))} without the pull secret {secret}"
        if obj.get("kind") == "ClusterPolicy":
            # Each operand pod takes the imagePullSecrets of its own ClusterPolicy section (the driver manager and
            # validator init containers run in the section's pods): NVIDIA/gpu-operator controllers/transforms.go.
            for section, block in sorted((obj.get("spec") or {}).items()):
                if not isinstance(block, dict) or block.get("enabled") is False:
                    continue
                named = [ref for ref, _ in images_in({"kind": "x", "spec": {section: block}}, node_os)]
                if any(r.startswith(registries) for r in named) and secret not in secret_names(
                        block.get("imagePullSecrets")):
                    yield f"{label} spec.{section} pulls {', '.join(named)} without the pull secret {secret}"
        elif obj.get("kind") in ("Prometheus", "Alertmanager", "ThanosRuler"):
            spec = obj.get("spec") or {}
            if str(spec.get("image", "")).startswith(registries) and secret not in secret_names(
                    spec.get("imagePullSecrets")):
                yield f"{label} (its operator's pods) pulls {spec.get('image')} without the pull secret {secret}"


def document_findings(objects: list[dict[str, Any]]) -> Iterator[str]:
    """(e): ConfigMap and Secret entries that are JSON or YAML documents parse."""
    for obj in objects:
        if obj.get("kind") not in ("ConfigMap", "Secret"):
            continue
        for key, text in sorted({**(obj.get("data") or {}), **(obj.get("stringData") or {})}.items()):
            if obj.get("kind") == "Secret" and key in (obj.get("data") or {}):
                continue  # base64: not read here
            if not isinstance(text, str):
                continue
            label = f"{obj['kind']}/{obj['metadata']['name']} {key}"
            try:
                if key.endswith(".ini"):
                    configparser.ConfigParser(interpolation=None, strict=False).read_string(text)
                elif key.endswith(".json") or text.lstrip().startswith("{") or (
                        text.lstrip().startswith("[") and not key.endswith((".toml", ".conf", ".cfg"))):
                    json.loads(text)
                elif key.endswith((".yaml", ".yml")):
                    yaml.safe_load(text)
            except (ValueError, yaml.YAMLError, configparser.Error) as exc:
                yield f"{label} does not parse: {str(exc).splitlines()[0]}"


def release_inputs(records: list[Registered]) -> list[dict[str, Any]]:
    return [r.inputs for r in records if r.type == HELM_RELEASE]


def verify_stack(charts: dict[tuple[str, str], Path], stack: str, probe_values: bool, concurrency: int
                 ) -> tuple[list[Finding], list[Rendered]]:
    """Every check of one stack: the plans first (Pulumi's offline runner has its own event loop), then helm."""
    base, operator = VARIANTS.get(stack, (stack, None))
    stack_config = load_stack_file(stack_path(base), base)
    config = platform_config(stack_config)
    if operator and config.gpu:
        gpu = config.gpu.model_copy(update={"operator": config.gpu.operator.model_copy(update={"version": operator})})
        config = config.model_copy(update={"gpu": gpu})
    records = upstream_plan(config)
    bom = bill_of_materials(config, records)
    own = release_inputs(plan(stack_config)) if config.registry.mirror else []
    findings, rendered, named = asyncio.run(render_stack(Renderer(charts, concurrency), stack, config,
                                                         release_inputs(records), own, probe_values))
    return findings + [Finding("b", stack, d.chart, str(d)) for d in differences(bom, rendered)], named


async def render_stack(renderer: Renderer, stack: str, config: Any, upstream: list[dict[str, Any]],
                       own: list[dict[str, Any]], probe_values: bool
                       ) -> tuple[list[Finding], list[Rendered], list[Rendered]]:
    node_os = config.gpu.driver.os if config.gpu else None
    findings: list[Finding] = []
    rendered: list[Rendered] = []
    named: list[Rendered] = []
    for inputs in upstream:
        source = chart_source(inputs)[1]
        label = f"{source.chart} {source.version}"
        chart = renderer.charts.get((source.chart, source.version))
        if chart is None:
            findings.append(Finding("-", stack, label, "no chart directory prepared for it"))
            continue
        name, namespace, values = str(inputs["name"]), inputs.get("namespace") or "default", inputs.get("values") or {}
        objects = await renderer.render(chart, name, namespace, values)
        for obj in objects:
            rendered += [Rendered(ref, label, where) for ref, where in images_in(obj, node_os)]
            named += [Rendered(ref, label, where) for ref, where in images_in(obj, node_os, disabled=True)]
        findings += [Finding("e", stack, label, m) for m in document_findings(objects)]
        if probe_values and (stack in STACKS or source.chart == "gpu-operator"):  # a variant: only its operator
            base = json.dumps(objects, sort_keys=True)
            findings += [Finding("a", stack, label, f"values {p}: no template reads it (the render is the same "
                                 "whatever it is)") for p in await unread_paths(renderer, chart, name, namespace,
                                                                                 values, base)]
    if own:
        findings += await airgap_findings(renderer, own, config, node_os)
    return findings, rendered, named


async def airgap_findings(renderer: Renderer, own: list[dict[str, Any]], config: Any, node_os: str | None
                          ) -> list[Finding]:
    """(c) and (d) on the stack's own plan (the mirror set)."""
    registries = tuple(f"{r}/" for r in (config.registry.mirror, config.registry.bootstrap) if r)
    local = (config.gpu.driver.image + ":",) if config.gpu and config.gpu.driver.image else ()
    findings = []
    for inputs in own:
        chart_name = inputs["chart"].rsplit("/", 1)[-1]
        label = f"{chart_name} {inputs['version']}"
        chart = renderer.charts[(chart_name, inputs["version"])]
        objects = await renderer.render(chart, inputs["name"], inputs.get("namespace") or "default",
                                        inputs.get("values") or {})
        for obj in objects:
            for ref, where in images_in(obj, node_os):
                if not ref.startswith(registries + local):
                    findings.append(Finding("c", "airgap", label, f"{where} pulls {ref}, outside the mirror and the "
                                            "bootstrap registry"))
        secret = config.registry.pullSecret or ""
        findings += [Finding("d", "airgap", label, m)
                     for m in pull_secret_findings(objects, registries + local, secret, node_os)]
    return findings


async def extra_images(renderer: Renderer) -> list[Rendered]:
    """The images of the parts no bundled stack turns on (EXTRA), as the pinned charts name them."""
    named = []
    for (chart, version), values in EXTRA.items():
        objects = await renderer.render(renderer.charts[(chart, version)], "extra", "default", values)
        named += [Rendered(ref, f"{chart} {version}", where) for obj in objects
                  for ref, where in images_in(obj, "ubuntu22.04", disabled=True)]
    return named


def verify(charts: Path, stacks: list[str], probe_values: bool, concurrency: int) -> int:
    dirs = chart_dirs(charts)
    findings: list[Finding] = []
    named: list[Rendered] = asyncio.run(extra_images(Renderer(dirs, concurrency)))
    for stack in stacks:
        found, images = verify_stack(dirs, stack, probe_values, concurrency)
        findings += found
        named += images
        print(f"== {stack}: {len({r.chart for r in images})} charts rendered, {len(found)} findings")
        for finding in found:
            print(f"  {finding}")
    verified = sorted({(r.chart, r.ref) for r in named})
    print(f"== images rendered (any stack), {len(verified)}:")
    for chart, ref in verified:
        print(f"  {chart}: {ref}")
    unrendered = sorted({(chart, ref) for chart, _, ref, _ in catalog_images()} - set(verified))
    print(f"== catalog images no render names, {len(unrendered)}:")
    for chart, ref in unrendered:
        print(f"  {chart}: {ref}")
    unmarked = marks(set(verified))
    print(f"== catalog marks, {len(unmarked)} findings")
    for finding in unmarked:
        print(f"  {finding}")
    findings += unmarked
    print(f"== {len(findings)} findings")
    return 1 if findings else 0


def marks(rendered: set[tuple[str, str]]) -> list[Finding]:
    """The catalog's `verified` marks against the renders: every chart image a render names carries
    `verified: rendered <chart>@<version>`, and only those."""
    out = []
    for chart, path, ref, image in catalog_images():
        mark = f"rendered {chart.replace(' ', '@')}"
        if (chart, ref) in rendered and image.verified != mark:
            out.append(Finding("b", "catalog", chart, f"{path} {image.ref} is rendered: mark it {mark!r}"))
        elif (chart, ref) not in rendered and image.verified:
            out.append(Finding("b", "catalog", chart, f"{path} {image.ref} is marked {image.verified!r}, but no "
                               "render names it"))
    return out


def catalog_images() -> Iterator[tuple[str, str, str, ChartImage]]:
    """(chart version, values path, reference as pulled on ubuntu22.04 nodes, image) of every catalog chart image."""
    for pin in CATALOG.charts.values():
        for version in list(pin.versions) or [pin.version]:
            for path, image in pin.images_at(version).items():
                suffixed = pin.chart == "gpu-operator" and path in OS_SUFFIXED
                yield f"{pin.chart} {version}", path, f"{image.ref}-ubuntu22.04" if suffixed else image.ref, image


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser("prepare", help="chart directories from bare git mirrors of the upstream repos")
    prep.add_argument("--mirrors", type=Path, required=True, help="folder of <owner>+<name>/repo bare git mirrors")
    prep.add_argument("--out", type=Path, required=True)
    check = commands.add_parser("verify", help="render and check; exit 1 on any finding")
    check.add_argument("--charts", type=Path, required=True, help="the prepared chart directories")
    check.add_argument("--stack", action="append", choices=[*STACKS, *VARIANTS],
                       help="default: every bundled stack and variant")
    check.add_argument("--no-value-probe", action="store_true", help="skip (a): one render per value path")
    check.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    if args.command == "prepare":
        args.out.mkdir(parents=True, exist_ok=True)
        prepare(args.mirrors, args.out)
        return 0
    return verify(args.charts, args.stack or [*STACKS, *VARIANTS], not args.no_value_probe, args.concurrency)


if __name__ == "__main__":
    sys.exit(main())
