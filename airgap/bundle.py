"""Portable air-gap bundles: an OCI image layout inside a tar, every blob stored once, with an index
(pai-bundle.json) of the images it holds and the sha256 of every file.

Export stages the layout in `BUNDLE.tar.staging/` beside the tar (each blob written to a temporary name,
fsynced, renamed), so an interrupted export run again fetches only the blobs still missing. Import verifies
every file of the tar against the index before it pushes anything, and pushes only what the target lacks.

A delta bundle (export `since` an earlier bundle) leaves out the configs and layers the earlier one holds: its
index names that bundle and, for each blob left to it, a repository it lands in, which the import mounts from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tarfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airgap.helmrepo import ClassicCharts
from airgap.mirror import TerminalProgress
from airgap.oci import (
    CHUNK,
    OCI_INDEX,
    OCI_MANIFEST,
    Chunk,
    Copier,
    DigestMismatch,
    Job,
    Manifest,
    OciError,
    Reference,
    Registries,
    RegistryTarget,
    Repo,
    Stats,
    sha256_digest,
)

INDEX_FILE = "pai-bundle.json"
FORMAT = "pai-airgap-bundle/v1"
REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'


class BundleError(OciError):
    """A bundle that is missing, malformed or altered; the message names the file or blob."""


def _blob_path(root: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    return root / "blobs" / algorithm / hexdigest


def _write_atomic(path: Path, chunks: Iterable[Chunk]) -> None:
    """Write to a temporary name beside `path`, fsync, rename: a reader sees the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        with open(tmp, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class Base:
    """An earlier bundle a delta leaves blobs to: its file name, the sha256 of its index, and for each config and
    layer it holds (or leaves to its own base) a repository the blob lands in on import."""

    name: str
    sha256: str
    homes: dict[str, str]


def read_base(path: Path) -> Base:
    """The blobs an earlier bundle carries to a site, read from its manifests (the tar is not verified here: its
    import did that)."""
    source = BundleSource(path)
    homes = dict(source.base_homes)
    for job in source.jobs():
        for manifest in _manifests([job.ref], _loader(source, job)):
            homes.update({str(d["digest"]): job.path for d in manifest.blobs() if str(d["digest"]) not in homes})
    return Base(path.name, hashlib.sha256(source._read(INDEX_FILE)).hexdigest(), homes)


def _loader(source: BundleSource, job: Job) -> Callable[[str], Manifest]:
    """A job's manifests out of a bundle, by tag or digest; one it lists but lacks is an altered bundle."""
    def load(ref: str) -> Manifest:
        found = source.manifest(Repo(None, job.path), ref)
        if found is None:
            raise BundleError(f"{source.path}: {job.path}:{job.ref} is listed but its manifest is missing")
        return found
    return load


class LayoutTarget:
    """A `Target` writing an OCI image layout directory; tags become index.json entries named path:tag (and a
    ref "@sha256:..." an entry named path@sha256:...). Blobs in `leave` (a delta's base holds them) are not
    written."""

    def __init__(self, root: Path, leave: frozenset[str] = frozenset()):
        self.root, self.leave = root, leave
        self.entries: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        for stale in root.glob("blobs/sha256/.*.part"):
            stale.unlink()

    def has_manifest(self, repo: str, ref: str, digest: str) -> bool:
        return ref.startswith("sha256:") and self.has_blob(repo, digest)

    def put_manifest(self, repo: str, ref: str, manifest: Manifest) -> bool:
        if not self.has_blob(repo, manifest.digest):
            _write_atomic(_blob_path(self.root, manifest.digest), [manifest.data])
        if not ref.startswith("sha256:"):
            name = f"{repo}{ref}" if ref.startswith("@") else f"{repo}:{ref}"
            entry = {"mediaType": manifest.media_type or manifest.body.get("mediaType", OCI_MANIFEST),
                     "digest": manifest.digest, "size": len(manifest.data), "annotations": {REF_NAME: name}}
            with self._lock:
                self.entries[name] = entry
        return False

    def has_blob(self, repo: str, digest: str) -> bool:
        return _blob_path(self.root, digest).is_file()

    def ensure_blob(self, repo: str, digest: str, size: int, chunks: Callable[[], Iterable[Chunk]],
                    from_repo: str) -> str:
        if digest in self.leave or self.has_blob(repo, digest):
            return "skipped"
        _write_atomic(_blob_path(self.root, digest), chunks())
        return "moved"


def export(jobs: list[Job], out: Path, *, plain_http: bool = False, authfile: Path | None = None,
           workers: int = 8, progress: TerminalProgress | None = None, since: Path | None = None) -> Stats:
    """Copy every job into the bundle `out` (a tar); blobs already staged by an earlier run are not fetched, nor,
    given the bundle `since`, the configs and layers it holds."""
    base = read_base(since) if since else None
    staging = out.with_name(out.name + ".staging")
    (staging / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    registries = Registries(plain_http=plain_http, authfile=authfile)
    target = LayoutTarget(staging, frozenset(base.homes) if base else frozenset())
    source = ClassicCharts(registries, jobs, plain_http=plain_http)
    try:
        stats = Copier(source, target, workers=workers, progress=progress).run(jobs)
    finally:
        source.close()
        registries.close()
    for job in jobs:
        if not job.source.tag:
            target.put_manifest(job.path, "@" + stats.results[str(job.source)], Manifest(
                _blob_path(staging, stats.results[str(job.source)]).read_bytes(), ""))
    images = [{"source": str(job.source), "path": job.path, "ref": job.ref, "digest": stats.results[str(job.source)]}
              for job in jobs]
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": sorted(
        target.entries.values(), key=lambda e: str(e["annotations"][REF_NAME]))}
    _write_atomic(staging / "oci-layout", [LAYOUT])
    _write_atomic(staging / "index.json", [json.dumps(index, indent=1).encode()])
    files = {"oci-layout": _describe(LAYOUT), "index.json": _describe((staging / "index.json").read_bytes())}
    left: dict[str, str] = {}
    for blob in _reachable(staging, index):
        if base and blob in base.homes:
            left[blob] = base.homes[blob]
            continue
        files[f"blobs/sha256/{blob.removeprefix('sha256:')}"] = {
            "sha256": blob.removeprefix("sha256:"), "size": _blob_path(staging, blob).stat().st_size}
    body: dict[str, Any] = {"format": FORMAT, "images": images, "files": files}
    if base:
        body["base"] = {"bundle": base.name, "sha256": base.sha256, "blobs": left}
    listing = json.dumps(body, indent=1, sort_keys=True).encode()
    _write_atomic(staging / INDEX_FILE, [listing])
    _write_tar(staging, out, [INDEX_FILE, *sorted(files)])
    shutil.rmtree(staging)
    return stats


def _describe(data: bytes) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _manifests(tops: Iterable[str], load: Callable[[str], Manifest]) -> Iterator[Manifest]:
    """Each manifest reachable from `tops` (tags or digests), once: the tops and the platforms of every index."""
    seen: set[str] = set()
    pending = list(tops)
    while pending:
        digest = pending.pop()
        if digest in seen:
            continue
        seen.add(digest)
        manifest = load(digest)
        pending += [str(d["digest"]) for d in manifest.children()]
        yield manifest


def _reachable(root: Path, index: dict[str, Any]) -> set[str]:
    """Every blob the index reaches (manifests, platforms, configs, layers): what the tar carries."""
    seen: set[str] = set()
    tops = [str(e["digest"]) for e in index["manifests"]]
    for manifest in _manifests(tops, lambda digest: Manifest(_blob_path(root, digest).read_bytes(), "")):
        seen.add(manifest.digest)
        seen.update(str(d["digest"]) for d in manifest.blobs())
    return seen


def _write_tar(staging: Path, out: Path, names: list[str]) -> None:
    tmp = out.with_name(f".{out.name}.part")
    with open(tmp, "wb") as raw:
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in names:
                path = staging / name
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = path.stat().st_size, 0o644, 0
                with open(path, "rb") as f:
                    tar.addfile(info, f)
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, out)


@dataclass(frozen=True)
class _Member:
    offset: int
    size: int


class BundleSource:
    """A `Source` reading blobs straight out of a bundle tar, verified as they are read."""

    def __init__(self, path: Path):
        self.path = path
        try:
            with tarfile.open(path, mode="r:") as tar:
                self.members = {m.name: _Member(m.offset_data, m.size) for m in tar.getmembers() if m.isfile()}
        except (OSError, tarfile.TarError) as exc:
            raise BundleError(f"{path}: not a readable bundle tar ({exc})") from exc
        if INDEX_FILE not in self.members or "index.json" not in self.members:
            raise BundleError(f"{path}: not a paictl air-gap bundle (no {INDEX_FILE} or index.json)")
        self.listing: dict[str, Any] = json.loads(self._read(INDEX_FILE))
        if self.listing.get("format") != FORMAT:
            raise BundleError(f"{path}: {INDEX_FILE} format {self.listing.get('format')!r}, expected {FORMAT}")
        self.index: dict[str, Any] = json.loads(self._read("index.json"))
        self.by_name = {str(e["annotations"][REF_NAME]): str(e["digest"]) for e in self.index["manifests"]}
        base = self.listing.get("base") or {}
        self.base_name: str = base.get("bundle", "")
        self.base_homes: dict[str, str] = base.get("blobs", {})  # blobs left to the base: where they land

    def _read(self, name: str) -> bytes:
        return b"".join(self._chunks(name))

    def _chunks(self, name: str) -> Iterator[Chunk]:
        member = self.members[name]
        with open(self.path, "rb") as f:
            f.seek(member.offset)
            left = member.size
            while left:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    raise BundleError(f"{self.path}: {name} is cut short")
                left -= len(chunk)
                yield chunk

    def verify(self) -> None:
        """Every file the index lists is present with its sha256 and size, and nothing else is in the tar."""
        files: dict[str, dict[str, Any]] = self.listing["files"]
        extra = set(self.members) - set(files) - {INDEX_FILE}
        if extra:
            raise BundleError(f"{self.path}: files not in {INDEX_FILE}: {', '.join(sorted(extra))}")
        for name, expected in sorted(files.items()):
            label = "blob sha256:" + name.rsplit("/", 1)[-1] if name.startswith("blobs/") else name
            if name not in self.members:
                raise BundleError(f"{self.path}: {label} is missing")
            hasher = hashlib.sha256()
            for chunk in self._chunks(name):
                hasher.update(chunk)
            if self.members[name].size != expected["size"] or hasher.hexdigest() != expected["sha256"]:
                raise BundleError(f"{self.path}: {label} was altered: its content hashes to sha256:"
                                  f"{hasher.hexdigest()}, the bundle index says sha256:{expected['sha256']}")
            if name.startswith("blobs/sha256/") and expected["sha256"] != name.rsplit("/", 1)[-1]:
                raise BundleError(f"{self.path}: {label} is listed with sha256:{expected['sha256']}")

    def jobs(self) -> list[Job]:
        """One job per image the bundle holds, read back from where the export laid it (its target path)."""
        return [Job(dataclasses.replace(Reference.parse(image["source"]), path=image["path"]), str(image["path"]))
                for image in self.listing["images"]]

    def manifest(self, repo: Repo, ref: str) -> Manifest | None:
        digest = ref if ref.startswith("sha256:") else self.by_name.get(f"{repo.path}:{ref}")
        name = f"blobs/sha256/{digest.removeprefix('sha256:')}" if digest else ""
        if name not in self.members:
            return None
        data = self._read(name)
        if sha256_digest(data) != digest:
            raise DigestMismatch(f"{self.path}: manifest {digest} was altered")
        return Manifest(data, json.loads(data).get("mediaType") or OCI_INDEX)

    def blob_chunks(self, repo: Repo, digest: str, size: int) -> Iterator[Chunk]:
        name = f"blobs/sha256/{digest.removeprefix('sha256:')}"
        if name not in self.members and digest in self.base_homes:
            raise BundleError(f"{self.path}: blob {digest} is left to the base bundle {self.base_name}, which the "
                              f"target lacks: import {self.base_name} first")
        if name not in self.members:
            raise BundleError(f"{self.path}: blob {digest} is missing")
        hasher = hashlib.sha256()
        for chunk in self._chunks(name):
            hasher.update(chunk)
            yield chunk
        if "sha256:" + hasher.hexdigest() != digest:
            raise DigestMismatch(f"{self.path}: blob {digest} was altered")

    def referrers(self, repo: Repo, digest: str) -> list[dict[str, Any]] | None:
        return None  # the bundle carries referrers under their fallback tags


def import_bundle(path: Path, destination: str, *, plain_http: bool = False, authfile: Path | None = None,
                  workers: int = 8, progress: TerminalProgress | None = None) -> Stats:
    """Verify the whole bundle, then push what the target lacks to `destination` (REGISTRY[/prefix])."""
    source = BundleSource(path)
    source.verify()
    registries = Registries(plain_http=plain_http, authfile=authfile)
    try:
        target = RegistryTarget(destination, registries)
        return Copier(source, target, workers=workers, progress=progress, homes=source.base_homes).run(
            source.jobs())
    finally:
        registries.close()
