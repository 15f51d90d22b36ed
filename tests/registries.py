"""Real OCI registries on 127.0.0.1 for the air-gap tests and bench: Debian's docker-registry (CNCF distribution)
one process per registry on a free port, a fault-injecting TCP proxy, and synthetic images pushed with the
project's own client."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import random
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from airgap.oci import OCI_INDEX, OCI_MANIFEST, Manifest, Registry, sha256_digest

REGISTRY_BIN = "docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class RegistryProcess:
    """One docker-registry serving `root/storage` on 127.0.0.1:<free port>."""

    root: Path
    auth: dict[str, Any] | None = None
    tls: dict[str, str] | None = None  # docker-registry's http.tls: certificate and key files (helm needs HTTPS)
    host: str = ""
    proc: subprocess.Popen[bytes] | None = None

    @property
    def storage(self) -> Path:
        return self.root / "storage"

    def start(self) -> RegistryProcess:
        self.root.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            port = free_port()
            config: dict[str, Any] = {
                "version": 0.1,
                "log": {"level": "error", "accesslog": {"disabled": True}},
                "storage": {"filesystem": {"rootdirectory": str(self.storage)}, "delete": {"enabled": True}},
                "http": {"addr": f"127.0.0.1:{port}", "secret": "pai-airgap-test-secret"},
            }
            if self.auth:
                config["auth"] = self.auth
            if self.tls:
                config["http"]["tls"] = self.tls
            (self.root / "config.yml").write_text(yaml.safe_dump(config))
            log = open(self.root / "registry.log", "ab")  # noqa: SIM115 - the process keeps it
            self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(self.root / "config.yml")],
                                         stdout=log, stderr=log)
            self.host = f"127.0.0.1:{port}"
            if wait_listening(port, self.proc):
                return self
        raise RuntimeError(f"docker-registry did not start: {(self.root / 'registry.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def blob_files(self) -> int:
        """Blobs fully stored (committed uploads), counted in the registry's storage."""
        return sum(1 for _ in (self.storage / "docker/registry/v2/blobs").glob("sha256/*/*/data"))

    def tags(self, repo: str) -> list[str]:
        try:
            with urllib.request.urlopen(f"http://{self.host}/v2/{repo}/tags/list", timeout=10) as resp:
                return list(json.loads(resp.read()).get("tags") or [])
        except urllib.error.HTTPError:
            return []


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> bool:
    """True once something accepts on the port; False if `proc` exits first (e.g. the port was taken)."""
    deadline = threading.Event()
    timer = threading.Timer(timeout, deadline.set)
    timer.start()
    try:
        while not deadline.is_set():
            if proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return True
            except OSError:
                deadline.wait(0.05)
        return False
    finally:
        timer.cancel()


# ----------------------------------------------------------------------------------------- synthetic content


def random_bytes(seed: str, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def gzip_layer(seed: str, size: int) -> bytes:
    """A valid gzip stream of incompressible bytes (level 0), so skopeo sees an ordinary compressed layer."""
    return gzip.compress(random_bytes(seed, size), compresslevel=0, mtime=0)


def _descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data), **extra}


def push_blob(client: Registry, repo: str, data: bytes) -> None:
    client.push_blob(repo, sha256_digest(data), len(data), lambda: [data], mount_from=repo)


def push_image(client: Registry, repo: str, tag: str, layers: list[bytes], *, arch: str = "amd64",
               push_tag: bool = True) -> Manifest:
    """An OCI image: a config naming the layers' (fake) diff ids, then the manifest under `tag`."""
    config = json.dumps({"architecture": arch, "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [sha256_digest(x) for x in layers]}}).encode()
    for blob in [config, *layers]:
        push_blob(client, repo, blob)
    body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": _descriptor("application/vnd.oci.image.config.v1+json", config),
            "layers": [_descriptor("application/vnd.oci.image.layer.v1.tar+gzip", x) for x in layers]}
    manifest = Manifest(json.dumps(body).encode(), OCI_MANIFEST)
    client.put_manifest(repo, tag if push_tag else manifest.digest, manifest)
    return manifest


def push_index(client: Registry, repo: str, tag: str, platforms: dict[str, list[bytes]]) -> Manifest:
    """A multi-platform image index over one image per architecture."""
    children = [(arch, push_image(client, repo, tag, layers, arch=arch, push_tag=False))
                for arch, layers in platforms.items()]
    body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        _descriptor(OCI_MANIFEST, m.data, platform={"architecture": arch, "os": "linux"}) for arch, m in children]}
    index = Manifest(json.dumps(body).encode(), OCI_INDEX)
    client.put_manifest(repo, tag, index)
    return index


def push_chart(client: Registry, repo: str, version: str, content: bytes) -> Manifest:
    """A Helm chart as an OCI artifact (Helm's config and content media types)."""
    config = json.dumps({"name": repo.rsplit("/", 1)[-1], "version": version, "apiVersion": "v2"}).encode()
    for blob in (config, content):
        push_blob(client, repo, blob)
    body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": _descriptor("application/vnd.cncf.helm.config.v1+json", config),
            "layers": [_descriptor("application/vnd.cncf.helm.chart.content.v1.tar+gzip", content)]}
    manifest = Manifest(json.dumps(body).encode(), OCI_MANIFEST)
    client.put_manifest(repo, version, manifest)
    return manifest


def push_signature(client: Registry, repo: str, subject: Manifest, payload: bytes) -> Manifest:
    """A signature artifact whose subject is `subject`, listed under the Referrers fallback tag sha256-<hex>."""
    empty = b"{}"
    for blob in (empty, payload):
        push_blob(client, repo, blob)
    body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.dev.cosign.signature",
            "config": _descriptor("application/vnd.oci.empty.v1+json", empty),
            "layers": [_descriptor("application/vnd.dev.cosign.simplesigning.v1+json", payload)],
            "subject": _descriptor(subject.media_type, subject.data)}
    signature = Manifest(json.dumps(body).encode(), OCI_MANIFEST)
    client.put_manifest(repo, signature.digest, signature)
    fallback = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        _descriptor(OCI_MANIFEST, signature.data, artifactType="application/vnd.dev.cosign.signature")]}
    client.put_manifest(repo, subject.digest.replace(":", "-"), Manifest(json.dumps(fallback).encode(), OCI_INDEX))
    return signature


def file_digest(path: Path) -> str:
    with open(path, "rb") as f:
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


# ------------------------------------------------------------------------------------------------- proxy


@dataclass
class FaultProxy:
    """A TCP proxy to `upstream` on a free port. Connection number n (from 1) with n % every == 1 is answered
    `HTTP 503`, with n % every == 2 is cut after `cut_after` bytes, until `max_faults` faults were injected.
    `rate` (bytes/s, 0 = unlimited) throttles each direction of every connection."""

    upstream: str
    every: int = 0
    cut_after: int = 256 * 1024
    max_faults: int = 0
    rate: int = 0
    port: int = 0
    connections: int = 0
    injected_503: int = 0
    injected_cuts: int = 0
    bytes_up: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: socket.socket | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.close()

    def _accept(self) -> None:
        assert self._server
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _fault(self) -> str:
        with self._lock:
            self.connections += 1
            n = self.connections
            if not self.every or self.injected_503 + self.injected_cuts >= self.max_faults:
                return ""
            if n % self.every == 1:
                self.injected_503 += 1
                return "503"
            if n % self.every == 2:
                self.injected_cuts += 1
                return "cut"
            return ""

    def _serve(self, client: socket.socket) -> None:
        fault = self._fault()
        if fault == "503":
            client.recv(65536)
            client.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            client.close()
            return
        host, port = self.upstream.split(":")
        upstream = socket.create_connection((host, int(port)))
        budget = [self.cut_after if fault == "cut" else -1]
        done = threading.Event()
        for a, b, up in ((client, upstream, True), (upstream, client, False)):
            threading.Thread(target=self._pipe, args=(a, b, up, budget, done), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, up: bool, budget: list[int],
              done: threading.Event) -> None:
        try:
            for chunk in self._chunks(src):
                with self._lock:
                    if budget[0] >= 0:
                        budget[0] -= len(chunk)
                        if budget[0] < 0:
                            break
                    if up:
                        self.bytes_up += len(chunk)
                dst.sendall(chunk)
                if self.rate:
                    done.wait(len(chunk) / self.rate)
        except OSError:
            pass
        finally:
            done.set()
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def _chunks(self, src: socket.socket) -> Iterator[bytes]:
        while chunk := src.recv(65536 if not self.rate else max(1024, self.rate // 20)):
            yield chunk


@dataclass
class Seeded:
    """What a source registry holds: reference -> manifest, plus the signature of the first image."""

    host: str
    manifests: dict[str, Manifest]
    signature: Manifest
    unique_bytes: int

    @property
    def refs(self) -> list[str]:
        return list(self.manifests)

    def images_file(self, path: Path) -> Path:
        path.write_text("# images for the test\n\n" + "\n".join(self.refs) + "\n")
        return path


def seed(registry: RegistryProcess, images: int = 3, layer: int = 64 * 1024) -> Seeded:
    """Images sharing a base layer, a two-platform index, a Helm chart and a signature (fallback tag)."""
    client = Registry(registry.host, plain_http=True)
    base = gzip_layer("base", 2 * layer)
    manifests: dict[str, Manifest] = {}
    for i in range(images):
        manifests[f"{registry.host}/team/app-{i}:v{i}"] = push_image(
            client, f"team/app-{i}", f"v{i}", [base, gzip_layer(f"app-{i}", layer)])
    manifests[f"{registry.host}/multi/tool:1.0"] = push_index(
        client, "multi/tool", "1.0", {"amd64": [base, gzip_layer("amd", layer)], "arm64": [gzip_layer("arm", layer)]})
    manifests[f"{registry.host}/charts/demo:0.1.0"] = push_chart(client, "charts/demo", "0.1.0", gzip_layer("c", 900))
    first = manifests[f"{registry.host}/team/app-0:v0"]
    signature = push_signature(client, "team/app-0", first, b'{"critical":{"image":"app-0"}}')
    unique = _unique_blob_bytes(client, manifests, signature)
    client.close()
    return Seeded(registry.host, manifests, signature, unique)


def _unique_blob_bytes(client: Registry, manifests: dict[str, Manifest], signature: Manifest) -> int:
    sizes: dict[str, int] = {}
    pending = [(ref.split("/", 1)[1].split(":")[0], m) for ref, m in manifests.items()] + [("team/app-0", signature)]
    while pending:
        repo, manifest = pending.pop()
        sizes.update({d["digest"]: d["size"] for d in manifest.blobs()})
        for child in manifest.children():
            found = client.get_manifest(repo, child["digest"])
            assert found
            pending.append((repo, found))
    return sum(sizes.values())


def basic_auth_pair(start: Callable[..., RegistryProcess], root: Path) -> tuple[RegistryProcess, Seeded, Path]:
    """A source seeded with one image and a registry that wants basic auth (user mirror, password s3cret, an
    htpasswd file); returns the secured registry, the source's content and an --images file of it."""
    import bcrypt

    htpasswd = root / "htpasswd"
    htpasswd.write_bytes(b"mirror:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)) + b"\n")
    source = start("source")
    secured = start("secured", auth={"htpasswd": {"realm": "pai-test", "path": str(htpasswd)}})
    seeded = seed(source, images=1)
    return secured, seeded, seeded.images_file(root / "images.txt")
