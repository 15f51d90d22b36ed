"""The version catalog (catalog.yaml): every chart and image the platform installs, pinned."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, field_validator

CATALOG_FILE = Path(__file__).with_name("catalog.yaml")


class Pinned(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str | None = None
    unverified: bool = False


def _no_latest(value: str) -> str:
    if value == "latest":
        raise ValueError("the tag 'latest' is not a pin")
    return value


class ChartImage(BaseModel):
    """An image a chart deploys: its full repository (registry host first), tag and digest once resolved."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repository: str
    tag: str
    digest: str | None = None
    unverified: bool = False  # the tag was not read from the pinned chart's own values
    source: str | None = None  # where the tag was read, when not the chart's own values (a subchart's release)
    # `rendered <chart>@<version>`: scripts/verify-charts.py found this image, at this tag, in the render of the
    # pinned chart read from its upstream repository at the pinned tag.
    verified: str | None = None

    @property
    def registry(self) -> str:
        return self.repository.split("/", 1)[0]

    @property
    def path(self) -> str:
        """The repository without its registry host."""
        return self.repository.split("/", 1)[1]

    _tag = field_validator("tag")(_no_latest)

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}" + (f"@{self.digest}" if self.digest else "")


class OperatorRelease(BaseModel):
    """One release of a chart the catalog pins several of (the GPU Operator): its default driver and the
    images it deploys, keyed by values path as in `ChartPin.images`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    defaultDriver: str
    images: dict[str, ChartImage] = {}
    # The release's chart as an OCI artifact, where one is published (the air-gap mirror copies it from there;
    # installs keep the chart's classic repository, which has every release).
    oci: str | None = None


class ChartPin(Pinned):
    """A Helm chart at one version, from a classic repository and/or an OCI registry."""

    chart: str
    version: str
    repo: str | None = None
    oci: str | None = None
    versions: dict[str, OperatorRelease] = {}
    # The images the chart deploys at this version, keyed by the Helm values path of each image block
    # (e.g. `core.image`): what the air-gap bill of materials lists and what air-gap mode rewrites.
    images: dict[str, ChartImage] = {}
    # OCI artifacts that are not images and that the chart's workloads pull at run time (Harbor's Trivy databases),
    # keyed by the values path naming their repository: listed in the bill of materials and mirrored like images.
    artifacts: dict[str, ChartImage] = {}

    def at(self, version: str) -> ChartPin:
        """The same chart pinned at another catalog version."""
        if version not in self.versions:
            raise KeyError(f"{self.chart} {version} is not in the catalog ({', '.join(self.versions)})")
        return self.model_copy(update={"version": version})

    def images_at(self, version: str) -> dict[str, ChartImage]:
        """The images this chart deploys at `version`: the release's own where the catalog pins several."""
        if version in self.versions:
            return self.versions[version].images
        if version != self.version:
            raise KeyError(f"{self.chart} {version} is not in the catalog ({self.version})")
        return self.images

    def source_for(self, mirror: str | None) -> tuple[str, str | None]:
        """(chart, repo) as helm.v3.Release takes them: the mirror's OCI path in air-gap mode."""
        if mirror:
            return f"oci://{mirror}/charts/{self.chart}", None
        if self.oci:
            return self.oci, None
        return self.chart, self.repo


class ImagePin(Pinned):
    """A container image at one tag (and digest, once resolved)."""

    repository: str
    tag: str
    digest: str | None = None
    cuda: str | None = None

    _tag = field_validator("tag")(_no_latest)

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}" + (f"@{self.digest}" if self.digest else "")


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    charts: dict[str, ChartPin]
    images: dict[str, ImagePin]

    def chart(self, key: str) -> ChartPin:
        return self.charts[key]

    def image(self, key: str) -> ImagePin:
        return self.images[key]


@cache
def load_catalog(path: Path = CATALOG_FILE) -> Catalog:
    return Catalog.model_validate(yaml.safe_load(path.read_text()))


CATALOG = load_catalog()
