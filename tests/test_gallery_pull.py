"""Model endpoints pull their modelcar images from this stack's Harbor with the gallery's pull robot: a
dockerconfigjson Secret per tenant (a Pulumi secret, masked in every plan), listed by the tenant's model
ServiceAccount and by each gallery InferenceService itself; other sources are unchanged. And the air-gap mirror's
pull secret: every namespace whose pods pull from the mirror is one the README says must hold it."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, Program, minimal, of_kind, releases
from google.protobuf import json_format
from pulumi.runtime import rpc
from schemas import validate_object

from components.model_endpoints import GALLERY_PULL_SECRET, MODEL_SERVICE_ACCOUNT
from paictl.cli import main
from paictl.offline import RecordingMonitor, Registered, load_stack_file, stack_path

HOST = "harbor.pai.example.com"
PASSWORD = "Harbor-Admin-Pw-7f3a9c"
ROBOT = "robot$gallery-puller"
ROBOT_SECRET = "offline-placeholder-secret-of-platform-harbor-pull-robot"  # what the offline mocks compute
AUTH = base64.b64encode(f"{ROBOT}:{ROBOT_SECRET}".encode()).decode()
S3_KEYS = {"s3AccessKeyId": "AKIA-VISIBLE-ID", "s3SecretAccessKey": "very-secret-key"}
DOCKER_CONFIG = "kubernetes.io/dockerconfigjson"
Runner = Callable[[str], list[Registered]]


def model(name: str, source: str, tenant: str = "team-a") -> dict[str, Any]:
    return {"name": name, "routingName": f"acme/{name}", "type": "completion", "format": "gguf", "source": source,
            "tenant": tenant}


def config(models: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    cluster = {"target": "vks", "kubernetesVersion": "1.33",
               "ingress": {"className": "envoy", "domain": "pai.example.com"}}
    return minimal(cluster=cluster, harbor={}, tenants=[{"name": "team-a"}, {"name": "team-b"}], models=models,
                   **overrides)


MIXED = [
    model("gallery", f"oci://{HOST}/prod-models/qwen:approved"),
    model("elsewhere", "oci://registry.other.example/models/qwen:v1"),  # not this Harbor: unchanged
    model("claim", "pvc://models/qwen"),
    model("other-tenant", "oci://registry.other.example/models/qwen:v2", tenant="team-b"),
]


def predictors(records: list[Registered]) -> dict[str, dict[str, Any]]:
    return {i["metadata"]["name"]: i["spec"]["predictor"] for i in of_kind(records, "InferenceService")}


def pull_secrets(records: list[Registered]) -> list[dict[str, Any]]:
    return [s for s in of_kind(records, "Secret") if s["type"] == DOCKER_CONFIG]


def test_gallery_models_pull_through_the_robots_secret(run_program: Program) -> None:
    records = run_program(config(MIXED), {"harborAdminPassword": PASSWORD})
    (secret,) = pull_secrets(records)
    assert (secret["metadata"]["name"], secret["metadata"]["namespace"]) == (GALLERY_PULL_SECRET, "team-a")
    assert secret["stringData"] == {".dockerconfigjson": "[secret]"}
    (account,) = of_kind(records, "ServiceAccount")
    assert (account["metadata"]["name"], account["metadata"]["namespace"]) == (MODEL_SERVICE_ACCOUNT, "team-a")
    assert account["imagePullSecrets"] == [{"name": GALLERY_PULL_SECRET}] and "secrets" not in account
    found = predictors(records)
    gallery = found["gallery"]
    assert gallery["serviceAccountName"] == MODEL_SERVICE_ACCOUNT
    # On the pod itself: KServe merges these with the runtime's, and the ServiceAccount's reach only pods with none.
    assert gallery["imagePullSecrets"] == [{"name": GALLERY_PULL_SECRET}]
    for name in ("elsewhere", "claim", "other-tenant"):
        assert "serviceAccountName" not in found[name] and "imagePullSecrets" not in found[name], name
    for obj in [secret, account, *of_kind(records, "InferenceService")]:
        validate_object(obj, "1.33")


def test_one_service_account_carries_s3_and_gallery_access(run_program: Program) -> None:
    models = [model("gallery", f"oci://{HOST}/dev-models/qwen:v1"), model("bucket", "s3://models/qwen")]
    records = run_program(config(models, s3={"endpoint": "minio.example.com:9000"}),
                          {"harborAdminPassword": PASSWORD, **S3_KEYS})
    (account,) = of_kind(records, "ServiceAccount")
    assert account["secrets"] == [{"name": "pai-s3"}]
    assert account["imagePullSecrets"] == [{"name": GALLERY_PULL_SECRET}]
    found = predictors(records)
    assert found["gallery"]["serviceAccountName"] == found["bucket"]["serviceAccountName"] == MODEL_SERVICE_ACCOUNT
    assert "imagePullSecrets" not in found["bucket"]  # the storage initializer reads S3; no image to pull
    validate_object(account, "1.33")


def test_without_harbor_in_the_stack_nothing_changes(run_program: Program) -> None:
    records = run_program(minimal(models=[model("m", f"oci://{HOST}/prod-models/qwen:approved")]))
    assert not pull_secrets(records) and not of_kind(records, "ServiceAccount")
    assert set(predictors(records)["m"]) & {"serviceAccountName", "imagePullSecrets"} == set()


class RawSecrets(RecordingMonitor):
    """Also keeps the unmasked wire form of each dockerconfigjson Secret, to read what the kubelet will get."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: list[dict[str, Any]] = []

    def RegisterResource(self, request: Any) -> Any:
        inputs = json_format.MessageToDict(request.object)
        if inputs.get("type") == DOCKER_CONFIG:
            self.raw.append(inputs)
        return super().RegisterResource(request)


def test_the_secret_is_the_robots_docker_config_and_waits_for_the_robot(run_program: Program) -> None:
    monitor = RawSecrets()
    records = run_program(config(MIXED), {"harborAdminPassword": PASSWORD}, monitor)
    (raw,) = monitor.raw
    data = raw["stringData"]
    assert data[rpc._special_sig_key] == rpc._special_secret_sig  # a Pulumi secret on the wire
    assert json.loads(data["value"][".dockerconfigjson"]) == {
        "auths": {HOST: {"username": ROBOT, "password": ROBOT_SECRET, "auth": AUTH}}}
    assert base64.b64decode(AUTH).decode() == f"{ROBOT}:{ROBOT_SECRET}"
    (record,) = [r for r in records if r.inputs.get("type") == DOCKER_CONFIG]
    assert "harbor:index/robotAccount:RobotAccount::platform-harbor-pull-robot" in record.dependencies
    (isvc,) = [r for r in records if r.name == "platform-model-endpoints-gallery"]
    assert {"kubernetes:core/v1:Secret::platform-model-endpoints-team-a-gallery-pull-secret",
            "kubernetes:core/v1:ServiceAccount::platform-model-endpoints-team-a-model-service-account",
            } <= set(isvc.dependencies)


@pytest.mark.parametrize("stack", ["vks-prod", "airgap"])
def test_the_robot_secret_never_appears_in_the_plan_or_its_files(stack: str, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--stack", stack, "--format", "json", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    texts = [captured.out, captured.err, *(p.read_text() for p in tmp_path.rglob("*") if p.is_file())]
    assert all(ROBOT_SECRET not in t and AUTH not in t for t in texts)
    plan = json.loads(captured.out)
    secrets = [r["inputs"] for r in plan["resources"] if r["inputs"].get("type") == DOCKER_CONFIG]
    assert sorted(s["metadata"]["namespace"] for s in secrets) == ["apps", "research"]  # both tenants' models
    assert all(s["stringData"] == {".dockerconfigjson": "[secret]"} for s in secrets)
    assert "[secret]" in (tmp_path / "research" / f"secret-{GALLERY_PULL_SECRET}.yaml").read_text()


def test_in_air_gap_mode_the_pod_gets_both_the_mirror_and_the_gallery_secret(run_stack: Runner) -> None:
    records = run_stack("airgap")
    runtimes = {r["metadata"]["name"]: r["spec"] for r in of_kind(records, "ClusterServingRuntime")}
    for name, predictor in predictors(records).items():
        # KServe strategic-merges the runtime's imagePullSecrets (by name) with the predictor's.
        assert runtimes[predictor["model"]["runtime"]]["imagePullSecrets"] == [{"name": "mirror-pull"}], name
        assert predictor["imagePullSecrets"] == [{"name": GALLERY_PULL_SECRET}], name


def documented_mirror_namespaces() -> tuple[set[str], str]:
    """The namespaces the README's air-gap pull secret paragraph names, and the paragraph."""
    text = (REPO / "README.md").read_text()
    start = text.index("The mirror's pull secret.")
    paragraph = text[start:text.index("\n\n", start)]
    return set(re.findall(r"`([a-z0-9-]+)`", paragraph)), paragraph


def test_every_namespace_that_pulls_from_the_mirror_is_documented(run_stack: Runner) -> None:
    """The platform does not create `pai:registry.pullSecret` (the mirror serves images before this stack's Harbor
    and its robot exist); the README names every namespace whose pods pull from the mirror."""
    records = run_stack("airgap")
    cfg = load_stack_file(stack_path("airgap"))
    mirror = json.loads(cfg.values["pai:registry"])["mirror"]
    tenants = {t["name"] for t in json.loads(cfg.values["pai:tenants"])}
    pulling = {r["namespace"] for r in releases(records)}
    pulling |= {i["metadata"]["namespace"] for i in of_kind(records, "InferenceService")}
    pulling |= {r.inputs["metadata"]["namespace"] for r in records if r.type.startswith("kubernetes:")
                and r.inputs.get("metadata", {}).get("namespace") and mirror in json.dumps(r.inputs)}
    named, paragraph = documented_mirror_namespaces()
    assert "every tenant namespace" in paragraph
    assert pulling & tenants  # the tenants' runtime pods pull from the mirror too
    assert pulling - tenants <= named, sorted(pulling - tenants - named)
    assert "mirror-pull" not in {s["metadata"]["name"] for s in of_kind(records, "Secret")}  # it must already exist
