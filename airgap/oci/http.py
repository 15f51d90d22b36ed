"""`Registry`: the distribution API over pooled HTTP connections, with retries and deadlines."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import random
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from airgap.oci.auth import _challenge
from airgap.oci.manifests import Manifest, file_chunks
from airgap.oci.wire import (
    CHUNK,
    DOCKER_HUB,
    LOOPBACK,
    MANIFEST_TYPES,
    MAX_ERROR_BODY,
    MAX_MANIFEST,
    MAX_REPLY,
    MIN_RATE,
    NETWORK_ERRORS,
    OCI_INDEX,
    OCI_MANIFEST,
    RETRY_STATUS,
    BadInput,
    Chunk,
    DigestMismatch,
    OciError,
    RegistryDown,
    _Retryable,
    checked_digest,
    sha256_digest,
)


def _backoff(attempt: int, retry_after: str | None = None) -> None:
    if retry_after and retry_after.isdigit():
        time.sleep(min(float(retry_after), 30.0))
        return
    time.sleep(min(0.05 * 2**attempt, 5.0) * (0.5 + random.random()))


class _Watchdog:
    """One thread that cuts the socket of any request still running past its deadline: a server that drips its
    answer a byte at a time never trips a socket timeout."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: dict[int, tuple[float, socket.socket]] = {}
        self._fired: set[int] = set()
        self._next = 0
        self._wakes = float("inf")  # when the thread next looks, unless woken
        self._thread: threading.Thread | None = None

    def arm(self, sock: socket.socket, seconds: float) -> int:
        with self._cond:
            self._next += 1
            at = time.monotonic() + seconds
            self._armed[self._next] = (at, sock)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="oci-deadlines", daemon=True)
                self._thread.start()
            if at < self._wakes:
                self._cond.notify()
            return self._next

    def disarm(self, key: int) -> bool:
        """Whether the deadline had passed (the socket was cut)."""
        with self._cond:
            self._armed.pop(key, None)
            if key in self._fired:
                self._fired.discard(key)
                return True
            return False

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for key in [k for k, (at, _) in self._armed.items() if at <= now]:
                    _, sock = self._armed.pop(key)
                    self._fired.add(key)
                    with contextlib.suppress(OSError):
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's: safe under TLS too
                self._wakes = min((at for at, _ in self._armed.values()), default=float("inf"))
                self._cond.wait(None if self._wakes == float("inf") else max(self._wakes - now, 0.01))


_WATCHDOG = _Watchdog()


class Response:
    """One HTTP response; its connection goes back to the pool once the body is read to the end."""

    def __init__(self, registry: Registry, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse,
                 pooled: bool = True, *, watch: int = 0, what: str = ""):
        self.status = resp.status
        self.headers = resp.headers
        self._registry, self._conn, self._resp, self._pooled = registry, conn, resp, pooled
        self._watch, self._what = watch, what

    def read(self, limit: int = MAX_MANIFEST) -> bytes:
        """The whole body, refused (BadInput) when longer than `limit` bytes."""
        length = self._resp.length  # None when not declared; 0 for a HEAD
        if length is not None and length > limit:
            self.release()
            raise BadInput(f"{self._what}: the answer is {length} bytes, more than the {limit} bytes accepted")
        try:
            data = self._resp.read(limit + 1)
        finally:
            self.release()
        if len(data) > limit:
            raise BadInput(f"{self._what}: the answer runs past the {limit} bytes accepted")
        return data

    def text(self) -> str:
        """The start of the body, for a message; a longer body is not read (its connection is closed)."""
        try:
            data = self._resp.read(MAX_ERROR_BODY) if not self._resp.isclosed() else b""
        except NETWORK_ERRORS:
            data = b""
        self.release()
        return data.decode(errors="replace").strip()

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
        late = _WATCHDOG.disarm(self._watch) if self._watch else False
        if self._pooled and not late and self._resp.isclosed() and not self._resp.will_close:
            self._registry._give_back(conn)
        else:
            conn.close()
        if late:
            raise OciError(f"{self._what}: no complete answer within its deadline")


class Registry:
    """The distribution API of one registry host. `deadline`: seconds a request may take in all (a blob's grows by
    its size at MIN_RATE); `ca_file`: more certificate authorities to trust (a private registry's own)."""

    def __init__(self, host: str, *, plain_http: bool = False, credentials: tuple[str, str] | None = None,
                 retries: int = 8, timeout: float = 60.0, deadline: float = 300.0, ca_file: Path | None = None,
                 credentials_from: str = ""):
        self.host = DOCKER_HUB if host in ("docker.io", "index.docker.io") else host
        self.plain_http = plain_http
        if plain_http and self.host.rsplit(":", 1)[0].strip("[]") not in LOOPBACK:
            raise BadInput(f"--plain-http is only for loopback registries, not {host}")
        self._credentials, self._retries, self._timeout = credentials, retries, timeout
        self._deadline, self._credentials_from = deadline, credentials_from or "the credentials given"
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._tokens: dict[str, str] = {}
        self._use_basic = False
        self._referrers_api = True
        self._down: RegistryDown | None = None
        self._ssl = ssl.create_default_context()
        if ca_file:
            try:
                self._ssl.load_verify_locations(cafile=str(ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise BadInput(f"--ca-file {ca_file}: not a readable PEM certificate file ({exc})") from exc

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

    def _whose(self) -> str:
        """Which credentials, for a message: the user and where they came from, never the password."""
        if not self._credentials:
            return f"no credentials (none for {self.host} in {self._credentials_from})"
        return f"the credentials of user {self._credentials[0]!r} from {self._credentials_from}"

    def _authenticate(self, header: str, scope: str) -> None:
        scheme, params = _challenge(header)
        if scheme == "basic":
            if not self._credentials:
                raise OciError(f"{self.host} wants basic auth and has {self._whose()}")
            self._use_basic = True
            return
        if scheme != "bearer" or "realm" not in params:
            raise BadInput(f"{self.host}: unsupported auth challenge {header[:200]!r}")
        realm = urllib.parse.urlsplit(params["realm"])
        ours = "http" if self.plain_http else "https"
        if realm.scheme != ours or not realm.netloc or (ours == "http" and realm.hostname not in LOOPBACK):
            raise BadInput(f"{self.host}: refused its token realm {params['realm'][:200]!r}: credentials go only "
                           f"over {ours}:// like the registry's own (plain HTTP only to a loopback --plain-http "
                           "registry)")
        scopes = [("scope", one) for one in (params.get("scope") or scope).split()]
        query = urllib.parse.urlencode([("service", params.get("service", "")), *scopes])
        path = f"{realm.path or '/'}?{realm.query + '&' if realm.query else ''}{query}"
        headers = {"Authorization": self._basic()} if self._credentials else {}
        what = f"token endpoint {realm.scheme}://{realm.netloc}{realm.path} for {self.host}"
        for attempt in range(self._retries):
            conn = None
            try:
                conn = self._connect(realm.netloc)
                conn.request("GET", path, headers=headers)
                resp = Response(self, conn, conn.getresponse(), pooled=False, what=what,
                                watch=_WATCHDOG.arm(conn.sock, self._deadline) if conn.sock else 0)
                if resp.status in RETRY_STATUS:
                    resp.text()
                    _backoff(attempt, resp.headers.get("Retry-After"))
                    continue
                if resp.status != 200:
                    raise OciError(f"{what} refused {self._whose()} (HTTP {resp.status})")
                body = resp.read(MAX_REPLY)
            except NETWORK_ERRORS:
                if conn:
                    conn.close()
                _backoff(attempt)
                continue
            try:
                data = json.loads(body)
                token = data.get("token") or data["access_token"]
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
                raise BadInput(f"{what}: the reply is not a JSON object with a token") from exc
            if not isinstance(token, str) or not token or not token.isprintable():
                raise BadInput(f"{what}: the reply's token is not a printable string")
            self._tokens[scope] = token
            return
        raise OciError(f"{what} unreachable")

    # -- requests

    def request(self, method: str, path: str, *, scope: str, headers: dict[str, str] | None = None,
                body: bytes | Iterable[Chunk] | None = None, ok: tuple[int, ...] = (200,),
                retry: bool = True, deadline: float | None = None) -> Response:
        """One API call; retried with backoff on 429/5xx and network errors (only when `body` can be resent).
        Statuses outside `ok` raise OciError; a 404 in `ok` is returned for the caller to judge. The whole call,
        body included, is cut after `deadline` seconds (default: the registry's)."""
        if self._down:
            raise self._down
        attempts = self._retries if retry else 1
        attempt, authed, last, started = 0, False, "", time.monotonic()
        what = f"{method} {self.host}{path}"
        while attempt < attempts:
            send = {**(headers or {}), **self._auth_header(scope)}
            conn, watch = None, 0
            try:
                conn = self._take()
                if conn.sock is None:
                    conn.connect()
                watch = _WATCHDOG.arm(conn.sock, deadline or self._deadline)
                conn.request(method, path, body=body, headers=send)
                raw = conn.getresponse()
            except NETWORK_ERRORS as exc:
                if conn:
                    conn.close()
                if watch and _WATCHDOG.disarm(watch):
                    raise OciError(f"{what}: no answer within its deadline") from exc
                if isinstance(exc, ssl.SSLCertVerificationError):
                    raise OciError(f"{self.host}: its TLS certificate is not trusted ({exc.verify_message}); give "
                                   "the certificate authority that signed it with --ca-file") from exc
                last, attempt = f"{type(exc).__name__}: {exc}", attempt + 1
                if self._down:
                    raise self._down from exc
                _backoff(attempt)
                continue
            resp = Response(self, conn, raw, watch=watch, what=what)
            if resp.status == 401 and not authed and "WWW-Authenticate" in resp.headers:
                resp.text()
                self._authenticate(resp.headers["WWW-Authenticate"], scope)
                authed = True
                if isinstance(body, (bytes, type(None))):
                    continue
                raise _Retryable(f"{what}: authenticated, the streamed body must be resent")
            if resp.status in RETRY_STATUS:
                last, attempt = f"HTTP {resp.status} {resp.text()[:200]!r}", attempt + 1
                _backoff(attempt, resp.headers.get("Retry-After"))
                continue
            if resp.status == 401:
                resp.text()
                raise OciError(f"{what}: {self.host} refused {self._whose()} (HTTP 401)")
            if resp.status not in ok:
                raise OciError(f"{what}: HTTP {resp.status} {resp.text()}")
            return resp
        if not retry:
            raise _Retryable(f"{what}: {last}")
        if last.startswith("HTTP"):
            raise OciError(f"{what}: gave up after {attempts} attempts ({last})")
        down = RegistryDown(self.host, f"{self.host} did not answer ({last}); retried {attempts} times over "
                                       f"{time.monotonic() - started:.1f} s")
        self._down = self._down or down
        raise self._down

    # -- manifests

    def get_manifest(self, repo: str, ref: str) -> Manifest | None:
        resp = self.request("GET", f"/v2/{repo}/manifests/{ref}", scope=_pull(repo), ok=(200, 404),
                            headers={"Accept": ", ".join(MANIFEST_TYPES)})
        if resp.status == 404:
            resp.text()
            return None
        data = resp.read(MAX_MANIFEST)
        manifest = Manifest(data, _media_type(data, resp.headers.get("Content-Type", "")),
                            origin=f"{self.host}/{repo}@{sha256_digest(data)}")
        if ref.startswith("sha256:") and manifest.digest != ref:
            raise DigestMismatch(f"{self.host}/{repo}@{ref}: the manifest served hashes to {manifest.digest}")
        return manifest

    def manifest_digest(self, repo: str, ref: str) -> str | None:
        resp = self.request("HEAD", f"/v2/{repo}/manifests/{ref}", scope=_pull(repo), ok=(200, 404),
                            headers={"Accept": ", ".join(MANIFEST_TYPES)})
        resp.read(0)
        found = resp.headers.get("Docker-Content-Digest") if resp.status == 200 else None
        return checked_digest(found, f"{self.host}/{repo}:{ref} Docker-Content-Digest") if found else None

    def put_manifest(self, repo: str, ref: str, manifest: Manifest) -> bool:
        """Returns whether the registry tracks the manifest's subject itself (OCI-Subject header)."""
        resp = self.request("PUT", f"/v2/{repo}/manifests/{ref}", scope=_push(repo), body=manifest.data,
                            headers={"Content-Type": manifest.media_type}, ok=(201,))
        resp.text()
        return "OCI-Subject" in resp.headers

    def referrers(self, repo: str, digest: str) -> list[dict[str, Any]] | None:
        """The Referrers API's descriptors, or None when the registry does not offer the API (asked once)."""
        if not self._referrers_api:
            return None
        resp = self.request("GET", f"/v2/{repo}/referrers/{digest}", scope=_pull(repo), ok=(200, 400, 404, 405),
                            headers={"Accept": OCI_INDEX})
        if resp.status != 200 or not resp.headers.get("Content-Type", "").startswith(OCI_INDEX):
            resp.text()
            self._referrers_api = resp.status == 404 and resp.headers.get("Content-Type", "").startswith(OCI_INDEX)
            return None
        listing = Manifest(resp.read(MAX_MANIFEST), OCI_INDEX, origin=f"{self.host}/{repo} referrers of {digest}")
        return listing.children()

    # -- blobs

    def has_blob(self, repo: str, digest: str) -> bool:
        resp = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scope=_pull(repo), ok=(200, 404))
        resp.read(0)
        return resp.status == 200

    def delete_blob(self, repo: str, digest: str) -> bool:
        """Ask the registry to drop the blob from `repo`; False when it does not allow deletes."""
        resp = self.request("DELETE", f"/v2/{repo}/blobs/{digest}", scope=_push(repo), ok=(202, 404, 405))
        resp.text()
        return resp.status == 202

    def blob_chunks(self, repo: str, digest: str, size: int, partial: Path | None = None) -> Iterator[Chunk]:
        """The blob's bytes in chunks, verified against its digest, never more than `size`; a dropped download
        resumes with Range, as does one whose first bytes are already in the file `partial` (those are hashed,
        not yielded)."""
        hasher, got = hashlib.sha256(), 0
        if partial:
            for chunk in file_chunks(partial):
                hasher.update(chunk)
                got += len(chunk)
        where = f"blob {digest} from {self.host}/{repo}"
        deadline = self._deadline + size / MIN_RATE
        for attempt in range(self._retries):
            if got >= size:
                break
            headers = {"Range": f"bytes={got}-"} if got else {}
            try:
                resp = self._blob_response(repo, digest, headers, deadline)
                skip = got if resp.status == 200 else 0
                for chunk in resp.chunks():
                    if skip:
                        cut = min(skip, len(chunk))
                        chunk, skip = chunk[cut:], skip - cut
                        if not chunk:
                            continue
                    if got + len(chunk) > size:
                        resp.text()
                        raise DigestMismatch(f"{where}: the registry sends more than its declared {size} bytes")
                    hasher.update(chunk)
                    got += len(chunk)
                    yield chunk
            except (*NETWORK_ERRORS, _Retryable):
                _backoff(attempt)
                continue
            if got < size:
                _backoff(attempt)
        if got < size:
            raise OciError(f"{where}: the download broke off at {got} of {size} bytes ({self._retries} attempts)")
        actual = "sha256:" + hasher.hexdigest()
        if actual != digest:
            raise DigestMismatch(f"{where}: its {size} bytes hash to {actual}")

    def _blob_response(self, repo: str, digest: str, headers: dict[str, str], deadline: float) -> Response:
        resp = self.request("GET", f"/v2/{repo}/blobs/{digest}", scope=_pull(repo), headers=headers,
                            ok=(200, 206, 307, 302, 303), deadline=deadline)
        if resp.status not in (302, 303, 307):
            return resp
        resp.text()
        url = urllib.parse.urlsplit(resp.headers.get("Location", ""))
        if url.netloc and url.scheme != ("http" if self.plain_http else "https"):
            raise BadInput(f"{self.host}/{repo}: blob {digest} redirected to another scheme ({url.scheme}://)")
        conn = self._connect(url.netloc) if url.netloc else self._take()
        assert conn.sock is not None
        watch = _WATCHDOG.arm(conn.sock, deadline)
        conn.request("GET", f"{url.path}?{url.query}", headers=headers)  # no credentials to where it points
        raw = Response(self, conn, conn.getresponse(), pooled=not url.netloc, watch=watch,
                       what=f"blob {digest} redirected to {url.netloc or self.host}")
        if raw.status not in (200, 206):
            raise _Retryable(f"redirected blob {digest}: HTTP {raw.status} {raw.text()[:200]}")
        return raw

    def push_blob(self, repo: str, digest: str, size: int, chunks: Callable[[], Iterable[Chunk]],
                  mount_from: str | None = None) -> bool:
        """Mount the blob from `mount_from` (the same repository: is it already there?), else upload it
        monolithically, streamed from `chunks()`; a failed upload restarts from a fresh session. Returns
        whether it was mounted (nothing sent)."""
        query = urllib.parse.urlencode({"mount": digest, "from": mount_from}) if mount_from else ""
        scope = _push(repo) + (f" {_pull(mount_from)}" if mount_from and mount_from != repo else "")
        deadline = self._deadline + size / MIN_RATE
        for attempt in range(self._retries):
            resp = self.request("POST", f"/v2/{repo}/blobs/uploads/?{query}", scope=scope, ok=(201, 202))
            resp.text()
            if resp.status == 201:
                return True
            url = urllib.parse.urlsplit(resp.headers.get("Location", ""))  # always sent to this host
            put = (url.query + "&" if url.query else "") + urllib.parse.urlencode({"digest": digest})
            try:
                self.request("PUT", f"{url.path}?{put}", scope=_push(repo), body=chunks(), retry=False,
                             headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
                             ok=(201,), deadline=deadline).text()
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
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        declared = None
    return str(declared or header.split(";")[0].strip() or OCI_MANIFEST)
