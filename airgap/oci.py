"""The project's one OCI distribution client: streaming, verified, concurrent, resumable registry access.

`Registry` speaks the distribution API to one host (pooled keep-alive connections, Bearer-token and basic
auth from a docker config file, retries with backoff on 429/5xx and dropped connections, Range resume of a
broken blob download, sha256 verification of every byte read). `Copier` copies images, indexes with all their
platforms, OCI artifacts and their referrers from a `Source` to a `Target` (a registry or an OCI layout) with a
bounded thread pool, fetching each blob once per run and mounting it across repositories of the target.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import random
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

CHUNK = 1 << 20
Chunk = bytes | memoryview  # a piece of a blob on its way; a memoryview is valid until the next piece is asked for

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
NETWORK_ERRORS = (OSError, http.client.HTTPException)
DOCKER_HUB = "registry-1.docker.io"


class OciError(Exception):
    """A registry or layout refused, or content failed verification."""


class DigestMismatch(OciError):
    """Bytes read do not hash to the digest that names them."""


class _Retryable(OciError):
    """A transient failure (429/5xx, dropped connection) worth another attempt."""


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------- references

_REF = re.compile(
    r"^(?P<host>[A-Za-z0-9.-]+(?::[0-9]+)?)/(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


@dataclass(frozen=True)
class Reference:
    """host/path[:tag][@sha256:...]; the path is everything after the host, as the mirror lays it out."""

    host: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        text = text.strip().removeprefix("oci://").removeprefix("docker://")
        match = _REF.match(text)
        if not match or ("." not in match["host"] and ":" not in match["host"] and match["host"] != "localhost"):
            raise ValueError(f"{text!r} is not an image reference host/path:tag[@sha256:<hex>] with a registry host")
        if not match["tag"] and not match["digest"]:
            raise ValueError(f"{text!r} names neither a tag nor a digest")
        return cls(match["host"], match["path"], match["tag"], match["digest"])

    @property
    def ref(self) -> str:
        """What to ask the registry for: the pinned digest if any, else the tag."""
        return self.digest or str(self.tag)

    def __str__(self) -> str:
        return f"{self.host}/{self.path}" + (f":{self.tag}" if self.tag else "") + (
            f"@{self.digest}" if self.digest else "")


# ------------------------------------------------------------------------------------------------- auth


def docker_config_path(authfile: Path | None = None) -> Path:
    """--authfile, else $REGISTRY_AUTH_FILE, else $DOCKER_CONFIG/config.json, else ~/.docker/config.json."""
    if authfile:
        return authfile
    if os.environ.get("REGISTRY_AUTH_FILE"):
        return Path(os.environ["REGISTRY_AUTH_FILE"])
    return Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"


def load_credentials(authfile: Path | None = None) -> dict[str, tuple[str, str]]:
    """host -> (user, password) from the `auths` of a docker config file; {} when there is none."""
    path = docker_config_path(authfile)
    if not path.is_file():
        if authfile:
            raise OciError(f"auth file {path} does not exist")
        return {}
    try:
        auths = json.loads(path.read_text()).get("auths", {})
    except (json.JSONDecodeError, AttributeError) as exc:
        raise OciError(f"auth file {path} is not a docker config JSON object: {exc}") from exc
    creds: dict[str, tuple[str, str]] = {}
    for key, entry in auths.items():
        host = urllib.parse.urlparse(key).netloc if "://" in key else key.split("/")[0]
        if entry.get("auth"):
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        elif entry.get("username"):
            user, password = entry["username"], entry.get("password", "")
        else:
            continue
        creds[host] = (user, password)
    if "docker.io" in creds or "index.docker.io" in creds:
        creds.setdefault(DOCKER_HUB, creds.get("docker.io") or creds["index.docker.io"])
    return creds


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', rest))


# ------------------------------------------------------------------------------------------------ HTTP


def _backoff(attempt: int, retry_after: str | None = None) -> None:
    if retry_after and retry_after.isdigit():
        time.sleep(min(float(retry_after), 30.0))
        return
    time.sleep(min(0.05 * 2**attempt, 5.0) * (0.5 + random.random()))


class Response:
    """One HTTP response; its connection goes back to the pool once the body is read to the end."""

    def __init__(self, registry: Registry, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse,
                 pooled: bool = True):
        self.status = resp.status
        self.headers = resp.headers
        self._registry, self._conn, self._resp, self._pooled = registry, conn, resp, pooled

    def read(self) -> bytes:
        try:
            return self._resp.read()
        finally:
            self.release()

    def chunks(self) -> Iterator[Chunk]:
        """The body in chunks read into one reused buffer: each chunk is valid until the next is asked for."""
        view = memoryview(bytearray(CHUNK))
        try:
            while n := self._resp.readinto(view):
                yield view[:n]
        finally:
            self.release()

    def release(self) -> None:
        if self._conn is None:
            return
        conn, self._conn = self._conn, None  # type: ignore[assignment]
        if self._pooled and self._resp.isclosed() and not self._resp.will_close:
            self._registry._give_back(conn)
        else:
            conn.close()


class Registry:
    """The distribution API of one registry host."""

    def __init__(self, host: str, *, plain_http: bool = False, credentials: tuple[str, str] | None = None,
                 retries: int = 8, timeout: float = 60.0):
        self.host = DOCKER_HUB if host in ("docker.io", "index.docker.io") else host
        self.plain_http = plain_http
        if plain_http and self.host.split(":")[0] not in ("127.0.0.1", "localhost", "::1"):
            raise OciError(f"--plain-http is only for loopback registries, not {host}")
        self._credentials, self._retries, self._timeout = credentials, retries, timeout
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._tokens: dict[str, str] = {}
        self._use_basic = False
        self._referrers_api = True
        self._ssl = ssl.create_default_context()

    # -- connections

    def _connect(self, netloc: str | None = None) -> http.client.HTTPConnection:
        netloc = netloc or self.host
        if self.plain_http:
            conn = http.client.HTTPConnection(netloc, timeout=self._timeout)
        else:
            conn = http.client.HTTPSConnection(netloc, timeout=self._timeout, context=self._ssl)
        conn.connect()
        assert conn.sock is not None
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _take(self) -> http.client.HTTPConnection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _give_back(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._idle.append(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # -- auth

    def _auth_header(self, scope: str) -> dict[str, str]:
        token = self._tokens.get(scope)
        if token:
            return {"Authorization": f"Bearer {token}"}
        if self._credentials and self._use_basic:
            return {"Authorization": self._basic()}
        return {}

    def _basic(self) -> str:
        assert self._credentials
        return "Basic " + base64.b64encode(":".join(self._credentials).encode()).decode()

    def _authenticate(self, header: str, scope: str) -> None:
        scheme, params = _challenge(header)
        if scheme == "basic":
            if not self._credentials:
                raise OciError(f"{self.host} wants basic auth and the docker config file has no entry for it")
            self._use_basic = True
            return
        if scheme != "bearer" or "realm" not in params:
            raise OciError(f"{self.host}: unsupported auth challenge {header!r}")
        query = {"service": params.get("service", "")}
        url = params["realm"] + "?" + urllib.parse.urlencode(query)
        for one in (params.get("scope") or scope).split(" "):
            url += "&" + urllib.parse.urlencode({"scope": one})
        parts = urllib.parse.urlsplit(url)
        headers = {"Authorization": self._basic()} if self._credentials else {}
        for attempt in range(self._retries):
            conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
            conn = conn_cls(parts.netloc, timeout=self._timeout)
            try:
                conn.request("GET", f"{parts.path}?{parts.query}", headers=headers)
                resp = conn.getresponse()
                body = resp.read()
            except NETWORK_ERRORS:
                _backoff(attempt)
                continue
            finally:
                conn.close()
            if resp.status in RETRY_STATUS:
                _backoff(attempt, resp.headers.get("Retry-After"))
                continue
            if resp.status != 200:
                raise OciError(f"token endpoint {params['realm']} refused ({resp.status}) for {self.host}")
            data = json.loads(body)
            self._tokens[scope] = data.get("token") or data["access_token"]
            return
        raise OciError(f"token endpoint {params['realm']} unreachable")

    # -- requests

    def request(self, method: str, path: str, *, scope: str, headers: dict[str, str] | None = None,
                body: bytes | Iterable[Chunk] | None = None, ok: tuple[int, ...] = (200,),
                retry: bool = True) -> Response:
        """One API call; retried with backoff on 429/5xx and network errors (only when `body` can be resent).
        Statuses outside `ok` raise OciError; a 404 in `ok` is returned for the caller to judge."""
        attempts = self._retries if retry else 1
        attempt, authed, last = 0, False, ""
        while attempt < attempts:
            send = {**(headers or {}), **self._auth_header(scope)}
            conn = None
            try:
                conn = self._take()
                conn.request(method, path, body=body, headers=send)
                raw = conn.getresponse()
            except NETWORK_ERRORS as exc:
                if conn:
                    conn.close()
                last, attempt = f"{type(exc).__name__}: {exc}", attempt + 1
                _backoff(attempt)
                continue
            resp = Response(self, conn, raw)
            if resp.status == 401 and not authed and "WWW-Authenticate" in resp.headers:
                resp.read()
                self._authenticate(resp.headers["WWW-Authenticate"], scope)
                authed = True
                if isinstance(body, (bytes, type(None))):
                    continue
                raise _Retryable(f"{method} {self.host}{path}: authenticated, the streamed body must be resent")
            if resp.status in RETRY_STATUS:
                last, attempt = f"HTTP {resp.status} {resp.read()[:200]!r}", attempt + 1
                _backoff(attempt, resp.headers.get("Retry-After"))
                continue
            if resp.status not in ok:
                text = resp.read()[:500].decode(errors="replace")
                raise OciError(f"{method} {self.host}{path}: HTTP {resp.status} {text}")
            return resp
        if not retry:
            raise _Retryable(f"{method} {self.host}{path}: {last}")
        raise OciError(f"{method} {self.host}{path}: gave up after {attempts} attempts ({last})")

    # -- manifests

    def get_manifest(self, repo: str, ref: str) -> Manifest | None:
        resp = self.request("GET", f"/v2/{repo}/manifests/{ref}", scope=_pull(repo), ok=(200, 404),
                            headers={"Accept": ", ".join(MANIFEST_TYPES)})
        data = resp.read()
        if resp.status == 404:
            return None
        manifest = Manifest(data, _media_type(data, resp.headers.get("Content-Type", "")))
        if ref.startswith("sha256:") and manifest.digest != ref:
            raise DigestMismatch(f"{self.host}/{repo}@{ref}: the manifest served hashes to {manifest.digest}")
        return manifest

    def manifest_digest(self, repo: str, ref: str) -> str | None:
        resp = self.request("HEAD", f"/v2/{repo}/manifests/{ref}", scope=_pull(repo), ok=(200, 404),
                            headers={"Accept": ", ".join(MANIFEST_TYPES)})
        resp.read()
        return resp.headers.get("Docker-Content-Digest") if resp.status == 200 else None

    def put_manifest(self, repo: str, ref: str, manifest: Manifest) -> bool:
        """Returns whether the registry tracks the manifest's subject itself (OCI-Subject header)."""
        resp = self.request("PUT", f"/v2/{repo}/manifests/{ref}", scope=_push(repo), body=manifest.data,
                            headers={"Content-Type": manifest.media_type}, ok=(201,))
        resp.read()
        return "OCI-Subject" in resp.headers

    def referrers(self, repo: str, digest: str) -> list[dict[str, Any]] | None:
        """The Referrers API's descriptors, or None when the registry does not offer the API (asked once)."""
        if not self._referrers_api:
            return None
        resp = self.request("GET", f"/v2/{repo}/referrers/{digest}", scope=_pull(repo), ok=(200, 400, 404, 405),
                            headers={"Accept": OCI_INDEX})
        data = resp.read()
        if resp.status != 200 or not resp.headers.get("Content-Type", "").startswith(OCI_INDEX):
            self._referrers_api = resp.status == 404 and resp.headers.get("Content-Type", "").startswith(OCI_INDEX)
            return None
        return list(json.loads(data).get("manifests", []))

    # -- blobs

    def has_blob(self, repo: str, digest: str) -> bool:
        resp = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scope=_pull(repo), ok=(200, 404))
        resp.read()
        return resp.status == 200

    def blob_chunks(self, repo: str, digest: str, size: int) -> Iterator[Chunk]:
        """The blob's bytes in chunks, verified against its digest; a dropped download resumes with Range."""
        hasher, got = hashlib.sha256(), 0
        for attempt in range(self._retries):
            headers = {"Range": f"bytes={got}-"} if got else {}
            try:
                resp = self._blob_response(repo, digest, headers)
                skip = got if resp.status == 200 else 0
                for chunk in resp.chunks():
                    if skip:
                        cut = min(skip, len(chunk))
                        chunk, skip = chunk[cut:], skip - cut
                        if not chunk:
                            continue
                    hasher.update(chunk)
                    got += len(chunk)
                    yield chunk
            except (*NETWORK_ERRORS, _Retryable):
                _backoff(attempt)
                continue
            if got == size:
                break
            if got > size:
                break
            _backoff(attempt)
        actual = "sha256:" + hasher.hexdigest()
        if got != size or actual != digest:
            raise DigestMismatch(f"blob {digest} from {self.host}/{repo}: read {got} of {size} bytes "
                                 f"hashing to {actual}")

    def _blob_response(self, repo: str, digest: str, headers: dict[str, str]) -> Response:
        resp = self.request("GET", f"/v2/{repo}/blobs/{digest}", scope=_pull(repo), headers=headers,
                            ok=(200, 206, 307, 302, 303))
        if resp.status not in (302, 303, 307):
            return resp
        resp.read()
        url = urllib.parse.urlsplit(resp.headers["Location"])
        conn = self._connect(url.netloc) if url.netloc else self._take()
        conn.request("GET", f"{url.path}?{url.query}", headers=headers)
        raw = conn.getresponse()
        if raw.status not in (200, 206):
            raise _Retryable(f"redirected blob {digest}: HTTP {raw.status}")
        return Response(self, conn, raw, pooled=not url.netloc)

    def push_blob(self, repo: str, digest: str, size: int, chunks: Callable[[], Iterable[Chunk]],
                  mount_from: str | None = None) -> bool:
        """Mount the blob from `mount_from` (the same repository: is it already there?), else upload it
        monolithically, streamed from `chunks()`; a failed upload restarts from a fresh session. Returns
        whether it was mounted (nothing sent)."""
        query = urllib.parse.urlencode({"mount": digest, "from": mount_from}) if mount_from else ""
        scope = _push(repo) + (f" {_pull(mount_from)}" if mount_from and mount_from != repo else "")
        for attempt in range(self._retries):
            resp = self.request("POST", f"/v2/{repo}/blobs/uploads/?{query}", scope=scope, ok=(201, 202))
            resp.read()
            if resp.status == 201:
                return True
            url = urllib.parse.urlsplit(resp.headers["Location"])
            put = (url.query + "&" if url.query else "") + urllib.parse.urlencode({"digest": digest})
            try:
                self.request("PUT", f"{url.path}?{put}", scope=_push(repo), body=chunks(), retry=False,
                             headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
                             ok=(201,)).read()
                return False
            except _Retryable:
                _backoff(attempt)
        raise OciError(f"pushing blob {digest} to {self.host}/{repo}: gave up after {self._retries} attempts")


def _pull(repo: str) -> str:
    return f"repository:{repo}:pull"


def _push(repo: str) -> str:
    return f"repository:{repo}:pull,push"


def _media_type(data: bytes, header: str) -> str:
    try:
        declared = json.loads(data).get("mediaType")
    except (json.JSONDecodeError, AttributeError):
        declared = None
    return str(declared or header.split(";")[0].strip() or OCI_MANIFEST)


# -------------------------------------------------------------------------------------------- manifests


@dataclass(frozen=True)
class Manifest:
    """A manifest or index exactly as served (its digest is the sha256 of these bytes)."""

    data: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @property
    def body(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.data)
        return parsed

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES or "manifests" in self.body

    def blobs(self) -> list[dict[str, Any]]:
        """Config and layer descriptors of an image or artifact manifest."""
        body = self.body
        found = [body["config"]] if "config" in body else []
        return found + list(body.get("layers", []) + body.get("blobs", []))

    def children(self) -> list[dict[str, Any]]:
        return list(self.body.get("manifests", [])) if self.is_index else []


def file_chunks(path: Path) -> Iterator[Chunk]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def fallback_tag(digest: str) -> str:
    """The Referrers tag schema: sha256:<hex> -> sha256-<hex>."""
    return digest.replace(":", "-")


# ------------------------------------------------------------------------------------------------- copy


@dataclass(frozen=True)
class Repo:
    """A repository on a source: the host (None for a bundle) and path."""

    host: str | None
    path: str


class Source(Protocol):
    def manifest(self, repo: Repo, ref: str) -> Manifest | None: ...

    def blob_chunks(self, repo: Repo, digest: str, size: int) -> Iterator[Chunk]: ...

    def referrers(self, repo: Repo, digest: str) -> list[dict[str, Any]] | None: ...


class Target(Protocol):
    def has_manifest(self, repo: str, ref: str, digest: str) -> bool: ...

    def put_manifest(self, repo: str, ref: str, manifest: Manifest) -> bool: ...

    def ensure_blob(self, repo: str, digest: str, size: int, chunks: Callable[[], Iterable[Chunk]],
                    from_repo: str) -> str:
        """Make the blob present in `repo`: "skipped" (it was), "mounted" (from `from_repo`), or "moved"
        (`chunks()` sent)."""
        ...


class Registries:
    """A `Source` over any number of registry hosts, with credentials from the docker config file."""

    def __init__(self, *, plain_http: bool = False, authfile: Path | None = None, retries: int = 8):
        self._plain_http, self._retries = plain_http, retries
        self._credentials = load_credentials(authfile)
        self._clients: dict[str, Registry] = {}
        self._lock = threading.Lock()

    def client(self, host: str) -> Registry:
        with self._lock:
            if host not in self._clients:
                self._clients[host] = Registry(host, plain_http=self._plain_http,
                                               credentials=self._credentials.get(host), retries=self._retries)
            return self._clients[host]

    def manifest(self, repo: Repo, ref: str) -> Manifest | None:
        return self.client(str(repo.host)).get_manifest(repo.path, ref)

    def blob_chunks(self, repo: Repo, digest: str, size: int) -> Iterator[Chunk]:
        return self.client(str(repo.host)).blob_chunks(repo.path, digest, size)

    def referrers(self, repo: Repo, digest: str) -> list[dict[str, Any]] | None:
        return self.client(str(repo.host)).referrers(repo.path, digest)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


class RegistryTarget:
    """A `Target` registry; repositories land under its prefix."""

    def __init__(self, destination: str, sources: Registries):
        host, _, prefix = destination.removeprefix("oci://").strip("/").partition("/")
        self.client, self.prefix = sources.client(host), prefix

    def repo(self, path: str) -> str:
        return f"{self.prefix}/{path}" if self.prefix else path

    def has_manifest(self, repo: str, ref: str, digest: str) -> bool:
        return self.client.manifest_digest(self.repo(repo), ref) == digest

    def put_manifest(self, repo: str, ref: str, manifest: Manifest) -> bool:
        return self.client.put_manifest(self.repo(repo), ref, manifest)

    def ensure_blob(self, repo: str, digest: str, size: int, chunks: Callable[[], Iterable[Chunk]],
                    from_repo: str) -> str:
        # Mounting from the repository itself asks "is it there?" and opens the upload in one request.
        if self.client.push_blob(self.repo(repo), digest, size, chunks, mount_from=self.repo(from_repo)):
            return "skipped" if from_repo == repo else "mounted"
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
        self.stats.images = len(jobs)
        try:
            futures = [(job, self._image_pool.submit(self._copy_image, job)) for job in jobs]
            errors = []
            for job, future in futures:
                try:
                    self.stats.results[str(job.source)] = future.result()
                except OciError as exc:
                    errors.append(f"{job.source}: {exc}")
            if errors:
                raise OciError("; ".join(errors))
        finally:
            self._image_pool.shutdown(cancel_futures=True)
            self._blob_pool.shutdown(cancel_futures=True)
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
        how = self.target.ensure_blob(path, digest, size, lambda: self._counted(self.source.blob_chunks(
            src, digest, size)), from_path or self.homes.get(digest) or path)
        self._count(size, how)
        self._tick()

    def _counted(self, chunks: Iterator[Chunk]) -> Iterator[Chunk]:
        for chunk in chunks:
            with self._lock:
                self.stats.bytes_moved += len(chunk)
            yield chunk

    def _count(self, size: int, how: str) -> None:
        with self._lock:
            self.stats.blobs_done += 1
            self.stats.bytes_done += size
            if how == "mounted":
                self.stats.blobs_mounted += 1
            elif how == "skipped":
                self.stats.blobs_skipped += 1
