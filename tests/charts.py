"""Small Helm charts the render tests write themselves, served for real: as OCI charts pushed by helm to a
docker-registry over TLS (helm speaks HTTPS to OCI registries), and from a classic index on a tiny http.server,
both on 127.0.0.1. The helm binary is the one scripts/tools.sh builds."""

from __future__ import annotations

import datetime
import functools
import ipaddress
import json
import os
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from validation.sources.helm import TOOLS_HELM


def helm(*args: str, env: dict[str, str]) -> str:
    """Run the built helm (the peer that packages and pushes), failing the test with its message."""
    done = subprocess.run([str(TOOLS_HELM), *args], capture_output=True, text=True, env=env, timeout=120,
                          check=False)
    assert done.returncode == 0, f"helm {' '.join(args)}: {done.stderr}"
    return done.stdout


def helm_env(root: Path, ca_file: Path) -> dict[str, str]:
    """helm's caches and config under `root`, trusting the test registry's certificate."""
    return {**os.environ, "SSL_CERT_FILE": str(ca_file), "HELM_CACHE_HOME": str(root / "cache"),
            "HELM_CONFIG_HOME": str(root / "config"), "HELM_DATA_HOME": str(root / "data")}


def self_signed(root: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA, and its key: (cert file, key file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    root.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = root / "registry.crt", root / "registry.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def write_chart(root: Path, name: str, version: str, templates: dict[str, str],
                values: dict[str, Any] | None = None) -> Path:
    """A chart directory: Chart.yaml, values.yaml and the given templates."""
    chart = root / name
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text(yaml.safe_dump({"apiVersion": "v2", "name": name, "version": version}))
    (chart / "values.yaml").write_text(yaml.safe_dump(values or {}))
    for file, text in templates.items():
        (chart / "templates" / file).write_text(text)
    return chart


def naming(images: list[str]) -> str:
    """A template naming each image one way real charts do, in turn: a container, an init container, a hook Job,
    an argument, an environment value and a JSON document in a ConfigMap."""
    containers: list[dict[str, Any]] = []
    init: list[dict[str, Any]] = []
    hook: list[dict[str, Any]] = []
    config: dict[str, Any] = {}
    for i, image in enumerate(images):
        way = i % 6
        if way == 0:
            containers.append({"name": f"c{i}", "image": image})
        elif way == 1:
            init.append({"name": f"i{i}", "image": image})
        elif way == 2:
            hook.append({"name": f"h{i}", "image": image})
        elif way == 3:
            containers.append({"name": f"a{i}", "image": images[0], "args": ["--v=2", f"--helper-image={image}"]})
        elif way == 4:
            containers.append({"name": f"e{i}", "image": images[0], "env": [{"name": "HELPER", "value": image}]})
        else:
            config[f"helper{i}"] = {"image": image}
    docs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "config"},
                                   "data": {"config.json": json.dumps(config)}}]
    if containers or init:
        spec = {"containers": containers or [{"name": "main", "image": init[0]["image"]}], "initContainers": init}
        docs.append(_workload("Deployment", "{{ .Release.Name }}-main", {}, spec))
    if hook:
        docs.append(_workload("Job", "{{ .Release.Name }}-hook", {"helm.sh/hook": "pre-install"},
                              {"containers": hook, "restartPolicy": "Never"}))
    return "\n---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)


def _workload(kind: str, name: str, annotations: dict[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "apps/v1" if kind == "Deployment" else "batch/v1", "kind": kind,
            "metadata": {"name": name, "annotations": annotations}, "spec": {"template": {"spec": spec}}}


# The GPU Operator's way: the chart renders a ClusterPolicy whose operand blocks the operator turns into images.
CLUSTER_POLICY = """apiVersion: nvidia.com/v1
kind: ClusterPolicy
metadata:
  name: cluster-policy
spec:
{{- range $name, $block := .Values }}
{{- if and (kindIs "map" $block) (hasKey $block "repository") (hasKey $block "image") }}
  {{ $name }}:
    {{- if hasKey $block "enabled" }}
    enabled: {{ $block.enabled }}
    {{- end }}
    repository: {{ $block.repository | quote }}
    image: {{ $block.image | quote }}
    version: {{ $block.version | quote }}
{{- end }}
{{- end }}
"""


class ChartServer:
    """A classic Helm repository: http.server on 127.0.0.1 serving a folder of index.yaml and chart archives."""

    def __init__(self, root: Path):
        root.mkdir(parents=True, exist_ok=True)
        handler = functools.partial(_Quiet, directory=str(root))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass
