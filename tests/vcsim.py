"""The govmomi vCenter simulator (tests/vcsim/main.go): built once per source hash, started on a free port."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
            proc.stdin.close()  # the simulator exits when its stdin closes
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()



def calls(sim: Vcsim) -> int:
    """How many requests (SOAP calls and the version document) the simulator has served so far."""
    with urllib.request.urlopen(f"http://{sim.host}:{sim.port}/pai/calls", timeout=10) as answer:
        return int(answer.read())
