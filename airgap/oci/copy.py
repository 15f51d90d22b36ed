"""`Copier`: images, indexes, artifacts and referrers from a `Source` to a `Target`."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from airgap.oci.auth import AuthFile
from airgap.oci.http import Registry
from airgap.oci.manifests import Manifest, fallback_tag
from airgap.oci.references import _DESTINATION, Reference
from airgap.oci.wire import OCI_INDEX, BadInput, Chunk, DigestMismatch, OciError, RegistryDown


@dataclass(frozen=True)
class Repo:
    """A repository on a source: the host (None for a bundle) and path."""

    host: str | None
    path: str


class Source(Protocol):
    def manifest(self, repo: Repo, ref: str) -> Manifest | None: ...

    def blob_chunks(self, repo: Repo, digest: str, size: int, partial: Path | None = None) -> Iterator[Chunk]:
        """The blob's bytes after those already in the file `partial` (verified with them), never past `size`."""
        ...

    def referrers(self, repo: Repo, digest: str) -> list[dict[str, Any]] | None: ...


class Target(Protocol):
    def has_manifest(self, repo: str, ref: str, digest: str) -> bool: ...

    def put_manifest(self, repo: str, ref: str, manifest: Manifest) -> bool: ...

    def ensure_blob(self, repo: str, digest: str, size: int, chunks: Callable[[Path | None], Iterable[Chunk]],
                    from_repo: str) -> str:
        """Make the blob present in `repo`: "skipped" (it was), "mounted" (from `from_repo`), or "moved"
        (`chunks(partial)` sent: the bytes after those in the file `partial`, a download cut short earlier)."""
        ...


class Registries:
    """A `Source` over any number of registry hosts, with credentials from the docker config file (`AuthFile`) and
    `ca_file` trusted besides the system's certificate authorities."""

    def __init__(self, *, plain_http: bool = False, authfile: Path | None = None, retries: int = 8,
                 ca_file: Path | None = None, deadline: float = 300.0):
        self._plain_http, self._retries, self._ca_file, self._deadline = plain_http, retries, ca_file, deadline
        self.auth = AuthFile(authfile)
        self._clients: dict[str, Registry] = {}
        self._lock = threading.Lock()

    def client(self, host: str) -> Registry:
        with self._lock:
            if host not in self._clients:
                self._clients[host] = Registry(host, plain_http=self._plain_http, credentials=self.auth.lookup(host),
                                               retries=self._retries, ca_file=self._ca_file, deadline=self._deadline,
                                               credentials_from=self.auth.source(host))
            return self._clients[host]

    def manifest(self, repo: Repo, ref: str) -> Manifest | None:
        return self.client(str(repo.host)).get_manifest(repo.path, ref)

    def blob_chunks(self, repo: Repo, digest: str, size: int, partial: Path | None = None) -> Iterator[Chunk]:
        return self.client(str(repo.host)).blob_chunks(repo.path, digest, size, partial)

    def referrers(self, repo: Repo, digest: str) -> list[dict[str, Any]] | None:
        return self.client(str(repo.host)).referrers(repo.path, digest)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


class RegistryTarget:
    """A `Target` registry; repositories land under its prefix. `repair`: trust nothing already there: every
    manifest is written again and every blob present is read back, and one that does not hash to its digest is
    deleted and sent again (what `airgap check --deep` reports as corrupt)."""

    def __init__(self, destination: str, sources: Registries, *, repair: bool = False):
        host, _, prefix = destination.removeprefix("oci://").strip("/").partition("/")
        if not _DESTINATION.fullmatch(destination.removeprefix("oci://").strip("/")):
            raise BadInput(f"{destination!r} is not REGISTRY[/prefix] (host[:port], then lowercase path parts)")
        self.client, self.prefix, self.repair = sources.client(host), prefix, repair

    def repo(self, path: str) -> str:
        return f"{self.prefix}/{path}" if self.prefix else path

    def has_manifest(self, repo: str, ref: str, digest: str) -> bool:
        return not self.repair and self.client.manifest_digest(self.repo(repo), ref) == digest

    def put_manifest(self, repo: str, ref: str, manifest: Manifest) -> bool:
        return self.client.put_manifest(self.repo(repo), ref, manifest)

    def ensure_blob(self, repo: str, digest: str, size: int, chunks: Callable[[Path | None], Iterable[Chunk]],
                    from_repo: str) -> str:
        if self.repair and self.client.has_blob(self.repo(repo), digest):
            return self._repair(repo, digest, size, chunks)
        # Mounting from the repository itself asks "is it there?" and opens the upload in one request.
        if self.client.push_blob(self.repo(repo), digest, size, lambda: chunks(None), mount_from=self.repo(from_repo)):
            return "skipped" if from_repo == repo else "mounted"
        return "moved"

    def _sound(self, repo: str, digest: str, size: int) -> bool:
        try:
            for _ in self.client.blob_chunks(self.repo(repo), digest, size):
                pass
        except DigestMismatch:
            return False
        return True

    def _repair(self, repo: str, digest: str, size: int, chunks: Callable[[Path | None], Iterable[Chunk]]) -> str:
        if self._sound(repo, digest, size):
            return "skipped"
        self.client.delete_blob(self.repo(repo), digest)
        self.client.push_blob(self.repo(repo), digest, size, lambda: chunks(None))
        if not self._sound(repo, digest, size):
            raise OciError(f"{self.client.host}/{self.repo(repo)}: blob {digest} is still corrupt after it was sent "
                           "again: the registry kept its stored copy (content-addressed storage skips an upload of "
                           "a digest it holds); delete that blob from the registry's storage (docker-registry: "
                           f"<root>/docker/registry/v2/blobs/sha256/{digest[7:9]}/{digest[7:]}/data), then rerun "
                           "with --repair")
        return "moved"


@dataclass(frozen=True)
class Job:
    """Copy `source` to `path:tag` (or `path@digest`) on the target; `chart_repo`: the classic Helm repository
    URL a chart is packaged from (airgap.helmrepo) instead of a registry."""

    source: Reference
    path: str
    chart_repo: str | None = None

    @property
    def ref(self) -> str:
        return self.source.tag or str(self.source.digest)


@dataclass
class Stats:
    images: int = 0
    images_done: int = 0
    blobs: int = 0
    blobs_done: int = 0
    bytes_total: int = 0
    bytes_done: int = 0
    bytes_moved: int = 0
    blobs_skipped: int = 0
    blobs_mounted: int = 0
    manifests: int = 0
    results: dict[str, str] = field(default_factory=dict)


class Progress(Protocol):
    def update(self, stats: Stats, final: bool = False) -> None: ...


class Copier:
    """Copies jobs with a bounded pool; every blob is fetched at most once however many images share it.
    `homes`: blobs the target holds from an earlier run, by a repository to mount them from."""

    def __init__(self, source: Source, target: Target, *, workers: int = 8, progress: Progress | None = None,
                 homes: dict[str, str] | None = None):
        self.source, self.target, self.progress, self.homes = source, target, progress, homes or {}
        self.stats = Stats()
        self._blob_pool = ThreadPoolExecutor(workers, thread_name_prefix="blob")
        self._image_pool = ThreadPoolExecutor(2 * workers, thread_name_prefix="image")
        self._lock = threading.Lock()
        self._landed: dict[str, tuple[Future[None], str]] = {}
        self._per_repo: dict[tuple[str, str], Future[None]] = {}

    def run(self, jobs: list[Job]) -> Stats:
        """Raises OciError naming each image that failed (BadInput if any failed on hostile or malformed input); a
        registry that is down is named once, with how many images it held up."""
        self.stats.images = len(jobs)
        interrupted = False
        try:
            futures = [(job, self._image_pool.submit(self._copy_image, job)) for job in jobs]
            errors: list[str] = []
            down: dict[str, list[RegistryDown]] = {}
            bad = False
            for job, future in futures:
                try:
                    self.stats.results[str(job.source)] = future.result()
                except RegistryDown as exc:
                    down.setdefault(exc.host, []).append(exc)
                except OciError as exc:
                    bad = bad or isinstance(exc, BadInput)
                    errors.append(f"{job.source}: {exc}")
            errors += [f"{held[0]} ({len(held)} of {len(jobs)} images not copied)" for held in down.values()]
            if errors:
                raise (BadInput if bad else OciError)("; ".join(errors))
        except KeyboardInterrupt:
            interrupted = True  # leave at once: what landed is whole (written atomically), the rest is resumable
            raise
        finally:
            self._image_pool.shutdown(wait=not interrupted, cancel_futures=True)
            self._blob_pool.shutdown(wait=not interrupted, cancel_futures=True)
            if not interrupted:
                self._tick(final=True)
        return self.stats

    def _tick(self, final: bool = False) -> None:
        if self.progress:
            self.progress.update(self.stats, final)

    def _copy_image(self, job: Job) -> str:
        src = Repo(job.source.host, job.source.path)
        top = self.source.manifest(src, job.source.ref)
        if top is None:
            raise OciError(f"{job.source} not found")
        if job.source.digest and top.digest != job.source.digest:
            raise DigestMismatch(f"{job.source} resolves to {top.digest}")
        self._copy_manifest(src, job.path, job.ref, top, carry_referrers=True)
        with self._lock:
            self.stats.images_done += 1
        self._tick()
        return top.digest

    def _copy_manifest(self, src: Repo, path: str, ref: str, manifest: Manifest, *, carry_referrers: bool) -> bool:
        """Blobs, then platforms, then the manifest itself; returns whether the target tracks its subject."""
        tracked = True
        if not self.target.has_manifest(path, ref, manifest.digest):
            waits = [self._blob(src, path, desc) for desc in manifest.blobs()]
            children = []
            for desc in manifest.children():
                child = self.source.manifest(src, desc["digest"])
                if child is None:
                    raise OciError(f"{src.host}/{src.path}@{desc['digest']} (a platform of {ref}) not found")
                children.append(child)
                waits += [self._blob(src, path, blob) for blob in child.blobs()]  # all platforms' blobs at once
            for child in children:
                self._copy_manifest(src, path, child.digest, child, carry_referrers=True)
            for wait in waits:
                wait.result()
            tracked = self.target.put_manifest(path, ref, manifest)
            with self._lock:
                self.stats.manifests += 1
        if carry_referrers:
            self._copy_referrers(src, path, manifest.digest)
        return tracked

    def _copy_referrers(self, src: Repo, path: str, digest: str) -> None:
        listed = self.source.referrers(src, digest)
        if listed is None:
            tag = fallback_tag(digest)
            index = self.source.manifest(src, tag)
            if index is not None:
                self._copy_manifest(src, path, tag, index, carry_referrers=False)
            return
        tracked = True
        for desc in listed:
            referrer = self.source.manifest(src, desc["digest"])
            if referrer is not None:
                tracked = self._copy_manifest(src, path, desc["digest"], referrer, carry_referrers=True) and tracked
        if listed and not tracked:
            fallback = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed}).encode()
            self.target.put_manifest(path, fallback_tag(digest), Manifest(fallback, OCI_INDEX))

    def _blob(self, src: Repo, path: str, desc: dict[str, Any]) -> Future[None]:
        digest, size = str(desc["digest"]), int(desc["size"])
        with self._lock:
            known = self._per_repo.get((digest, path))
            if known:
                return known
            self.stats.blobs += 1
            self.stats.bytes_total += size
            first = self._landed.get(digest)
            if first is None:
                future = self._blob_pool.submit(self._transfer, src, path, digest, size)
                self._landed[digest] = (future, path)
            else:
                future = Future()
                landed, from_path = first
                landed.add_done_callback(lambda _: self._chain(future, src, path, digest, size, from_path))
            self._per_repo[(digest, path)] = future
        return future

    def _chain(self, out: Future[None], src: Repo, path: str, digest: str, size: int, from_path: str) -> None:
        def run() -> None:
            try:
                self._transfer(src, path, digest, size, from_path)
                out.set_result(None)
            except BaseException as exc:
                out.set_exception(exc)

        try:
            self._blob_pool.submit(run)
        except RuntimeError as exc:  # the pool was shut down after a failure elsewhere
            out.set_exception(OciError(f"blob {digest}: {exc}"))

    def _transfer(self, src: Repo, path: str, digest: str, size: int, from_path: str | None = None) -> None:
        how = self.target.ensure_blob(path, digest, size, lambda partial: self._counted(self.source.blob_chunks(
            src, digest, size, partial)), from_path or self.homes.get(digest) or path)
        self._count(size, how)
        self._tick()

    def _counted(self, chunks: Iterator[Chunk]) -> Iterator[Chunk]:
        for chunk in chunks:
            with self._lock:
                self.stats.bytes_moved += len(chunk)
            self._tick()  # progress within a blob; the progress itself decides how often it redraws
            yield chunk

    def _count(self, size: int, how: str) -> None:
        with self._lock:
            self.stats.blobs_done += 1
            self.stats.bytes_done += size
            if how == "mounted":
                self.stats.blobs_mounted += 1
            elif how == "skipped":
                self.stats.blobs_skipped += 1
