"""The govmomi vCenter simulator (tests/vcsim/main.go): built once per source hash, started on a free port."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "tests" / "vcsim" / "main.go"
GOPATH = "/usr/share/gocode"
USER, PASSWORD = "pai@vsphere.local", "vcsim-Pa55"


class VcsimUnavailable(Exception):
    """Go or Debian's govmomi sources are missing (scripts/deps/vsphere.list)."""


def binary() -> Path:
    """The simulator binary, built under build/ keyed by the source hash (reruns reuse it)."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    out = REPO / "build" / f"vcsim-{digest}"
    if out.exists():
        return out
    go = shutil.which("go")
    if go is None or not (Path(GOPATH) / "src/github.com/vmware/govmomi/simulator").is_dir():
        raise VcsimUnavailable("needs golang-go and golang-github-vmware-govmomi-dev: ./scripts/system-deps.sh")
    out.parent.mkdir(exist_ok=True)
    env = {**os.environ, "GOPATH": GOPATH, "GO111MODULE": "off", "GOCACHE": str(REPO / "build" / "gocache"),
           "GOFLAGS": ""}
    partial = out.with_suffix(".partial")
    subprocess.run([go, "build", "-o", str(partial), str(SOURCE)], env=env, check=True, cwd=SOURCE.parent)
    partial.rename(out)
    return out


@dataclass(frozen=True)
class Vcsim:
    """A running simulator: where it listens and the login it accepts."""

    host: str
    port: int
    user: str
    password: str


def nvidia_vib(version: str) -> dict[str, Any]:
    """The NVIDIA vGPU manager VIB as `esxcli software vib list` shows it on an ESXi 8 host."""
    return {"name": "NVD-AIE_ESXi_8.0.0_Driver", "version": f"{version}-1OEM.800.1.0.20613240", "vendor": "NVD",
            "type": "bootbank", "acceptanceLevel": "VMwareAccepted", "summary": "NVIDIA AI Enterprise vGPU Manager"}


def gpu_host(name: str, manager: str | None, vms: list[tuple[str, str | None]], mode: str = "sharedDirect",
             profile_types: tuple[str, ...] = ("nvidia_h100-80c", "nvidia_h100-40c")) -> dict[str, Any]:
    """One ESXi host with an H100 in `mode`, the vGPU manager VIB `manager` (None: not installed) and its VMs
    (name, vGPU profile or None)."""
    packages = [{"name": "esx-base", "version": "8.0.3-0.0.24022510", "vendor": "VMware"}]
    return {
        "name": name, "graphicsType": mode, "gpuTypes": list(profile_types),
        "gpus": [{"deviceName": "NVIDIA H100 PCIe", "vendorName": "NVIDIA Corporation", "pciId": "0000:3b:00.0",
                  "graphicsType": mode, "memorySizeInKB": 83886080}],
        "packages": packages + ([nvidia_vib(manager)] if manager else []),
        "vms": [{"name": vm, "vgpu": profile or ""} for vm, profile in vms],
    }


@contextmanager
def running(hosts: list[dict[str, Any]]) -> Iterator[Vcsim]:
    """Start the simulator with this inventory on 127.0.0.1 and a free port; stop it on exit."""
    exe = binary()
    with tempfile.TemporaryDirectory(prefix="vcsim-") as tmp:
        spec = Path(tmp) / "spec.json"
        spec.write_text(json.dumps({"hosts": hosts}))
        log = Path(tmp) / "vcsim.log"
        env = {**os.environ, "TMPDIR": tmp, "VCSIM_USER": USER, "VCSIM_PASSWORD": PASSWORD}
        with log.open("w") as err:
            proc = subprocess.Popen([str(exe), "-spec", str(spec)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=err, text=True, cwd=tmp, env=env)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if not line:
                raise RuntimeError(f"vcsim did not start: {log.read_text()}")
            url = urlsplit(line)
            yield Vcsim(url.hostname or "127.0.0.1", url.port or 80, USER, PASSWORD)
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=30)


class CallCounter:
    """How many HTTP requests (SOAP calls) went through a `counting` proxy."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def add(self) -> None:
        with self.lock:
            self.calls += 1


@contextmanager
def counting(sim: Vcsim) -> Iterator[tuple[Vcsim, CallCounter]]:
    """A plain-http proxy in front of the simulator that counts every request; yields the proxy's address."""
    counter = CallCounter()

    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            counter.add()
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            upstream = http.client.HTTPConnection(sim.host, sim.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            upstream.close()

        do_GET = do_POST = _forward

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Vcsim("127.0.0.1", server.server_address[1], sim.user, sim.password), counter
    finally:
        server.shutdown()
        server.server_close()
