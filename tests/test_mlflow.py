"""Mlflow: chart values against the reference chart, PostgreSQL and S3 credentials by Secret reference only, both
the external and the bundled stores, auth, the route through the platform Gateway, the tracking URL and the air-gap
image rewrite."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Program, at, minimal, of_kind, releases, stack_config, strings
from schemas import chart_defaults, validate_helm_values, validate_object

from components import namespaces
from components.catalog import CATALOG
from components.platform import Platform
from program.deploy import deploy
from program.offline import Registered, run_offline

PIN = CATALOG.chart("mlflow")
DOMAIN = "pai.example.com"
HOST = f"mlflow.{DOMAIN}"
MIRROR = "harbor.pai.example.com/mirror"
SECRETS = {"mlflowDbPassword": "Db-Pw-51c0ffee", "mlflowAdminPassword": "Admin-Pw-9d2e77",
           "s3AccessKeyId": "AKIA-DISTINCT-4242", "s3SecretAccessKey": "S3-Secret-Key-8b8b8b"}
EXTERNAL = {"database": {"host": "pg.example.com", "port": 6432, "name": "tracking", "user": "ml"},
            "artifacts": {"endpoint": "https://s3.example.com", "bucket": "ml-artifacts", "path": "runs"}}


def config(mlflow: dict[str, Any] | None = None, domain: str | None = DOMAIN, **overrides: Any) -> dict[str, Any]:
    cluster: dict[str, Any] = {"target": "generic", "kubernetesVersion": "1.33", "storageClass": "fast"}
    if domain:
        cluster["ingress"] = {"className": "envoy", "domain": domain}
    return minimal(cluster=cluster, mlflow=mlflow or {}, **overrides)


def plan(run_program: Program, mlflow: dict[str, Any] | None = None, **overrides: Any) -> list[Registered]:
    return run_program(config(mlflow, **overrides), SECRETS)


def values_of(records: list[Registered]) -> dict[str, Any]:
    (found,) = [r for r in releases(records) if r["namespace"] == namespaces.MLFLOW]
    return dict(found["values"])


def secrets(records: list[Registered]) -> dict[str, dict[str, Any]]:
    return {s["metadata"]["name"]: s["stringData"] for s in of_kind(records, "Secret")
            if s["metadata"]["namespace"] == namespaces.MLFLOW}


def lookup(values: Any, path: str) -> Any:
    """The value at a dotted path, None where any part is missing."""
    for key in path.split("."):
        values = values.get(key) if isinstance(values, dict) else None
    return values


@pytest.mark.parametrize("stores", ["external", "bundled"])
@pytest.mark.parametrize("domain", [DOMAIN, None])
def test_values_exist_in_the_reference_chart(run_program: Program, stores: str, domain: str | None) -> None:
    records = run_program(config(EXTERNAL if stores == "external" else {}, domain=domain,
                                 registry={"pullSecret": "mirror-pull"}), SECRETS)
    (found,) = [r for r in releases(records) if r["namespace"] == namespaces.MLFLOW]
    assert (found["chart"], found["version"]) == ("mlflow", PIN.version)
    validate_helm_values("mlflow", PIN.version, found["values"])
    for obj in of_kind(records, "Namespace") + of_kind(records, "Secret") + of_kind(records, "HTTPRoute"):
        validate_object(obj, "1.33")


def test_external_postgres_is_referenced_by_secret(run_program: Program) -> None:
    records = plan(run_program, EXTERNAL)
    store = values_of(records)["backendStore"]
    assert store["postgres"] == {"enabled": True, "host": "pg.example.com", "port": 6432, "database": "tracking"}
    ref = store["existingDatabaseSecret"]
    assert secrets(records)[ref["name"]] == {ref["usernameKey"]: "[secret]", ref["passwordKey"]: "[secret]"}
    assert store["databaseMigration"] is True
    assert "postgresql" not in values_of(records)


def test_external_s3_is_referenced_by_secret_at_its_endpoint(run_program: Program) -> None:
    records = plan(run_program, EXTERNAL)
    values = values_of(records)
    s3 = values["artifactRoot"]["s3"]
    assert (s3["enabled"], s3["bucket"], s3["path"]) == (True, "ml-artifacts", "runs")
    ref = s3["existingSecret"]
    assert set(secrets(records)[ref["name"]]) == {ref["keyOfAccessKeyId"], ref["keyOfSecretAccessKey"]}
    assert values["extraEnvVars"] == {"MLFLOW_S3_ENDPOINT_URL": "https://s3.example.com"}
    assert values["artifactRoot"]["proxiedArtifactStorage"] is True
    assert "minio" not in values


def test_bundled_stores_use_our_secrets_under_the_names_the_chart_reads(run_program: Program) -> None:
    records = plan(run_program)
    values = values_of(records)
    stored = secrets(records)
    postgresql = values["postgresql"]
    assert postgresql["enabled"] is True
    assert set(stored[postgresql["auth"]["existingSecret"]]) == {"password", "postgres-password"}
    assert postgresql["auth"]["existingSecret"] == "mlflow-postgresql"  # <fullname>-postgresql, read by the chart
    assert postgresql["primary"]["persistence"] == {"enabled": True, "size": "20Gi", "storageClass": "fast"}
    minio = values["minio"]
    assert minio["enabled"] is True and minio["existingSecret"] == "mlflow-minio"
    assert set(stored["mlflow-minio"]) == {"rootUser", "rootPassword"}
    assert minio["buckets"][0]["name"] == values["artifactRoot"]["s3"]["bucket"] == "mlflow"
    assert "existingSecret" not in values["artifactRoot"]["s3"]  # the chart reads <fullname>-minio itself
    assert "postgres" not in values["backendStore"]


def test_no_credential_is_a_helm_value(run_program: Program) -> None:
    for mlflow in (EXTERNAL, {}):
        values = values_of(plan(run_program, mlflow))
        defaults = chart_defaults("mlflow", PIN.version)
        for path in ("backendStore.postgres.user", "backendStore.postgres.password", "artifactRoot.s3.awsAccessKeyId",
                     "artifactRoot.s3.awsSecretAccessKey", "auth.adminUsername", "auth.adminPassword",
                     "auth.postgres.user", "auth.postgres.password", "minio.rootUser", "minio.rootPassword"):
            assert at(defaults, path) == "", path  # the chart's plain-text credential values stay unset
            assert lookup(values, path) is None, path
        assert not [s for s in strings(values) if s in SECRETS.values() or s == "[secret]"]


def test_auth_is_on_with_the_admin_from_a_secret(run_program: Program) -> None:
    records = plan(run_program, {**EXTERNAL, "adminUser": "ml-admin", "defaultPermission": "NO_PERMISSIONS"})
    auth = values_of(records)["auth"]
    assert auth["enabled"] is True and auth["defaultPermission"] == "NO_PERMISSIONS"
    ref = auth["existingAdminSecret"]
    assert secrets(records)[ref["name"]] == {ref["usernameKey"]: "[secret]", ref["passwordKey"]: "[secret]"}
    assert auth["postgres"]["database"] == "mlflow_auth" and auth["postgres"]["host"] == "pg.example.com"
    assert auth["postgres"]["existingSecret"]["name"] == values_of(records)["backendStore"]["existingDatabaseSecret"][
        "name"]


def route(records: list[Registered]) -> dict[str, Any]:
    (found,) = [r for r in of_kind(records, "HTTPRoute") if r["metadata"]["namespace"] == namespaces.MLFLOW]
    return found


def test_a_route_on_the_gateways_mlflow_listener_to_the_tracking_service(run_program: Program) -> None:
    records = plan(run_program, EXTERNAL)
    found = route(records)
    validate_object(found, "1.33")
    assert found["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                            "name": "pai-gateway", "namespace": namespaces.GATEWAY,
                                            "sectionName": "mlflow"}]
    assert found["spec"]["hostnames"] == [HOST]
    (rule,) = found["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    # The chart's Service: named after the release (its fullname), on service.port.
    (release,) = [r for r in releases(records) if r["namespace"] == namespaces.MLFLOW]
    assert rule["backendRefs"] == [{"name": release["name"],
                                    "port": chart_defaults("mlflow", PIN.version)["service"]["port"]}]
    values = values_of(records)
    assert "ingress" not in values  # the chart's Ingress stays off
    assert HOST in values["serverAllowedHosts"] and values["corsAllowedOrigins"] == [f"https://{HOST}"]
    # TLS ends at the Gateway: MLflow has no certificate of its own.
    assert not [c for c in of_kind(records, "Certificate") if c["metadata"]["namespace"] == namespaces.MLFLOW]


def test_an_explicit_host_is_routed_without_a_domain(run_program: Program) -> None:
    records = run_program(config({**EXTERNAL, "host": "tracking.corp.example"}, domain=None), SECRETS)
    assert route(records)["spec"]["hostnames"] == ["tracking.corp.example"]
    (gateway,) = of_kind(records, "Gateway")
    assert [listener["hostname"] for listener in gateway["spec"]["listeners"]] == ["tracking.corp.example"]


def test_without_a_domain_mlflow_stays_in_the_cluster(run_program: Program) -> None:
    records = run_program(config(EXTERNAL, domain=None), SECRETS)
    values = values_of(records)
    assert "ingress" not in values and "corsAllowedOrigins" not in values
    assert of_kind(records, "HTTPRoute") == []
    assert of_kind(records, "Gateway") == []  # nothing else to expose, no models: no Gateway at all


@pytest.mark.parametrize(("domain", "url"), [(DOMAIN, f"https://{HOST}"),
                                             (None, "http://mlflow.mlflow.svc.cluster.local")])
def test_tracking_url_is_an_output(domain: str | None, url: str) -> None:
    seen: dict[str, str] = {}

    def program() -> Platform:
        platform = deploy()
        assert platform.mlflow is not None
        platform.mlflow.tracking_url.apply(lambda u: seen.setdefault("url", u))
        return platform

    run_offline(program, stack_config(config(EXTERNAL, domain=domain), SECRETS))
    assert seen == {"url": url}


def test_catalog_pins_the_reference_chart_images() -> None:
    defaults = chart_defaults("mlflow", PIN.version)
    app_version = "3.15.1"  # Chart.yaml appVersion: the tag the chart uses where values leave it empty
    for path, image in PIN.images.items():
        if path.startswith("minio."):  # the subchart's values are not in the reference data: rendered instead
            assert image.verified == f"rendered mlflow@{PIN.version}", path
            continue
        block = at(defaults, path)
        assert image.repository == docker_hub(block["repository"]), path
        assert image.tag == (block["tag"] or app_version), path


def test_the_bundled_minio_images_only_where_minio_runs(run_program: Program) -> None:
    assert values_of(plan(run_program))["minio"]["image"]["tag"] == PIN.images["minio.image"].tag
    assert "minio" not in values_of(plan(run_program, EXTERNAL))


def docker_hub(repository: str) -> str:
    """A repository as the container runtime resolves it: no registry host means Docker Hub (library/ for one
    path part)."""
    first = repository.split("/", 1)[0]
    if "." in first or ":" in first:
        return repository
    return f"docker.io/{repository if '/' in repository else 'library/' + repository}"


def test_air_gap_puts_every_image_and_the_chart_on_the_mirror(run_program: Program) -> None:
    records = plan(run_program, EXTERNAL, registry={"mirror": MIRROR, "pullSecret": "mirror-pull"})
    (found,) = [r for r in releases(records) if r["namespace"] == namespaces.MLFLOW]
    assert found["chart"] == f"oci://{MIRROR}/charts/mlflow"
    values = found["values"]
    assert values["image"] == {"repository": f"{MIRROR}/burakince/mlflow", "tag": "3.15.1"}
    assert values["initImages"]["dbchecker"] == {"repository": f"{MIRROR}/library/busybox", "tag": "1.38.0"}
    for path in (p for p in PIN.images if not p.startswith("minio.")):  # air gap: an external S3, no MinIO
        assert at(values, path)["repository"].startswith(f"{MIRROR}/"), path
    assert values["imagePullSecrets"] == [{"name": "mirror-pull"}]


def test_air_gap_mirrors_the_bundled_minio(run_program: Program) -> None:
    bundled_s3 = {"database": EXTERNAL["database"]}
    records = plan(run_program, bundled_s3, registry={"mirror": MIRROR})
    (found,) = [r for r in releases(records) if r["namespace"] == namespaces.MLFLOW]
    values = found["values"]
    assert values["minio"]["enabled"] is True
    assert values["minio"]["image"]["repository"] == f"{MIRROR}/minio/minio"  # quay.io/minio/minio on the mirror
    assert values["minio"]["mcImage"]["repository"] == f"{MIRROR}/minio/mc"


@pytest.mark.parametrize("mlflow", [EXTERNAL, {}])
def test_no_secret_value_appears_in_the_plan(run_program: Program, mlflow: dict[str, Any]) -> None:
    text = json.dumps([r.inputs for r in plan(run_program, mlflow)])
    assert not [v for v in SECRETS.values() if v in text]


def test_no_mlflow_config_no_mlflow(run_program: Program) -> None:
    records = run_program(minimal())
    assert not [r for r in records if r.type == "pai:mlflow:Mlflow"]
