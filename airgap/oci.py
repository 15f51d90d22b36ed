"""The project's one OCI distribution client: streaming, verified, concurrent, resumable registry access.

`Registry` speaks the distribution API to one host (pooled keep-alive connections, Bearer-token and basic
auth from a docker config file or its credential helpers, retries with backoff on 429/5xx and dropped
connections, Range resume of a broken blob download, sha256 verification of every byte read). Everything a
registry sends is untrusted: digests must be sha256:<64 hex>, manifests and error bodies are size-bounded, a
blob stops at its declared size, every request has a deadline, and credentials never travel over plain HTTP
to anything but a loopback registry the user named with --plain-http. `Copier` copies images, indexes with all their
platforms, OCI artifacts and their referrers from a `Source` to a `Target` (a registry or an OCI layout) with a
bounded thread pool, fetching each blob once per run and mounting it across repositories of the target.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import http.client
import json
import os
import random
import re
import socket
import ssl
import subprocess
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
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")  # the one algorithm accepted from outside (its registered pattern)
MAX_MANIFEST = 4 << 20  # what distribution accepts for a manifest or index
MAX_REPLY = 1 << 20  # a token reply, or a referrers list
MAX_ERROR_BODY = 512  # what an error message quotes of a registry's error body
MIN_RATE = 64 << 10  # bytes/s a blob download may not fall below on average (its deadline grows with its size)
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
NETWORK_ERRORS = (OSError, http.client.HTTPException)
DOCKER_HUB = "registry-1.docker.io"


class OciError(Exception):
    """A registry or layout refused, or content failed verification."""


class DigestMismatch(OciError):
    """Bytes read do not hash to the digest that names them."""


class BadInput(OciError):
    """Input from outside (a registry's reply, a bundle, an auth file, a key, a list) that is malformed or
    hostile: refused before anything is written."""


class RegistryDown(OciError):
    """A registry that did not answer through every retry; later requests to it fail at once."""

    def __init__(self, host: str, message: str):
        super().__init__(message)
        self.host = host


class _Retryable(OciError):
    """A transient failure (429/5xx, dropped connection) worth another attempt."""


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def checked_digest(value: object, where: str) -> str:
    """`value` if it is sha256:<64 lowercase hex>, else BadInput naming `where` (a digest from outside may end up
    in a path or a URL)."""
    if isinstance(value, str) and DIGEST.fullmatch(value):
        return value
    raise BadInput(f"{where}: {str(value)[:100]!r} is not a digest sha256:<64 hex>, the only form accepted")


def checked_descriptor(desc: object, where: str) -> dict[str, Any]:
    """A descriptor with a valid digest and a non-negative integer size, else BadInput naming `where`."""
    if not isinstance(desc, dict):
        raise BadInput(f"{where}: a descriptor is not a JSON object")
    checked_digest(desc.get("digest"), where)
    size = desc.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadInput(f"{where}: descriptor {desc.get('digest')} has size {size!r}, not a non-negative integer")
    return desc


# --------------------------------------------------------------------------------------------- references

_HOST = r"[A-Za-z0-9.-]+(?::[0-9]+)?"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
REPO_PATH = re.compile(_PATH)  # a repository path: never "..", never absolute
_REF = re.compile(rf"^(?P<host>{_HOST})/(?P<path>{_PATH})"
                  r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")
_DESTINATION = re.compile(rf"{_HOST}(?:/{_PATH})?")  # REGISTRY[/prefix]


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


class AuthFile:
    """The credentials of a docker config file: `auths` entries, and the credential helpers docker and skopeo call
    (`credHelpers` per host, else `credsStore`), each asked only for a host actually contacted."""

    def __init__(self, authfile: Path | None = None):
        self.path = docker_config_path(authfile)
        self._auths: dict[str, tuple[str, str]] = {}
        self._helpers: dict[str, str] = {}
        self._store = ""
        if not self.path.is_file():
            if authfile:
                raise BadInput(f"auth file {self.path} does not exist")
            return
        try:
            config = json.loads(self.path.read_bytes())
        except OSError as exc:
            raise BadInput(f"auth file {self.path}: {exc.strerror}") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadInput(f"auth file {self.path} is not JSON: {exc}") from exc
        if not isinstance(config, dict):
            raise BadInput(f"auth file {self.path} is not a docker config JSON object")
        auths, helpers, store = config.get("auths", {}), config.get("credHelpers", {}), config.get("credsStore", "")
        if not isinstance(auths, dict) or not isinstance(helpers, dict) or not isinstance(store, str):
            raise BadInput(f"auth file {self.path}: auths and credHelpers must be objects, credsStore a string")
        for key, entry in auths.items():
            creds = self._entry(key, entry)
            if creds:
                self._auths[_auth_host(key)] = creds
        self._helpers = {_auth_host(key): str(name) for key, name in helpers.items()}
        for name in [*self._helpers.values(), *([store] if store else [])]:
            if not re.fullmatch(r"[A-Za-z0-9._-]+", name) or name.startswith("."):
                raise BadInput(f"auth file {self.path}: {name[:80]!r} is not a credential helper name")
        self._store = store
        for alias in ("docker.io", "index.docker.io"):
            if alias in self._auths:
                self._auths.setdefault(DOCKER_HUB, self._auths[alias])
            if alias in self._helpers:
                self._helpers.setdefault(DOCKER_HUB, self._helpers[alias])

    def _entry(self, key: str, entry: object) -> tuple[str, str] | None:
        if not isinstance(entry, dict):
            raise BadInput(f"auth file {self.path}: auths.{key} is not an object")
        try:
            if entry.get("auth"):
                user, sep, password = base64.b64decode(str(entry["auth"]), validate=True).decode().partition(":")
                if not sep:
                    raise ValueError("no ':' between user and password")
                return user, password
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadInput(f"auth file {self.path}: auths.{key}.auth is not base64 of user:password ({exc})") from exc
        if entry.get("username"):
            return str(entry["username"]), str(entry.get("password", ""))
        return None

    def lookup(self, host: str) -> tuple[str, str] | None:
        """(user, password) for `host`: its credential helper, else its `auths` entry, else the credsStore."""
        helper = self._helpers.get(host) or ("" if host in self._auths else self._store)
        return self._ask_helper(helper, host) if helper else self._auths.get(host)

    def source(self, host: str) -> str:
        """Where `host`'s credentials come from, for messages (never the credentials themselves)."""
        helper = self._helpers.get(host) or ("" if host in self._auths else self._store)
        return f"docker-credential-{helper} (named in {self.path})" if helper else str(self.path)

    def _ask_helper(self, name: str, host: str) -> tuple[str, str] | None:
        program = f"docker-credential-{name}"
        try:
            done = subprocess.run([program, "get"], input=host.encode(), capture_output=True, timeout=60)
        except FileNotFoundError as exc:
            raise BadInput(f"auth file {self.path} names the credential helper {program} for {host}, which is not "
                           "on PATH") from exc
        except subprocess.TimeoutExpired as exc:
            raise BadInput(f"credential helper {program} (named in {self.path}) did not answer for {host}") from exc
        if done.returncode:
            if b"credentials not found" in done.stdout + done.stderr:
                return None
            raise BadInput(f"credential helper {program} (named in {self.path}) failed for {host} "
                           f"(exit {done.returncode})")
        try:
            reply = json.loads(done.stdout)
            return str(reply["Username"]), str(reply["Secret"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise BadInput(f"credential helper {program} (named in {self.path}) answered for {host} without "
                           "Username and Secret") from exc


def _auth_host(key: str) -> str:
    return urllib.parse.urlparse(key).netloc if "://" in key else key.split("/")[0]


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', rest))


# ------------------------------------------------------------------------------------------------ HTTP


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


# -------------------------------------------------------------------------------------------- manifests


@dataclass(frozen=True)
class Manifest:
    """A manifest or index exactly as served (its digest is the sha256 of these bytes). `origin` names where it
    came from in messages. Its descriptors are checked (digest form, size) before anyone uses them."""

    data: bytes
    media_type: str
    origin: str = field(default="", compare=False)

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @functools.cached_property
    def body(self) -> dict[str, Any]:
        try:
            parsed = json.loads(self.data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadInput(f"{self._where()}: not a JSON manifest ({exc})") from exc
        if not isinstance(parsed, dict):
            raise BadInput(f"{self._where()}: not a JSON manifest object")
        return parsed

    def _where(self) -> str:
        return self.origin or f"manifest {self.digest}"

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES or "manifests" in self.body

    def blobs(self) -> list[dict[str, Any]]:
        """Config and layer descriptors of an image or artifact manifest."""
        body = self.body
        found = [body["config"]] if "config" in body else []
        for key in ("layers", "blobs"):
            if not isinstance(body.get(key, []), list):
                raise BadInput(f"{self._where()}: {key} is not a list")
            found += body.get(key, [])
        return [checked_descriptor(desc, self._where()) for desc in found]

    def children(self) -> list[dict[str, Any]]:
        """The platforms of an index (or the manifests of a referrers list), each no larger than MAX_MANIFEST."""
        if not self.is_index:
            return []
        listed = self.body.get("manifests", [])
        if not isinstance(listed, list):
            raise BadInput(f"{self._where()}: manifests is not a list")
        children = [checked_descriptor(desc, self._where()) for desc in listed]
        for desc in children:
            if desc["size"] > MAX_MANIFEST:
                raise BadInput(f"{self._where()}: child {desc['digest']} declares {desc['size']} bytes, more than "
                               f"the {MAX_MANIFEST} accepted for a manifest")
        return children


def file_chunks(path: Path, skip: int = 0) -> Iterator[Chunk]:
    """A file's bytes after the first `skip`."""
    with open(path, "rb") as f:
        f.seek(skip)
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
