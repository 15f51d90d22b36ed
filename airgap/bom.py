"""The air-gap bill of materials: every image, chart and model artifact a stack needs, read from the stack's
offline plan (the Helm releases and objects it emits) and the catalog (the images each chart deploys).

The plan is run with the mirror unset, so every reference in it is the upstream one a mirror copies from; in
air-gap mode the same plan renders each of them as `components.values.mirrored(ref, mirror)`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

import pulumi

from components.catalog import CATALOG, ChartPin
from components.config import PlatformConfig, Secrets
from components.gpu_operator import OS_SUFFIXED, driver_image
from components.images import normalized
from components.platform import Platform, PlatformArgs
from program.offline import Registered, StackConfig, run_offline
from program.plan import HELM_RELEASE, chart_pin, image_references, is_kubernetes_object

Kind = Literal["image", "chart", "model", "artifact"]  # artifact: an OCI artifact a workload pulls (Trivy's DBs)
# resolved: pinned by digest; unresolved: by tag only; unverified: by a tag the catalog could not read from the
# pinned chart or release (confirm it, e.g. with helm template, before mirroring); local: already in the site's
# private registry (the customer-built vGPU guest driver), never mirrored from upstream; not-mirrorable: a model
# in S3 or on a PVC.
Status = Literal["resolved", "unresolved", "unverified", "local", "not-mirrorable"]
MIRRORED: tuple[Status, ...] = ("resolved", "unresolved", "unverified")
PLACEHOLDER = "bom-placeholder"
DIGEST = "@sha256:"


class BomError(Exception):
    """A plan names something the bill of materials cannot account for (a chart outside the catalog)."""


@dataclass(frozen=True)
class Entry:
    """One artifact: its reference, whether it is pinned by digest, and what in the stack needs it."""

    kind: Kind
    ref: str
    status: Status
    origins: tuple[str, ...]


@dataclass(frozen=True)
class ChartSource:
    """A Helm chart at one version: from an OCI registry, else from a classic repository."""

    chart: str
    version: str
    oci: str | None = None
    repo: str | None = None

    @property
    def ref(self) -> str:
        """`oci://host/path:version`, or for a chart only in a classic repository `<repo URL>#<chart>:<version>`
        (e.g. the GPU Operator v25.3.0); a chart in both is mirrored from OCI."""
        return f"{self.oci}:{self.version}" if self.oci else f"{self.repo}#{self.chart}:{self.version}"


@dataclass(frozen=True)
class Bom:
    """What a stack needs. `images`, `charts`, `models`: the references to mirror, sorted and unique (the local
    vGPU driver and S3/PVC models are in `entries` only); `entries`: every artifact with its status and origins."""

    images: list[str]
    charts: list[str]
    models: list[str]
    entries: list[Entry] = field(default_factory=list)
    chart_sources: list[ChartSource] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)

    @property
    def unresolved(self) -> list[str]:
        """References pinned by tag only, not yet by digest."""
        return [e.ref for e in self.entries if e.status == "unresolved"]

    @property
    def unverified(self) -> list[str]:
        """References by a tag the catalog could not read from the pinned chart or release."""
        return [e.ref for e in self.entries if e.status == "unverified"]

    def pinned(self, digests: dict[str, str]) -> Bom:
        """The same bill with each reference in `digests` pinned to its digest: `unresolved` ones become
        `resolved`; `unverified` ones stay so (the digest is the tag's, which the chart may not render)."""
        entries = [replace(e, ref=f"{e.ref}@{digests[e.ref]}",
                           status="unverified" if e.status == "unverified" else "resolved")
                   if e.ref in digests and DIGEST not in e.ref else e for e in self.entries]
        return Bom(images=to_mirror(entries, "image"), charts=to_mirror(entries, "chart"),
                   models=to_mirror(entries, "model"), entries=entries, chart_sources=self.chart_sources,
                   artifacts=to_mirror(entries, "artifact"))

    def to_json(self) -> str:
        """Stable JSON: the same stack gives the same bytes."""
        body = {
            "images": self.images, "charts": self.charts, "models": self.models, "artifacts": self.artifacts,
            "entries": [{"kind": e.kind, "ref": e.ref, "status": e.status, "origins": list(e.origins)}
                        for e in self.entries],
            "summary": self.summary(),
        }
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    def to_table(self) -> str:
        """One line per artifact: kind, status, reference, then what needs it."""
        rows = [(e.kind, e.status, e.ref, ", ".join(e.origins)) for e in self.entries]
        widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(("KIND", "STATUS", "REFERENCE"))]
        lines = ["  ".join(h.ljust(w) for h, w in zip(("KIND", "STATUS", "REFERENCE"), widths, strict=True))
                 + "  NEEDED BY"]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + f"  {r[3]}" for r in rows]
        counts = self.summary()
        lines.append(", ".join(f"{n} {k}" for k, n in counts.items()))
        return "\n".join(lines) + "\n"

    def summary(self) -> dict[str, int]:
        return {"images": len(self.images), "charts": len(self.charts), "models": len(self.models),
                "artifacts": len(self.artifacts),
                "unresolved": len(self.unresolved), "unverified": len(self.unverified),
                "local": sum(e.status == "local" for e in self.entries),
                "not-mirrorable": sum(e.status == "not-mirrorable" for e in self.entries)}


def bill_of_materials(config: PlatformConfig, records: list[Registered] | None = None) -> Bom:
    """Every image, chart and model artifact the platform this config describes needs (from its upstream plan's
    `records` where the caller has them)."""
    return collect(config, upstream_plan(config) if records is None else records)


def upstream_plan(config: PlatformConfig) -> list[Registered]:
    """The records of the platform's offline plan with the mirror unset: every reference upstream."""

    def program() -> None:
        # The caller's secrets belong to the run that parsed them (or were never set, in a config built by hand):
        # every secret stands in as a placeholder, marked secret. Secrets never name an image, chart or model.
        secrets = Secrets(**{f.name: pulumi.Output.secret(PLACEHOLDER) for f in fields(Secrets)})
        Platform("platform", PlatformArgs(config=upstream(config.model_copy(update={"secrets": secrets}))))

    return run_offline(program, StackConfig(stack="bom"))


def stack_bill_of_materials(stack: StackConfig) -> Bom:
    """The bill of materials of a stack file."""
    return bill_of_materials(platform_config(stack))


def platform_config(stack: StackConfig) -> PlatformConfig:
    """A stack file's config parsed as the program parses it (a ConfigError names the stack file and key), without
    its secrets: no Output outlives the offline run that made it, and secrets never name an artifact."""
    parsed: list[PlatformConfig] = []
    run_offline(lambda: parsed.append(PlatformConfig.from_pulumi().model_copy(update={"secrets": Secrets()})), stack)
    return parsed[0]


def upstream(config: PlatformConfig) -> PlatformConfig:
    """The same platform with the mirror (and bootstrap registry) unset: every reference its plan renders is the
    upstream one."""
    return config.model_copy(update={"registry": config.registry.model_copy(update={"mirror": None,
                                                                                   "bootstrap": None})})


def collect(config: PlatformConfig, records: list[Registered]) -> Bom:
    """The bill of materials from the upstream plan's records and the config's runtimes and models."""
    found = _Collector()
    node_os = config.gpu.driver.os if config.gpu else None
    for record in records:
        if record.type == HELM_RELEASE:
            _release(record, found, node_os, vgpu=bool(config.gpu and config.gpu.driver.mode == "vgpu"))
        elif is_kubernetes_object(record):
            kind, name = record.inputs["kind"], record.inputs.get("metadata", {}).get("name", record.name)
            for ref in image_references(record.inputs):
                found.image(normalized(ref), f"{kind}/{name}")
    for engine in sorted({m.resolved_engine for m in config.models}):
        key = getattr(config.runtimes, engine).image
        unverified = key in CATALOG.images and CATALOG.image(key).unverified
        found.image(config.runtimes.image(engine), f"runtime {engine}", unverified=unverified)
    for model in config.models:
        oci = model.source.startswith("oci://")
        found.add("model", model.source, _status(model.source) if oci else "not-mirrorable", f"model {model.name}")
    return found.bom()


def value_references(values: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(values path, reference) of every Helm value that names an image or a registry: a `repository` (behind its
    sibling `registry` where there is one), a lone `registry`, and an `image` string unless it is only the name
    under a sibling `repository` (the GPU Operator's `repository` + `image` + `version` blocks), and a chart-wide
    `imageRegistry`."""
    if isinstance(values, list):
        for i, item in enumerate(values):
            yield from value_references(item, f"{path}[{i}]")
        return
    if not isinstance(values, dict):
        return
    prefix = f"{path}." if path else ""
    registry, repository, image = (values.get(k) for k in ("registry", "repository", "image"))
    if isinstance(repository, str) and repository:
        full = f"{registry}/{repository}" if isinstance(registry, str) and registry else repository
        yield f"{prefix}repository", full
    elif isinstance(registry, str) and registry:
        yield f"{prefix}registry", registry
    if isinstance(values.get("imageRegistry"), str) and values["imageRegistry"]:
        yield f"{prefix}imageRegistry", values["imageRegistry"]  # a chart-wide registry (global.imageRegistry)
    if isinstance(image, str) and image and ("/" in image or not repository):
        yield f"{prefix}image", image
    for key, item in values.items():
        if isinstance(item, dict | list):
            yield from value_references(item, f"{prefix}{key}")


def is_full_reference(ref: str) -> bool:
    """A reference that names one image: a tag or a digest after the last path segment."""
    return DIGEST in ref or ":" in ref.rsplit("/", 1)[-1]


def catalog_pin(chart: str, version: str) -> ChartPin:
    """The catalog's pin of a chart a release installs, by chart name (the last path segment of an OCI source)."""
    pin = chart_pin(chart, version)
    if pin is not None:
        return pin
    raise BomError(f"the plan installs chart {chart} {version}, which is not in components/catalog.yaml")


def chart_source(inputs: dict[str, Any]) -> tuple[ChartPin, ChartSource]:
    """The catalog pin of a Helm release's chart and where the chart is fetched from."""
    pin = catalog_pin(inputs["chart"], inputs["version"])
    release = pin.versions.get(pin.version)
    oci = inputs["chart"] if inputs["chart"].startswith("oci://") else release.oci if release else None
    return pin, ChartSource(chart=pin.chart, version=pin.version, oci=oci,
                            repo=(inputs.get("repositoryOpts") or {}).get("repo"))


def _release(record: Registered, found: _Collector, node_os: str | None, vgpu: bool) -> None:
    inputs = record.inputs
    pin, source = chart_source(inputs)
    origin = f"chart {pin.chart} {pin.version}"
    found.chart(source, f"release {inputs.get('name', record.name)}")
    for path, image in sorted(pin.images_at(pin.version).items()):
        suffixed = pin.chart == "gpu-operator" and node_os and path in OS_SUFFIXED and not image.digest
        found.image(f"{image.ref}-{node_os}" if suffixed else image.ref, f"{origin}: {path}",
                    unverified=image.unverified)
    for path, artifact in sorted(pin.artifacts.items()):
        found.add("artifact", artifact.ref, _status(artifact.ref), f"{origin}: {path}")
    values = inputs.get("values") or {}
    for path, ref in value_references(values):
        if is_full_reference(ref):
            found.image(normalized(ref), f"{origin}: values {path}")
    driver = driver_image(values, node_os) if pin.chart == "gpu-operator" and node_os else None
    if driver is not None:  # in vgpu mode the customer-built guest driver, already in the private registry
        found.add("image", driver, "local" if vgpu else _status(driver), f"{origin}: driver")


def _status(ref: str, unverified: bool = False) -> Status:
    return "resolved" if DIGEST in ref else "unverified" if unverified else "unresolved"


class _Collector:
    """Entries by reference without digest: one entry per artifact, the digest kept where any source has it."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], Entry] = {}
        self.sources: dict[str, ChartSource] = {}

    def image(self, ref: str, origin: str, unverified: bool = False) -> None:
        self.add("image", ref, _status(ref, unverified), origin)

    def chart(self, source: ChartSource, origin: str) -> None:
        self.sources[source.ref] = source
        self.add("chart", source.ref, "unresolved", origin)

    def add(self, kind: Kind, ref: str, status: Status, origin: str) -> None:
        key = (kind, ref.split(DIGEST)[0])
        before = self.entries.get(key)
        origins: tuple[str, ...] = (origin,)
        if before is not None:
            origins = tuple(sorted({*before.origins, origin}))
            ref = ref if DIGEST in ref else before.ref
            special = [s for s in (before.status, status) if s in ("local", "not-mirrorable")]
            status = special[0] if special else _status(ref, "unverified" in (before.status, status))
        self.entries[key] = Entry(kind, ref, status, origins)

    def bom(self) -> Bom:
        entries = sorted(self.entries.values(), key=lambda e: (e.kind, e.ref))
        charts = to_mirror(entries, "chart")
        return Bom(images=to_mirror(entries, "image"), charts=charts, models=to_mirror(entries, "model"),
                   entries=entries, chart_sources=[self.sources[r] for r in charts],
                   artifacts=to_mirror(entries, "artifact"))


def to_mirror(entries: list[Entry], kind: Kind) -> list[str]:
    """The references of one kind to mirror, sorted and unique."""
    return sorted({e.ref for e in entries if e.kind == kind and e.status in MIRRORED})
