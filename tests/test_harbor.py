"""Harbor: chart values against the reference chart, its route through the platform Gateway or TLS in-cluster from
cert-manager or a given Secret, the admin password by reference only, and the gallery the Harbor provider
configures, asserted from the inputs it registers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pulumi
import pytest
from conftest import Program, at, minimal, of_kind, releases, stack_config
from schemas import chart_defaults, validate_helm_values, validate_object

from components import namespaces
from components.catalog import CATALOG
from components.harbor import ADMIN_PASSWORD_KEY
from components.platform import Platform
from program.deploy import deploy
from program.offline import Registered, run_offline

PIN = CATALOG.chart("harbor")
DOMAIN = "pai.example.com"
HOST = f"harbor.{DOMAIN}"
PASSWORD = "Harbor-Admin-Pw-7f3a9c"
MIRROR = "registry.pai.example.com/airgap"  # a site registry outside the stack
BOOTSTRAP = "registry.pai.example.com/seed"
PROJECT = "harbor:index/project:Project"
ROBOT = "harbor:index/robotAccount:RobotAccount"
IMMUTABLE = "harbor:index/immutableTagRule:ImmutableTagRule"
RETENTION = "harbor:index/retentionPolicy:RetentionPolicy"
MEMBER = "harbor:index/projectMemberGroup:ProjectMemberGroup"


def config(harbor: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    cluster = {"target": "vks", "kubernetesVersion": "1.33", "storageClass": "vsan-fast",
               "ingress": {"className": "envoy", "domain": DOMAIN}}
    return minimal(cluster=cluster, harbor=harbor or {}, **overrides)


def plan(run_program: Program, harbor: dict[str, Any] | None = None, **overrides: Any) -> list[Registered]:
    return run_program(config(harbor, **overrides), {"harborAdminPassword": PASSWORD})


def harbor_release(records: list[Registered]) -> dict[str, Any]:
    (found,) = [r for r in releases(records) if r["namespace"] == namespaces.HARBOR]
    return found


def of_type(records: list[Registered], type_: str) -> dict[str, dict[str, Any]]:
    return {r.name: r.inputs for r in records if r.type == type_}


def repositories(values: Any) -> Iterator[str]:
    if isinstance(values, dict):
        for key, value in values.items():
            if key == "repository" and isinstance(value, str):
                yield value
            else:
                yield from repositories(value)
    elif isinstance(values, list):
        for item in values:
            yield from repositories(item)


# --- the chart -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("expose", ["gateway", "clusterIP"])
@pytest.mark.parametrize("registry", [{}, {"mirror": MIRROR, "pullSecret": "mirror-pull"}])
def test_values_exist_in_the_reference_chart(run_program: Program, expose: str, registry: dict[str, Any]) -> None:
    records = plan(run_program, {"expose": expose}, **({"registry": registry} if registry else {}))
    found = harbor_release(records)
    assert found["version"] == PIN.version == "1.19.1"
    validate_helm_values("harbor", PIN.version, found["values"])
    for obj in of_kind(records, "Namespace") + of_kind(records, "Secret") + of_kind(records, "Certificate"):
        validate_object(obj, "1.33")


def test_admin_password_comes_from_a_secret_by_reference(run_program: Program) -> None:
    records = plan(run_program)
    values = harbor_release(records)["values"]
    defaults = chart_defaults("harbor", PIN.version)
    assert values["existingSecretAdminPasswordKey"] == defaults["existingSecretAdminPasswordKey"] == ADMIN_PASSWORD_KEY
    assert "harborAdminPassword" not in values  # the chart's plain-text default stays unused
    name = values["existingSecretAdminPassword"]
    (secret,) = [s for s in of_kind(records, "Secret") if s["metadata"]["name"] == name]
    assert secret["metadata"]["namespace"] == namespaces.HARBOR
    assert secret["stringData"] == {ADMIN_PASSWORD_KEY: "[secret]"}


def harbor_certificates(records: list[Registered]) -> list[dict[str, Any]]:
    return [c for c in of_kind(records, "Certificate") if c["metadata"]["namespace"] == namespaces.HARBOR]


def test_behind_the_gateway_the_chart_routes_on_the_harbor_listener(run_program: Program) -> None:
    records = plan(run_program)
    values = harbor_release(records)["values"]
    assert values["expose"] == {
        "type": "route",
        "tls": {"enabled": False},  # TLS ends at the Gateway; the chart serves plain HTTP behind it
        "route": {"parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "pai-gateway",
                                  "namespace": namespaces.GATEWAY, "sectionName": "harbor"}],
                  "hosts": [HOST]},
    }
    assert values["externalURL"] == f"https://{HOST}"
    assert harbor_certificates(records) == []  # the Gateway's certificate covers the host
    (gateway,) = of_kind(records, "Gateway")
    (listener,) = [x for x in gateway["spec"]["listeners"] if x["name"] == "harbor"]
    assert (listener["protocol"], listener["hostname"]) == ("HTTPS", HOST)


def test_behind_the_gateway_a_given_secret_is_the_harbor_listeners_certificate(run_program: Program) -> None:
    records = plan(run_program, {"tlsSecret": "corp-wildcard"})
    assert harbor_certificates(records) == []
    (gateway,) = of_kind(records, "Gateway")
    (listener,) = [x for x in gateway["spec"]["listeners"] if x["name"] == "harbor"]
    assert listener["tls"]["certificateRefs"] == [{"kind": "Secret", "name": "corp-wildcard",
                                                   "namespace": namespaces.HARBOR}]
    (grant,) = [g for g in of_kind(records, "ReferenceGrant") if g["metadata"]["namespace"] == namespaces.HARBOR]
    validate_object(grant, "1.33")
    assert grant["spec"] == {"from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                       "namespace": gateway["metadata"]["namespace"]}],
                             "to": [{"group": "", "kind": "Secret", "name": "corp-wildcard"}]}


def test_in_cluster_tls_from_a_cert_manager_certificate(run_program: Program) -> None:
    records = plan(run_program, {"expose": "clusterIP"})
    values = harbor_release(records)["values"]
    (cert,) = harbor_certificates(records)
    validate_object(cert, "1.33")
    assert cert["spec"]["issuerRef"] == {"group": "cert-manager.io", "kind": "ClusterIssuer",
                                         "name": namespaces.CLUSTER_ISSUER}
    assert cert["spec"]["dnsNames"] == [HOST]
    assert values["expose"] == {"type": "clusterIP", "tls": {
        "enabled": True, "certSource": "secret", "secret": {"secretName": cert["spec"]["secretName"]}}}
    assert values["externalURL"] == f"https://{HOST}"


def test_in_cluster_tls_from_a_given_secret_needs_no_certificate(run_program: Program) -> None:
    records = plan(run_program, {"tlsSecret": "corp-wildcard", "expose": "clusterIP", "host": "registry.corp.example"})
    values = harbor_release(records)["values"]
    assert harbor_certificates(records) == []
    assert values["expose"]["type"] == "clusterIP" and "route" not in values["expose"]
    assert values["expose"]["tls"]["secret"] == {"secretName": "corp-wildcard"}
    assert values["externalURL"] == "https://registry.corp.example"
    assert of_kind(records, "Gateway") == []  # nothing to expose, no models: no Gateway


def test_every_volume_is_persistent_on_the_cluster_storage_class(run_program: Program) -> None:
    values = harbor_release(plan(run_program, {"storage": {"registry": "2Ti"}}))["values"]["persistence"]
    assert values["enabled"] is True and values["resourcePolicy"] == "keep"
    claims = values["persistentVolumeClaim"]
    defaults = chart_defaults("harbor", PIN.version)["persistence"]["persistentVolumeClaim"]
    volumes = {"registry", "database", "redis", "trivy", "jobservice.jobLog"}
    assert volumes == {p for p in ("registry", "database", "redis", "trivy", "jobservice.jobLog")
                       if "storageClass" in at(defaults, p)}
    assert {p: at(claims, p)["storageClass"] for p in volumes} == dict.fromkeys(volumes, "vsan-fast")
    assert claims["registry"]["size"] == "2Ti"


def test_trivy_scans_and_reads_its_databases_from_the_mirror_in_air_gap_mode(run_program: Program) -> None:
    trivy = harbor_release(plan(run_program))["values"]["trivy"]
    assert trivy["enabled"] is True and set(trivy) == {"enabled", "image"}  # online: the chart's DB sources
    trivy = harbor_release(plan(run_program, registry={"mirror": MIRROR}))["values"]["trivy"]
    assert trivy["enabled"] is True and trivy["offlineScan"] is True
    assert trivy["dbRepository"] == [f"{MIRROR}/aquasecurity/trivy-db"]
    assert trivy["javaDBRepository"] == [f"{MIRROR}/aquasecurity/trivy-java-db"]


# --- images --------------------------------------------------------------------------------------------------


def test_catalog_pins_every_image_of_the_reference_chart_at_its_tag() -> None:
    defaults = chart_defaults("harbor", PIN.version)
    blocks = {path: at(defaults, path) for path in PIN.images}
    assert {p: (b["repository"], b["tag"]) for p, b in blocks.items()} == {
        p: (i.repository, i.tag) for p, i in PIN.images.items()}
    assert sorted(repositories(defaults)) == sorted(i.repository for i in PIN.images.values())


def test_air_gap_puts_every_image_and_the_chart_on_the_mirror(run_program: Program) -> None:
    found = harbor_release(plan(run_program, registry={"mirror": MIRROR, "pullSecret": "mirror-pull"}))
    assert found["chart"] == f"oci://{MIRROR}/charts/harbor" and "repositoryOpts" not in found
    values = found["values"]
    for path, image in PIN.images.items():
        assert at(values, path) == {"repository": f"{MIRROR}/goharbor/{image.repository.rsplit('/', 1)[1]}",
                                    "tag": image.tag}, path
    assert all(r.startswith(f"{MIRROR}/") for r in repositories(values))
    assert values["imagePullSecrets"] == [{"name": "mirror-pull"}]


def test_without_a_mirror_images_are_pinned_upstream(run_program: Program) -> None:
    found = harbor_release(plan(run_program))
    assert (found["chart"], found["repositoryOpts"]) == ("harbor", {"repo": "https://helm.goharbor.io"})
    assert found["values"]["core"]["image"] == {"repository": "docker.io/goharbor/harbor-core", "tag": "v2.15.1"}
    assert "imagePullSecrets" not in found["values"]


# --- the gallery ---------------------------------------------------------------------------------------------


def test_provider_points_at_this_harbor_with_a_secret_password(run_program: Program) -> None:
    records = plan(run_program)
    (provider,) = of_type(records, "pulumi:providers:harbor").values()
    assert provider["url"] == f"https://{HOST}"
    assert provider["username"] == "admin"
    assert provider["password"] == "[secret]"
    assert provider["insecure"] == "false"


def test_gallery_projects_have_quotas_and_scan_on_push(run_program: Program) -> None:
    projects = {p["name"]: p for p in of_type(plan(run_program), PROJECT).values()}
    assert set(projects) == {"dev-models", "prod-models", "charts", "mirror"}
    assert {n: p["storageQuota"] for n, p in projects.items()} == {
        "dev-models": 500, "prod-models": 1000, "charts": 50, "mirror": 2000}
    assert all(p["vulnerabilityScanning"] is True and p["public"] is False for p in projects.values())


def test_gallery_names_and_quotas_are_configurable(run_program: Program) -> None:
    gallery = {"dev": {"name": "staging", "quotaGb": 7}, "prod": {"name": "released", "quotaGb": 9},
               "charts": "helm", "promotionTags": ["golden"]}
    records = plan(run_program, gallery=gallery)
    projects = {p["name"]: p["storageQuota"] for p in of_type(records, PROJECT).values()}
    assert projects == {"staging": 7, "released": 9, "helm": 50, "mirror": 2000}
    assert {r["tagMatching"] for r in of_type(records, IMMUTABLE).values()} == {"golden"}
    robots = of_type(records, ROBOT).values()
    assert all([p["namespace"] for p in r["permissions"]] == ["staging", "released"] for r in robots)


def test_promotion_tags_are_immutable_and_always_retained_in_both_gallery_projects(run_program: Program) -> None:
    records = plan(run_program)
    ids = {f"{n}-id": p["name"] for n, p in of_type(records, PROJECT).items()}
    rules = {ids[r["projectId"]]: r for r in of_type(records, IMMUTABLE).values()}
    assert set(rules) == {"dev-models", "prod-models"}
    for rule in rules.values():
        assert rule == {"projectId": rule["projectId"], "repoMatching": "**", "tagMatching": "{approved,prod}"}
    policies = {ids[p["scope"]]: p for p in of_type(records, RETENTION).values()}
    assert set(policies) == {"dev-models", "prod-models"}
    for policy in policies.values():
        assert policy["schedule"] == "Daily"
        assert policy["rules"] == [
            {"repoMatching": "**", "tagMatching": "{approved,prod}", "alwaysRetain": True},
            {"repoMatching": "**", "tagMatching": "**", "mostRecentlyPushed": 10},
        ]


def test_serving_robot_only_pulls_and_publishing_robot_pushes(run_program: Program) -> None:
    robots = {r["name"]: r for r in of_type(plan(run_program), ROBOT).values()}
    assert set(robots) == {"gallery-puller", "gallery-publisher"}

    def actions(robot: dict[str, Any]) -> dict[str, set[tuple[str, str]]]:
        assert robot["level"] == "system" and "secret" not in robot  # Harbor generates the secret
        return {p["namespace"]: {(a["resource"], a["action"]) for a in p["accesses"]} for p in robot["permissions"]
                if p["kind"] == "project"}

    pull, push = actions(robots["gallery-puller"]), actions(robots["gallery-publisher"])
    assert set(pull) == set(push) == {"dev-models", "prod-models"}
    assert all({action for _, action in a} <= {"pull", "read"} for a in pull.values())
    assert all(("repository", "push") in a and ("tag", "create") in a for a in push.values())


def test_members_get_their_roles(run_program: Program) -> None:
    gallery = {"prod": {"name": "prod-models", "members": [{"group": "ml-readers", "role": "guest"}]}}
    records = plan(run_program, gallery=gallery)
    ids = {f"{n}-id": p["name"] for n, p in of_type(records, PROJECT).items()}
    members = [(ids[m["projectId"]], m["groupName"], m["type"], m["role"]) for m in of_type(records, MEMBER).values()]
    assert members == [("prod-models", "ml-readers", "oidc", "guest")]


@pytest.mark.parametrize(("registry", "project"), [
    ({"mirror": f"{HOST}/airgap", "bootstrap": BOOTSTRAP}, "airgap"),  # on this Harbor: the mirror's own project
    ({"mirror": "registry.elsewhere.example/airgap"}, "mirror"),  # elsewhere: a project for pushing into Harbor
])
def test_mirror_project_follows_the_registry_mirror(run_program: Program, registry: dict[str, str],
                                                    project: str) -> None:
    names = {p["name"] for p in of_type(plan(run_program, registry=registry), PROJECT).values()}
    assert names == {"dev-models", "prod-models", "charts", project}


def test_with_the_mirror_on_this_harbor_harbor_pulls_from_the_bootstrap_registry(run_program: Program) -> None:
    """Harbor cannot serve its own images before it runs; what it serves (the runtimes, say) comes from it."""
    records = plan(run_program, registry={"mirror": f"{HOST}/airgap", "bootstrap": BOOTSTRAP, "pullSecret": "pull"})
    found = harbor_release(records)
    assert found["chart"] == f"oci://{BOOTSTRAP}/charts/harbor"
    assert all(r.startswith(f"{BOOTSTRAP}/") for r in repositories(found["values"]))
    assert found["values"]["trivy"]["dbRepository"] == [f"{BOOTSTRAP}/aquasecurity/trivy-db"]
    runtimes = [r.inputs for r in records if r.type.endswith("ClusterServingRuntime")]
    assert runtimes and all(c["image"].startswith(f"{HOST}/airgap/") for r in runtimes
                            for c in r["spec"]["containers"])


def test_robot_secrets_are_secret_outputs() -> None:
    """The robots' secrets leave the program only as secret outputs."""
    seen: dict[str, bool] = {}

    def program() -> Platform:
        platform = deploy()
        assert platform.harbor is not None
        outputs = {"pull": platform.harbor.pull_robot_secret, "push": platform.harbor.push_robot_secret,
                   "name": platform.harbor.pull_robot_name}

        async def record() -> bool:
            for key, output in outputs.items():
                seen[key] = await output.is_secret()
            return True

        recorded: pulumi.Output[bool] = pulumi.Output.from_input(record())
        recorded.apply(lambda _: None)
        return platform

    run_offline(program, stack_config(config(), {"harborAdminPassword": PASSWORD}))
    assert seen == {"pull": True, "push": True, "name": False}


def test_the_admin_password_never_appears_in_the_plan(run_program: Program) -> None:
    records = plan(run_program, registry={"mirror": MIRROR})
    assert PASSWORD not in json.dumps([r.inputs for r in records])


def test_no_harbor_config_no_harbor(run_program: Program) -> None:
    records = run_program(minimal())
    assert not [r for r in records if r.type.startswith(("pai:harbor", "harbor:", "pulumi:providers:harbor"))]


def test_airgap_stack_pulls_harbor_and_mlflow_from_the_mirror(run_stack: Callable[[str], list[Registered]]) -> None:
    records = run_stack("airgap")
    mirror, bootstrap = "harbor.pai.prod.example.internal/mirror", "registry.prod.example.internal/pai-bootstrap"
    found = {r["namespace"]: r for r in releases(records) if r["namespace"] in (namespaces.HARBOR, namespaces.MLFLOW)}
    assert found[namespaces.HARBOR]["chart"] == f"oci://{bootstrap}/charts/harbor"  # the mirror is on this Harbor
    assert found[namespaces.MLFLOW]["chart"] == f"oci://{mirror}/charts/mlflow"
    for namespace, registry in ((namespaces.HARBOR, bootstrap), (namespaces.MLFLOW, mirror)):
        release = found[namespace]
        assert all(r.startswith(f"{registry}/") for r in repositories(release["values"])), release["chart"]
        assert release["values"]["imagePullSecrets"] == [{"name": "mirror-pull"}]
    names = {p["name"] for p in of_type(records, PROJECT).values()}
    assert names == {"dev-models", "prod-models", "charts", "mirror"}
