"""A real Kubernetes API server on loopback for the end-to-end tests: etcd and kube-apiserver from .tools/bin,
started as controller-runtime's envtest starts them (service-account keys and issuer, a cert dir, RBAC,
--advertise-address=127.0.0.1, --endpoint-reconciler-type=none). No kubelet and no controllers: nothing becomes
ready, namespaces stay Terminating until finalized by hand, and no default ServiceAccount appears (so the
ServiceAccount admission plugin is off, as in envtest)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from registries import free_port, wait_listening
from urllib3.exceptions import HTTPError

TOOLS = Path(__file__).resolve().parents[2] / ".tools" / "bin"
CRDS = Path(__file__).resolve().parent / "crds"  # derived by scripts/derive-e2e-crds.py
FIELD_MANAGER = "pai-e2e"
ADMIN = "pai-e2e-admin"  # in system:masters
TENANT_USER = "pai-e2e-deployer"  # no rights but what the platform's RBAC grants its groups
PEM = serialization.Encoding.PEM
PKCS8 = serialization.PrivateFormat.PKCS8
NO_PASSWORD = serialization.NoEncryption()


SERVER_TOOLS = ("etcd", "kube-apiserver")  # what ApiServer runs


def require_tools(*names: str) -> None:
    """Skip the test unless scripts/tools.sh has built every one of the tools (scripts/e2e.sh builds them first)."""
    missing = [name for name in names if not (TOOLS / name).exists()]
    if missing:
        pytest.skip(f"{', '.join(missing)} not in .tools/bin: run scripts/tools.sh (scripts/e2e.sh does)")


@dataclass
class Identity:
    """A client certificate and key, written as PEM files."""

    cert: Path
    key: Path


def _name(common_name: str, groups: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    attrs += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
    return x509.Name(attrs)


@dataclass
class Authority:
    """A throw-away CA that signs the serving certificate and the client identities."""

    root: Path
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    cert: x509.Certificate | None = None

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.cert = self._sign(_name("pai-e2e-ca"), self.key.public_key(), ca=True)
        (self.root / "ca.crt").write_bytes(self.cert.public_bytes(PEM))

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.crt"

    def _sign(self, subject: x509.Name, public_key: ec.EllipticCurvePublicKey, *, ca: bool = False,
              server: bool = False) -> x509.Certificate:
        now = datetime.datetime.now(datetime.UTC)
        builder = (x509.CertificateBuilder().subject_name(subject)
                   .issuer_name(subject if ca else _name("pai-e2e-ca"))
                   .public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def issue(self, name: str, common_name: str, groups: tuple[str, ...] = (), *, server: bool = False) -> Identity:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._sign(_name(common_name, groups), key.public_key(), server=server)
        identity = Identity(self.root / f"{name}.crt", self.root / f"{name}.key")
        identity.cert.write_bytes(cert.public_bytes(PEM))
        identity.key.write_bytes(key.private_bytes(PEM, PKCS8, NO_PASSWORD))
        return identity


@dataclass
class ApiServer:
    """etcd + kube-apiserver under `root`, with an admin kubeconfig and one for a non-admin user in `groups`."""

    root: Path
    tenant_groups: tuple[str, ...] = ()
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    url: str = ""

    def start(self) -> ApiServer:
        self.root.mkdir(parents=True, exist_ok=True)
        ca = Authority(self.root / "pki")
        serving = ca.issue("serving", "kube-apiserver", server=True)
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (self.root / "pki" / "sa.key").write_bytes(sa_key.private_bytes(PEM, PKCS8, NO_PASSWORD))
        etcd_port, peer_port, port = free_port(), free_port(), free_port()
        self._spawn("etcd", [
            str(TOOLS / "etcd"), "--data-dir", str(self.root / "etcd"), "--unsafe-no-fsync",
            "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-cluster", f"default=http://127.0.0.1:{peer_port}",
        ], etcd_port)
        self.url = f"https://127.0.0.1:{port}"
        self._spawn("kube-apiserver", [
            str(TOOLS / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            f"--cert-dir={self.root / 'certs'}", f"--secure-port={port}", "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1", "--service-cluster-ip-range=10.0.0.0/24", "--allow-privileged=true",
            "--authorization-mode=RBAC", "--disable-admission-plugins=ServiceAccount",
            "--endpoint-reconciler-type=none", f"--client-ca-file={ca.ca_file}",
            f"--tls-cert-file={serving.cert}", f"--tls-private-key-file={serving.key}",
            f"--service-account-issuer={self.url}", f"--service-account-key-file={self.root / 'pki' / 'sa.key'}",
            f"--service-account-signing-key-file={self.root / 'pki' / 'sa.key'}",
        ], port)
        self._write_kubeconfig(self.admin_kubeconfig, ca, ca.issue("admin", ADMIN, ("system:masters",)))
        self._write_kubeconfig(self.tenant_kubeconfig, ca, ca.issue("tenant", TENANT_USER, self.tenant_groups))
        self._wait_ready()
        return self

    @property
    def admin_kubeconfig(self) -> Path:
        return self.root / "admin.kubeconfig"

    @property
    def tenant_kubeconfig(self) -> Path:
        return self.root / "tenant.kubeconfig"

    def api(self, kubeconfig: Path | None = None) -> client.ApiClient:
        """A client of the real `kubernetes` package, as the admin unless given another kubeconfig."""
        api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            str(kubeconfig or self.admin_kubeconfig))
        return api

    def stop(self) -> None:
        for proc in reversed(self.procs):  # the API server before its etcd
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)

    def _spawn(self, name: str, argv: list[str], port: int) -> None:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - the process keeps it
        proc = subprocess.Popen(argv, stdout=log, stderr=log)
        self.procs.append(proc)
        if not wait_listening(port, proc, timeout=60):
            self.stop()
            raise RuntimeError(f"{name} did not start: {(self.root / f'{name}.log').read_text()[-3000:]}")

    def _write_kubeconfig(self, path: Path, ca: Authority, identity: Identity) -> None:
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "e2e",
            "clusters": [{"name": "e2e", "cluster": {"server": self.url,
                                                     "certificate-authority": str(ca.ca_file)}}],
            "users": [{"name": "e2e", "user": {"client-certificate": str(identity.cert),
                                               "client-key": str(identity.key)}}],
            "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "e2e"}}],
        }))

    def _wait_ready(self, timeout: float = 120.0) -> None:
        """Until /readyz answers ok (the RBAC bootstrap roles exist by then)."""
        api = self.api()
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                response = api.call_api(*api.param_serialize("GET", "/readyz"))
                body = response.response.data.decode(errors="replace")
                if response.status == 200 and body == "ok":
                    return
                last = body
            except (ApiException, HTTPError, OSError) as error:  # not up yet: retried until the deadline
                last = str(error)
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"kube-apiserver not ready after {timeout}s: {last[-500:]}")


def install_crds(dynamic: DynamicClient, sets: Iterable[str] | None = None) -> None:
    """The derived CRD sets named (every one by default), server-side applied, then waited for until
    Established."""
    crd_api = dynamic.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    names = []
    for path in sorted(CRDS.glob("*.json")) if sets is None else [CRDS / f"{name}.json" for name in sets]:
        for crd in json.loads(path.read_text())["crds"]:
            crd_api.server_side_apply(body=crd, field_manager=FIELD_MANAGER, force_conflicts=True)
            names.append(crd["metadata"]["name"])
    deadline = time.monotonic() + 60
    pending = set(names)
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            conditions = crd_api.get(name=name).to_dict().get("status", {}).get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                pending.discard(name)
        time.sleep(0.2)
    assert not pending, f"CRDs not established: {sorted(pending)}"


def put(dynamic: DynamicClient, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
    """Server-side apply `obj` as the admin, without its status and the metadata the server owns (uid,
    resourceVersion); then its status, where it has one, through the status subresource, as the controller that
    owns it would write it. What the server stored (or, with dry_run, would store)."""
    resource = dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    namespace = obj["metadata"].get("namespace")
    body = {k: v for k, v in obj.items() if k != "status"}
    body["metadata"] = {k: v for k, v in obj["metadata"].items() if k not in ("uid", "resourceVersion")}
    extra = {"dry_run": "All"} if dry_run else {}
    stored: dict[str, Any] = resource.server_side_apply(
        body=body, namespace=namespace, field_manager=FIELD_MANAGER, force_conflicts=True, **extra).to_dict()
    if obj.get("status") and not dry_run:
        stored = resource.status.patch(name=obj["metadata"]["name"], namespace=namespace,
                                       body={"status": obj["status"]},
                                       content_type="application/merge-patch+json").to_dict()
    return stored


def refused(dynamic: DynamicClient, obj: dict[str, Any], *, dry_run: bool = False) -> str | None:
    """`put` of `obj`; the server's refusal as `Kind namespace/name: message`, or None when it admits it."""
    try:
        put(dynamic, obj, dry_run=dry_run)
    except ApiException as error:
        body = json.loads(error.body) if error.body else {}
        return f"{obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}: " \
               f"{body.get('message', error.reason)}"
    return None
