"""Model endpoints pull their modelcar images from this stack's Harbor with the gallery's pull robot: a
dockerconfigjson Secret per tenant (a Pulumi secret, masked in every plan), listed by the tenant's model
ServiceAccount and by each gallery InferenceService itself; other sources are unchanged. And the air-gap mirror's
pull secret: given the mirror account, the platform creates it in every namespace whose pods pull from the mirror,
and what names it waits for it; without, every such namespace is one the README says must hold it."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import HARBOR_CHAIN_NAMESPACES, REPO, Program, minimal, objects, of_kind, releases
from google.protobuf import json_format
from pulumi.runtime import rpc
from schemas import validate_object

from components.model_endpoints import GALLERY_PULL_SECRET, MODEL_SERVICE_ACCOUNT
from paictl.cli import main
from program.deploy import deploy
from program.offline import RecordingMonitor, Registered, StackConfig, load_stack_file, run_offline, stack_path
from program.plan import HELM_RELEASE, plan, to_json, write_files

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
    cluster = {"target": "vks", "kubernetesVersion": "1.33", "storageClass": "vsan-default-storage-policy",
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


@pytest.mark.parametrize("stack", ["vks-prod", "vks-cluster", "airgap"])
def test_the_robot_secret_never_appears_in_the_plan_or_its_files(stack: str, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--stack", stack, "--format", "json", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    texts = [captured.out, captured.err, *(p.read_text() for p in tmp_path.rglob("*") if p.is_file())]
    assert all(ROBOT_SECRET not in t and AUTH not in t for t in texts)
    plan = json.loads(captured.out)
    secrets = [r["inputs"] for r in plan["resources"] if r["inputs"].get("type") == DOCKER_CONFIG
               and r["inputs"]["metadata"]["name"] == GALLERY_PULL_SECRET]
    assert sorted(s["metadata"]["namespace"] for s in secrets) == ["apps", "research"]  # both tenants' models
    assert all(s["stringData"] == {".dockerconfigjson": "[secret]"} for s in secrets)
    assert "[secret]" in (tmp_path / "research" / f"secret-{GALLERY_PULL_SECRET}.yaml").read_text()


@pytest.mark.parametrize("account", [True, False])
def test_in_air_gap_mode_the_pod_gets_both_the_mirror_and_the_gallery_secret(account: bool) -> None:
    records = run_offline(deploy, airgap() if account else airgap(None))
    runtimes = {r["metadata"]["name"]: r["spec"] for r in of_kind(records, "ClusterServingRuntime")}
    for name, predictor in predictors(records).items():
        # KServe strategic-merges the runtime's imagePullSecrets (by name) with the predictor's; where the platform
        # creates the mirror's Secret, the predictor names it too, so the endpoint waits for it.
        assert runtimes[predictor["model"]["runtime"]]["imagePullSecrets"] == [{"name": "mirror-pull"}], name
        assert predictor["imagePullSecrets"] == [{"name": GALLERY_PULL_SECRET},
                                                 *([{"name": "mirror-pull"}] if account else [])], name


MIRROR_ACCOUNT = ("pai:mirrorPullUsername", "pai:mirrorPullPassword")
MIRROR_PULL = "mirror-pull"  # the airgap stack's pai:registry.pullSecret
MIRROR_HOST = "harbor.pai.prod.example.internal"  # its pai:registry.mirror up to the first /
BOOTSTRAP_HOST = "registry.prod.example.internal"  # its pai:registry.bootstrap: Harbor and what serves it pull there
MIRROR_USER = "offline-placeholder-for-pai:mirrorPullUsername"  # what the offline runner passes for secure: values
MIRROR_PASSWORD = "offline-placeholder-for-pai:mirrorPullPassword"
TENANCY = "pai:tenancy:Tenancy::platform-tenancy"
ENDPOINTS = "pai:serving:ModelEndpoints::platform-model-endpoints"


def airgap(account: tuple[str, str] | None = (MIRROR_USER, MIRROR_PASSWORD)) -> StackConfig:
    """The airgap stack with its mirror account set to `account` (as secrets), or without the two keys (None)."""
    config = load_stack_file(stack_path("airgap"))
    for key in MIRROR_ACCOUNT:
        config.values.pop(key)
        config.secret_keys.remove(key)
    for key, value in zip(MIRROR_ACCOUNT, account or (), strict=False):
        config.values[key] = value
        config.secret_keys.append(key)
    return config


def mirror_namespaces(records: list[Registered]) -> set[str]:
    """Every namespace whose pods pull from the mirror in this airgap plan: those of the Helm releases and model
    endpoints, and of any object naming the mirror."""
    mirror = json.loads(load_stack_file(stack_path("airgap")).values["pai:registry"])["mirror"]
    pulling = {r["namespace"] for r in releases(records)}
    pulling |= {i["metadata"]["namespace"] for i in of_kind(records, "InferenceService")}
    pulling |= {r.inputs["metadata"]["namespace"] for r in records if r.type.startswith("kubernetes:")
                and r.inputs.get("metadata", {}).get("namespace") and mirror in json.dumps(r.inputs)}
    return pulling


def mirror_pull_secrets(records: list[Registered]) -> list[Registered]:
    return [r for r in records if r.inputs.get("type") == DOCKER_CONFIG and r.inputs["metadata"]["name"] == MIRROR_PULL]


def documented_mirror_namespaces() -> tuple[set[str], str]:
    """The namespaces the README's air-gap pull secret paragraph names, and the paragraph."""
    text = (REPO / "README.md").read_text()
    start = text.index("The mirror's pull secret.")
    paragraph = text[start:text.index("\n\n", start)]
    return set(re.findall(r"`([a-z0-9-]+)`", paragraph)), paragraph


def test_every_namespace_that_pulls_from_the_mirror_is_documented() -> None:
    """Without the mirror account the platform does not create `pai:registry.pullSecret`; the README names every
    namespace whose pods pull from the mirror, where the operator creates it beforehand."""
    records = run_offline(deploy, airgap(None))
    tenants = {t["name"] for t in json.loads(load_stack_file(stack_path("airgap")).values["pai:tenants"])}
    pulling = mirror_namespaces(records)
    named, paragraph = documented_mirror_namespaces()
    assert "every tenant namespace" in paragraph and all(key in paragraph for key in MIRROR_ACCOUNT)
    assert pulling & tenants  # the tenants' runtime pods pull from the mirror too
    assert pulling - tenants <= named, sorted(pulling - tenants - named)
    assert not mirror_pull_secrets(records)  # it must already exist


class PropertyDependencies(RecordingMonitor):
    """Also keeps, per resource, the resources each input property's value comes from (data dependencies only,
    unlike `dependencies`, which holds depends_on too)."""

    def __init__(self) -> None:
        super().__init__()
        self.by_property: dict[str, dict[str, set[str]]] = {}

    def RegisterResource(self, request: Any) -> Any:
        self.by_property[request.name] = {prop: {urn.rsplit("::", 1)[-1] for urn in deps.urns}
                                          for prop, deps in request.propertyDependencies.items()}
        return super().RegisterResource(request)


def test_with_the_mirror_account_every_namespace_that_pulls_gets_exactly_one_pull_secret(run_stack: Runner) -> None:
    records = run_stack("airgap")
    pulling = mirror_namespaces(records)
    assert pulling == mirror_namespaces(run_offline(deploy, airgap(None)))  # the account changes no pull
    secrets = mirror_pull_secrets(records)
    found = Counter(s.inputs["metadata"]["namespace"] for s in secrets)
    assert set(found) == pulling and set(found.values()) == {1}, found
    made_by = {r.inputs["metadata"]["name"]: r.parent for r in records if r.inputs.get("kind") == "Namespace"}
    for secret in secrets:
        assert secret.inputs["stringData"] == {".dockerconfigjson": "[secret]"}  # masked in the plan
        validate_object(secret.inputs, "1.33")
        # A child of the component that made its namespace; in a tenant's, of the endpoints that pull there.
        owner = made_by[secret.inputs["metadata"]["namespace"]]
        assert secret.parent == (ENDPOINTS if owner == TENANCY else owner), secret.name


def test_the_account_adds_the_secrets_and_changes_nothing_else() -> None:
    """Without the account the plan is what it was (the operator's Secret is named by the same values)."""
    def by_key(records: list[Registered]) -> dict[str, dict[str, Any]]:
        return {r.key: r.inputs for r in records}

    records = plan(airgap())
    without, with_account = by_key(plan(airgap(None))), by_key(records)
    added = {key for key in with_account if key not in without}
    assert added == {s.key for s in mirror_pull_secrets(records)} and without.keys() <= with_account.keys()
    changed = {key for key in without if without[key] != with_account[key]}
    assert changed == {key for key, inputs in without.items() if inputs.get("kind") == "InferenceService"}
    for key in changed:  # only the predictor's own list, which now names the mirror's Secret too
        with_account[key]["spec"]["predictor"]["imagePullSecrets"].remove({"name": MIRROR_PULL})
        assert with_account[key] == without[key]


def test_what_names_the_mirror_pull_secret_waits_for_it_by_data() -> None:
    monitor = PropertyDependencies()
    records = run_offline(deploy, airgap(), monitor)
    by_namespace = {s.inputs["metadata"]["namespace"]: s.name for s in mirror_pull_secrets(records)}
    named = [r for r in records if r.type == HELM_RELEASE and MIRROR_PULL in json.dumps(r.inputs["values"])]
    assert {r.inputs["namespace"] for r in named} == {n for n in by_namespace if n not in ("apps", "research")}
    for release in named:  # the chart values' name is the Secret's output, not a depends_on
        assert by_namespace[release.inputs["namespace"]] in monitor.by_property[release.name]["values"], release.name
    runtimes = {r["metadata"]["name"]: r["spec"] for r in of_kind(records, "ClusterServingRuntime")}
    for record in [r for r in records if r.inputs.get("kind") == "InferenceService"]:
        predictor = record.inputs["spec"]["predictor"]
        assert {"name": MIRROR_PULL} in predictor["imagePullSecrets"], record.name
        assert runtimes[predictor["model"]["runtime"]]["imagePullSecrets"] == [{"name": MIRROR_PULL}]
        assert by_namespace[record.inputs["metadata"]["namespace"]] in monitor.by_property[record.name]["spec"]


def test_the_mirror_pull_secret_is_the_accounts_docker_config_and_a_secret() -> None:
    monitor = RawSecrets()
    run_offline(deploy, airgap(("mirror-reader", "Mirror-Pw-5e1b77")), monitor)
    raws = [r for r in monitor.raw if r["metadata"]["name"] == MIRROR_PULL]
    assert len(raws) == 11
    auth = base64.b64encode(b"mirror-reader:Mirror-Pw-5e1b77").decode()
    for raw in raws:
        data = raw["stringData"]
        assert data[rpc._special_sig_key] == rpc._special_secret_sig  # a Pulumi secret on the wire
        host = BOOTSTRAP_HOST if raw["metadata"]["namespace"] in HARBOR_CHAIN_NAMESPACES else MIRROR_HOST
        assert json.loads(data["value"][".dockerconfigjson"]) == {
            "auths": {host: {"username": "mirror-reader", "password": "Mirror-Pw-5e1b77", "auth": auth}}}
    assert {r["metadata"]["namespace"] for r in raws} >= HARBOR_CHAIN_NAMESPACES


def test_the_mirror_password_never_appears_in_the_plan_or_its_files(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    password = "Mirror-Pw-5e1b77"
    records = plan(airgap(("mirror-reader", password)))
    texts = [to_json("airgap", records), *(p.read_text() for p in write_files(records, tmp_path / "own"))]
    assert main(["plan", "--stack", "airgap", "--format", "json", "--out", str(tmp_path / "cli")]) == 0
    captured = capsys.readouterr()
    texts += [captured.out, captured.err, *(p.read_text() for p in (tmp_path / "cli").rglob("*") if p.is_file())]
    secrets = {password, base64.b64encode(f"mirror-reader:{password}".encode()).decode(), MIRROR_PASSWORD,
               base64.b64encode(f"{MIRROR_USER}:{MIRROR_PASSWORD}".encode()).decode()}
    assert not [s for s in secrets for t in texts if s in t]
    assert "[secret]" in (tmp_path / "cli" / "kserve" / f"secret-{MIRROR_PULL}.yaml").read_text()
    assert len([o for o in objects(records) if o["kind"] == "Secret" and o["metadata"]["name"] == MIRROR_PULL]) == 11
