"""A real MLflow server (the chart's appVersion, pip mlflow-skinny) started the way the chart starts it from the
values our component renders: auth on with the admin and default permission we set, allowed hosts, proxied
artifacts. Only the stores are local stand-ins (no PostgreSQL or S3 here): SQLite for `postgresql://` (the
tracking and the auth store) and a directory for the `s3://` artifacts destination."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from conftest import minimal, releases, stack_config
from schemas import chart_defaults

from components import namespaces
from components.catalog import CATALOG
from program.deploy import deploy
from program.offline import run_offline

ADMIN, PASSWORD = "ml-admin", "Admin-Pw-9d2e77"
INGRESS_HOST = "mlflow.pai.example.com"
MLFLOW = {"adminUser": ADMIN, "defaultPermission": "NO_PERMISSIONS",
          "database": {"host": "pg.example.com"},
          "artifacts": {"endpoint": "https://s3.example.com", "bucket": "ml-artifacts", "path": "runs"}}
SECRETS = {"mlflowDbPassword": "db", "mlflowAdminPassword": PASSWORD, "s3AccessKeyId": "id", "s3SecretAccessKey": "k"}
STARTUP_S = 240  # a deadline for the server to answer /health, not a sleep: it is polled


@dataclass(frozen=True)
class Server:
    url: str
    values: dict[str, Any]
    artifacts: Path


def rendered_values() -> dict[str, Any]:
    cluster = {"target": "generic", "kubernetesVersion": "1.33", "ingress": {"domain": "pai.example.com"}}
    records = run_offline(deploy, stack_config(minimal(cluster=cluster, mlflow=MLFLOW), SECRETS))
    (found,) = [r for r in releases(records) if r["namespace"] == namespaces.MLFLOW]
    return dict(found["values"])


def server_command(values: dict[str, Any], port: int, root: Path) -> tuple[list[str], dict[str, str]]:
    """`mlflow server` as the chart's deployment.yaml builds it from these values, stores swapped for local ones."""
    defaults = chart_defaults("mlflow", CATALOG.chart("mlflow").version)
    args = ["server", "--host=127.0.0.1", f"--port={port}", "--workers=1",
            f"--backend-store-uri=sqlite:///{root / 'tracking.db'}"]  # the chart: postgresql:// with PG* from env
    root_values = values["artifactRoot"]
    assert root_values["proxiedArtifactStorage"] is True
    args += [f"--artifacts-destination={root / 'artifacts'}", "--serve-artifacts"]  # the chart: s3://bucket/path
    auth = {**defaults["auth"], **values["auth"]}
    assert auth["enabled"] is True
    args.append(f"--app-name={auth['appName']}")
    ini = root / auth["configFile"]
    # auth_ini_configmap.yaml, with the admin the init container takes from our admin Secret
    ini.write_text("[mlflow]\n"
                   f"default_permission = {auth['defaultPermission']}\n"
                   f"database_uri = sqlite:///{root / 'auth.db'}\n"
                   f"admin_username = {ADMIN}\n"
                   f"admin_password = {PASSWORD}\n"
                   f"authorization_function = {auth['authorizationFunction']}\n")
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(ini),
           "MLFLOW_SERVER_ALLOWED_HOSTS": ",".join(values["serverAllowedHosts"]),
           "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16)}  # the chart generates this Secret
    return [sys.executable, "-m", "mlflow", *args], env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(server: Server, method: str, path: str, body: Any = None, user: tuple[str, str] | None = None,
         host: str = INGRESS_HOST, raw: bytes | None = None) -> tuple[int, Any]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(server.url + path, data=data, method=method, headers={"Host": host})
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if user:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(user).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
            return response.status, json.loads(text) if text.startswith("{") else text
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@contextlib.contextmanager
def running_server(root: Path, *, loopback_host: bool = False) -> Iterator[Server]:
    """The server, answering /health; `loopback_host`: also to the 127.0.0.1:<port> Host a client sends."""
    values = rendered_values()
    port = free_port()
    command, env = server_command(values, port, root)
    if loopback_host:
        env["MLFLOW_SERVER_ALLOWED_HOSTS"] += f",127.0.0.1:{port}"
    log = (root / "server.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    live = Server(url=f"http://127.0.0.1:{port}", values=values, artifacts=root / "artifacts")
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            assert process.poll() is None, (root / "server.log").read_text()[-3000:]
            try:
                if call(live, "GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "MLflow did not answer /health in time"
            time.sleep(0.5)
        yield live
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    pytest.importorskip("mlflow.server.auth")
    with running_server(tmp_path_factory.mktemp("mlflow")) as live:
        yield live


def test_the_server_is_the_version_the_chart_runs() -> None:
    pytest.importorskip("mlflow")
    assert metadata.version("mlflow-skinny") == CATALOG.chart("mlflow").images["image"].tag


def test_anonymous_requests_are_refused_and_the_admin_is_let_in(server: Server) -> None:
    assert call(server, "GET", "/api/2.0/mlflow/experiments/search?max_results=1")[0] == 401
    assert call(server, "GET", "/api/2.0/mlflow/experiments/search?max_results=1", user=(ADMIN, "wrong"))[0] == 401
    status, body = call(server, "GET", "/api/2.0/mlflow/experiments/search?max_results=1", user=(ADMIN, PASSWORD))
    assert status == 200 and body["experiments"][0]["name"] == "Default"


@pytest.mark.parametrize("host", [INGRESS_HOST, "mlflow.mlflow.svc.cluster.local", "mlflow"])
def test_the_ingress_and_service_names_are_allowed_hosts(server: Server, host: str) -> None:
    assert call(server, "GET", "/api/2.0/mlflow/experiments/search?max_results=1", user=(ADMIN, PASSWORD),
                host=host)[0] == 200


def test_other_hosts_are_refused(server: Server) -> None:
    assert call(server, "GET", "/api/2.0/mlflow/experiments/search?max_results=1", user=(ADMIN, PASSWORD),
                host="evil.example.com")[0] == 403


def test_artifacts_are_proxied_to_the_destination(server: Server) -> None:
    admin = (ADMIN, PASSWORD)
    status, created = call(server, "POST", "/api/2.0/mlflow/experiments/create", {"name": "proxied"}, admin)
    assert status == 200, created
    experiment = created["experiment_id"]
    status, found = call(server, "GET", f"/api/2.0/mlflow/experiments/get?experiment_id={experiment}", user=admin)
    assert found["experiment"]["artifact_location"].startswith("mlflow-artifacts:")  # clients never see S3
    status, run = call(server, "POST", "/api/2.0/mlflow/runs/create", {"experiment_id": experiment}, admin)
    run_id = run["run"]["info"]["run_id"]
    path = f"{experiment}/{run_id}/artifacts/model-card.md"
    status, _ = call(server, "PUT", f"/api/2.0/mlflow-artifacts/artifacts/{path}", user=admin, raw=b"# card\n")
    assert status == 200
    assert (server.artifacts / path).read_bytes() == b"# card\n"


def test_new_users_get_the_configured_default_permission(server: Server) -> None:
    admin, reader = (ADMIN, PASSWORD), ("new-user", "New-User-Pw-1234")
    status, created = call(server, "POST", "/api/2.0/mlflow/experiments/create", {"name": "private"}, admin)
    assert status == 200, created
    status, body = call(server, "POST", "/api/2.0/mlflow/users/create",
                        {"username": reader[0], "password": reader[1]}, admin)
    assert status == 200, body
    path = f"/api/2.0/mlflow/experiments/get?experiment_id={created['experiment_id']}"
    assert call(server, "GET", path, user=reader)[0] == 403  # NO_PERMISSIONS, as rendered
    assert call(server, "GET", path, user=admin)[0] == 200
