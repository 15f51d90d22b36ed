"""A scriptable OCI registry on 127.0.0.1 for the air-gap trust-boundary tests: an http.server (TLS with its own
CA where asked) serving the manifests and blobs a test gives it, accepting uploads, recording every request, and
letting a test replace the answer to any request with its own (a path as a digest, an endless body, a realm on
plain HTTP, a cut connection, ...)."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from airgap.oci import OCI_INDEX, OCI_MANIFEST, Manifest, sha256_digest

Handler = Callable[["Exchange"], object]


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


class Exchange(BaseHTTPRequestHandler):
    """One request; `hostile` is the registry serving it."""

    hostile: HostileRegistry
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def stream(self, status: int, pieces: Callable[[], bytes | None], headers: dict[str, str] | None = None,
               length: int | None = None) -> int:
        """Send `pieces()` until it returns None or the client goes away; returns the bytes sent."""
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.send_header("Connection", "close")
        self.end_headers()
        sent = 0
        try:
            while (piece := pieces()) is not None:
                self.wfile.write(piece)
                self.wfile.flush()
                sent += len(piece)
        except OSError:
            pass
        self.close_connection = True
        with self.hostile.lock:
            self.hostile.streamed += sent
        return sent

    def _dispatch(self) -> None:
        with self.hostile.lock:
            self.hostile.requests.append(Request(self.command, self.path, dict(self.headers.items())))
        for matches, handler in self.hostile.script:
            if matches(self):
                handler(self)
                return
        self.hostile.serve(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch


class HostileRegistry:
    """Serves `manifests[(repo, ref)]` and `blobs[digest]`; `script` entries (match, handler) answer first."""

    def __init__(self, tls_dir: Path | None = None):
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.blobs: dict[str, bytes] = {}
        self.script: list[tuple[Callable[[Exchange], bool], Handler]] = []
        self.requests: list[Request] = []
        self.streamed = 0  # bytes sent by `stream` answers
        self.lock = threading.Lock()
        handler = type("Bound", (Exchange,), {"hostile": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.ca_file: Path | None = None
        if tls_dir:
            self.ca_file, context = _tls(tls_dir)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> HostileRegistry:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def on(self, method: str, pattern: str, handler: Handler) -> None:
        """Answer requests with this method whose path matches the regex `pattern` with `handler`."""
        self.script.insert(0, (lambda ex: ex.command == method and re.search(pattern, ex.path) is not None, handler))

    def count(self, method: str, pattern: str) -> int:
        return sum(1 for r in self.requests if r.method == method and re.search(pattern, r.path))

    # -- content

    def add_manifest(self, repo: str, ref: str, body: dict[str, Any] | bytes, media_type: str = OCI_MANIFEST) -> str:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.manifests[(repo, ref)] = (data, media_type)
        self.manifests[(repo, sha256_digest(data))] = (data, media_type)
        return sha256_digest(data)

    def add_image(self, repo: str, tag: str, layers: list[bytes], *,
                  descriptors: list[dict[str, Any]] | None = None) -> Manifest:
        """An image of `layers` (and a config); `descriptors` replace its layer descriptors (a hostile one)."""
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [
            sha256_digest(x) for x in layers]}}).encode()
        for blob in (config, *layers):
            self.blobs[sha256_digest(blob)] = blob
        body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": descriptor("application/vnd.oci.image.config.v1+json", config),
                "layers": descriptors if descriptors is not None else [
                    descriptor("application/vnd.oci.image.layer.v1.tar+gzip", x) for x in layers]}
        self.add_manifest(repo, tag, body)
        return Manifest(json.dumps(body).encode(), OCI_MANIFEST)

    # -- the ordinary registry

    def serve(self, ex: Exchange) -> None:
        path = ex.path.split("?", 1)[0]
        if path == "/v2/":
            ex.send(200, b"{}")
            return
        match = re.fullmatch(r"/v2/(.+)/(manifests|blobs)/(.+)", path)
        if ex.command in ("GET", "HEAD") and match:
            repo, kind, ref = match.groups()
            found = self.manifests.get((repo, ref)) if kind == "manifests" else (
                (self.blobs[ref], "application/octet-stream") if ref in self.blobs else None)
            if found is None:
                ex.send(404, b'{"errors":[{"code":"UNKNOWN"}]}')
                return
            data, media_type = found
            ex.send(200, data, {"Content-Type": media_type, "Docker-Content-Digest": sha256_digest(data)})
            return
        if ex.command == "POST" and re.fullmatch(r"/v2/(.+)/blobs/uploads/", path):
            ex.send(202, headers={"Location": f"/upload/{time.monotonic_ns()}"})
            return
        if ex.command == "PUT" and path.startswith("/upload/"):
            data = ex.rfile.read(int(ex.headers.get("Content-Length", "0")))
            self.blobs[sha256_digest(data)] = data
            ex.send(201, headers={"Docker-Content-Digest": sha256_digest(data)})
            return
        if ex.command == "PUT" and match:
            repo, _, ref = match.groups()
            data = ex.rfile.read(int(ex.headers.get("Content-Length", "0")))
            self.add_manifest(repo, ref, data, ex.headers.get("Content-Type", OCI_MANIFEST))
            ex.send(201, headers={"Docker-Content-Digest": sha256_digest(data)})
            return
        ex.send(404)


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data), **extra}


def index_of(children: list[str], sizes: list[int]) -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": d, "size": n, "platform": {"os": "linux", "architecture": "amd64"}}
        for d, n in zip(children, sizes, strict=True)]}


def _tls(root: Path) -> tuple[Path, ssl.SSLContext]:
    """A CA and a certificate for 127.0.0.1 it signed; returns the CA's PEM file and a server context."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pai hostile test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    root.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = root / "ca.pem", root / "server.pem", root / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return ca_file, context


def files_under(root: Path, *, skip: tuple[Path, ...] = ()) -> dict[str, str]:
    """Every file and folder under `root` (but those under `skip`) -> its sha256 ("" for a folder): compared before
    and after a refusal."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
            for p in sorted(root.rglob("*")) if not any(p.is_relative_to(s) for s in skip)}
