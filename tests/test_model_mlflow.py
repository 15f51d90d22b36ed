"""`paictl model register` against a real MLflow server, and `mlflow://NAME@ALIAS` endpoints resolved at plan time
to the gallery digest (plan, bill of materials, retire)."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import StartRegistry, minimal
from model_files import safetensors_model
from registries import RegistryProcess
from test_mlflow_server import ADMIN, PASSWORD, Server, call, running_server

from components.model_endpoints import REGISTERED_MODEL_ANNOTATION
from paictl.cli import main


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The chart's MLflow (auth on), also answering to the loopback address the CLI calls it by."""
    pytest.importorskip("mlflow.server.auth")
    with running_server(tmp_path_factory.mktemp("mlflow-registry"), loopback_host=True) as live:
        yield live


@pytest.fixture
def tracking(mlflow: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow.url)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    return mlflow


def pushed(tmp_path: Path, registry: RegistryProcess, tag: str, capsys: pytest.CaptureFixture[str]) -> str:
    model = safetensors_model(tmp_path / f"chat-{tag}")
    (model / "tokenizer.json").write_text(json.dumps({"revision": tag}))
    assert main(["model", "push", str(model), "--to", f"{registry.host}/dev-models/chat", "--tag", tag,
                 "--plain-http"]) == 0
    return capsys.readouterr().out.strip().rsplit("@", 1)[1]


def alias(server: Server, name: str, alias: str) -> dict[str, Any]:
    query = urllib.parse.urlencode({"name": name, "alias": alias})
    status, body = call(server, "GET", f"/api/2.0/mlflow/registered-models/alias?{query}", user=(ADMIN, PASSWORD))
    assert status == 200, body
    return dict(body["model_version"])


def stack_file(tmp_path: Path, source: str) -> Path:
    endpoint = {"name": "chat", "routingName": "acme/chat", "type": "embedding", "format": "safetensors",
                "source": source, "tenant": "team-a"}
    path = tmp_path / "Pulumi.site.yaml"
    path.write_text(yaml.safe_dump({"config": {f"pai:{k}": v for k, v in minimal(models=[endpoint]).items()}}))
    return path


def planned_endpoint(stack: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["plan", "--config-file", str(stack), "--format", "json"]) == 0
    resources = json.loads(capsys.readouterr().out)["resources"]
    (service,) = [r["inputs"] for r in resources if r["inputs"].get("kind") == "InferenceService"]
    return dict(service)


def test_register_then_resolve_the_alias_in_a_plan(tmp_path: Path, start_registry: StartRegistry,
                                                     tracking: Server, capsys: pytest.CaptureFixture[str]) -> None:
    registry = start_registry("gallery")
    first, second = pushed(tmp_path, registry, "v1", capsys), pushed(tmp_path, registry, "v2", capsys)
    assert first != second
    for tag in ("v1", "v2"):
        assert main(["model", "register", f"{registry.host}/dev-models/chat:{tag}", "--mlflow-uri", tracking.url,
                     "--name", "chat", "--alias", "champion", "--plain-http"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        f"registered chat version 2 as @champion: oci://{registry.host}/dev-models/chat@{second}")
    version = alias(tracking, "chat", "champion")
    assert (version["version"], version["source"]) == ("2", f"oci://{registry.host}/dev-models/chat@{second}")

    stack = stack_file(tmp_path, "mlflow://chat@champion")
    service = planned_endpoint(stack, capsys)
    assert service["spec"]["predictor"]["model"]["storageUri"] == f"oci://{registry.host}/dev-models/chat@{second}"
    assert service["metadata"]["annotations"][REGISTERED_MODEL_ANNOTATION] == "mlflow://chat@champion"

    # moving the alias moves the next plan; the bill of materials carries the model by digest
    assert main(["model", "register", f"{registry.host}/dev-models/chat@{first}", "--name", "chat",
                 "--alias", "champion", "--plain-http"]) == 0
    capsys.readouterr()
    assert planned_endpoint(stack, capsys)["spec"]["predictor"]["model"]["storageUri"].endswith(first)
    assert main(["airgap", "bom", "--config-file", str(stack), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["models"] == [f"oci://{registry.host}/dev-models/chat@{first}"]

    # an endpoint naming it through the alias keeps it from being retired
    assert main(["model", "retire", f"{registry.host}/dev-models/chat@{first}", "--config-file", str(stack),
                 "--plain-http"]) == 1
    assert "pai:models[0] chat (tenant team-a)" in capsys.readouterr().err


def test_an_unresolved_alias_is_a_config_error_naming_it(tmp_path: Path, tracking: Server,
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    stack = stack_file(tmp_path, "mlflow://nobody@champion")
    assert main(["plan", "--config-file", str(stack)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {stack}: pai:models[0].source: mlflow://nobody@champion: MLflow {tracking.url}")
    assert PASSWORD not in err and len(err.strip().splitlines()) == 1
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert main(["plan", "--config-file", str(stack)]) == 2
    assert "mlflow://nobody@champion: set MLFLOW_TRACKING_URI" in capsys.readouterr().err


def test_register_refuses_a_reference_the_gallery_does_not_hold(
        tmp_path: Path, start_registry: StartRegistry, tracking: Server, capsys: pytest.CaptureFixture[str]) -> None:
    registry = start_registry("gallery")
    assert main(["model", "register", f"{registry.host}/dev-models/none:v1", "--name", "none", "--plain-http"]) == 1
    assert f"{registry.host}/dev-models/none:v1: not found" in capsys.readouterr().err
    pushed(tmp_path, registry, "v1", capsys)
    assert main(["model", "register", f"{registry.host}/dev-models/chat:v1", "--name", "chat", "--plain-http",
                 "--mlflow-uri", "ftp://mlflow.example.com"]) == 2
    assert "the MLflow tracking URI 'ftp://mlflow.example.com' is not an http(s) URL" in capsys.readouterr().err
