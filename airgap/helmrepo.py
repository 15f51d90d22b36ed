"""Charts only in a classic Helm repository (index.yaml + .tgz), packaged as the OCI artifact `helm push` makes
(config: the Chart.yaml metadata as JSON; one layer: the .tgz) so they travel to the mirror like any other."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from airgap.oci import (
    CHUNK,
    OCI_MANIFEST,
    BadInput,
    Chunk,
    DigestMismatch,
    Job,
    Manifest,
    OciError,
    Reference,
    Repo,
    Source,
    file_chunks,
)

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CONTENT = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
MAX_INDEX = 256 * 2**20


def classic_job(text: str) -> Job:
    """`<repo URL>#<chart>:<version>` -> a job landing at charts/<chart>:<version>."""
    url, _, pin = text.partition("#")
    chart, _, version = pin.partition(":")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not chart or not version:
        raise ValueError(f"{text!r} is not a classic chart reference <repo URL>#<chart>:<version>")
    source = Reference(parts.netloc, f"{parts.path.strip('/')}/{chart}".strip("/"), version)
    return Job(source, f"charts/{chart}", chart_repo=url.rstrip("/"))


class ClassicCharts:
    """A `Source` serving classic charts as OCI artifacts and everything else from `registries`."""

    def __init__(self, registries: Source, jobs: list[Job], *, plain_http: bool = False):
        self.registries = registries
        self.workdir = tempfile.TemporaryDirectory(prefix="pai-charts-")
        self.manifests: dict[tuple[str | None, str, str], Manifest] = {}
        self.blobs: dict[str, Path] = {}
        for job in jobs:
            if job.chart_repo:
                self._package(job, plain_http)

    def close(self) -> None:
        self.workdir.cleanup()

    def _open(self, url: str, plain_http: bool) -> Any:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "http" and not (plain_http and parts.hostname in ("127.0.0.1", "localhost", "::1")):
            raise OciError(f"{url}: plain HTTP is only for loopback chart repositories with --plain-http")
        try:
            return urllib.request.urlopen(url, timeout=60)
        except OSError as exc:
            raise OciError(f"{url}: {exc}") from exc

    def _package(self, job: Job, plain_http: bool) -> None:
        chart, version = job.path.removeprefix("charts/"), str(job.source.tag)
        with self._open(f"{job.chart_repo}/index.yaml", plain_http) as resp:
            text = resp.read(MAX_INDEX)
        try:
            index = yaml.safe_load(text)
            entry = next((e for e in index.get("entries", {}).get(chart, []) if str(e.get("version")) == version),
                         None)
            urls = entry.get("urls") if entry else None
        except (yaml.YAMLError, AttributeError, TypeError) as exc:
            raise BadInput(f"{job.chart_repo}/index.yaml: not a Helm repository index ({type(exc).__name__})") from exc
        if entry is None or not urls or not isinstance(urls, list):
            raise OciError(f"{job.chart_repo}: no chart {chart} at version {version} in its index.yaml")
        url = urllib.parse.urljoin(f"{job.chart_repo}/", str(urls[0]))
        tgz = Path(self.workdir.name) / f"{chart}-{version}.tgz"
        hasher = hashlib.sha256()
        with self._open(url, plain_http) as resp, open(tgz, "wb") as out:
            while chunk := resp.read(CHUNK):
                hasher.update(chunk)
                out.write(chunk)
        content = "sha256:" + hasher.hexdigest()
        if entry.get("digest") and content != f"sha256:{entry['digest']}":
            raise DigestMismatch(f"{url}: hashes to {content}, its index.yaml says sha256:{entry['digest']}")
        config = json.dumps(_chart_metadata(tgz, chart), sort_keys=True, separators=(",", ":")).encode()
        config_path = Path(self.workdir.name) / f"{chart}-{version}.json"
        config_path.write_bytes(config)
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        self.blobs[content], self.blobs[config_digest] = tgz, config_path
        body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": HELM_CONFIG, "digest": config_digest, "size": len(config)},
                "layers": [{"mediaType": HELM_CONTENT, "digest": content, "size": tgz.stat().st_size}],
                "annotations": {"org.opencontainers.image.title": chart,
                                "org.opencontainers.image.version": version,
                                "org.opencontainers.image.source": url}}
        data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        self.manifests[(job.source.host, job.source.path, version)] = Manifest(data, OCI_MANIFEST)

    def manifest(self, repo: Repo, ref: str) -> Manifest | None:
        packaged = self.manifests.get((repo.host, repo.path, ref))
        if packaged:
            return packaged
        if any(m.digest == ref for m in self.manifests.values()):
            return next(m for m in self.manifests.values() if m.digest == ref)
        if (repo.host, repo.path) in {(h, p) for h, p, _ in self.manifests}:
            return None  # no fallback tags or platforms for a packaged chart
        return self.registries.manifest(repo, ref)

    def blob_chunks(self, repo: Repo, digest: str, size: int, partial: Path | None = None) -> Iterator[Chunk]:
        path = self.blobs.get(digest)
        if path is None:
            return self.registries.blob_chunks(repo, digest, size, partial)
        return file_chunks(path, partial.stat().st_size if partial else 0)

    def referrers(self, repo: Repo, digest: str) -> list[dict[str, Any]] | None:
        if (repo.host, repo.path) in {(h, p) for h, p, _ in self.manifests}:
            return []
        return self.registries.referrers(repo, digest)


def _chart_metadata(tgz: Path, chart: str) -> dict[str, Any]:
    """<chart>/Chart.yaml from the package, as Helm writes it into the OCI config."""
    try:
        with tarfile.open(tgz, "r:gz") as tar:
            member = tar.extractfile(f"{chart}/Chart.yaml")
            if member is None:
                raise KeyError(chart)
            metadata = yaml.safe_load(io.TextIOWrapper(member, encoding="utf-8"))
    except (tarfile.TarError, KeyError, OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise BadInput(f"{tgz.name}: not a Helm chart package with {chart}/Chart.yaml ({exc})") from exc
    if not isinstance(metadata, dict):
        raise BadInput(f"{tgz.name}: {chart}/Chart.yaml is not a mapping")
    return metadata
