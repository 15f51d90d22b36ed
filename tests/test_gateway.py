"""Gateway: Envoy Gateway configured for the AI Gateway, the platform's Gateway and certificate, one AIGatewayRoute
rule per routing name, cross-namespace grants, the routing-name move, air-gap images, and the config rules."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
from conftest import DependencyMonitor, Program, minimal, of_kind, releases, stack_config, strings
from schemas import chart_defaults, chart_dependencies, crd_storage_version, validate_helm_values, validate_object

from components import namespaces
from components.catalog import CATALOG
from components.config import ConfigError, Ingress, Model, Registry
from components.gateway import MODEL_HEADER, Gateway, GatewayArgs
from program.offline import RecordingMonitor, Registered, load_stack_file, run_offline, stack_path

MIRROR = "harbor.example.com/mirror"
TENANTS = [{"name": "team-a"}, {"name": "team-b"}, {"name": "idle"}]
DOMAIN = "ai.example.com"
CHARTS = {"gateway-helm": "envoy-gateway", "ai-gateway-crds-helm": "ai-gateway-crds", "ai-gateway-helm": "ai-gateway"}


def model(name: str, routing: str, tenant: str = "team-a", **fields: Any) -> dict[str, Any]:
    return {"name": name, "routingName": routing, "type": "completion", "format": "gguf",
            "source": f"oci://harbor.example.com/models/{name}:v1", "tenant": tenant, **fields}


MODELS = [model("chat-v1", "acme/chat"), model("embed", "acme/embed", "team-b", type="embedding", format="onnx")]


def plan(run_program: Program, models: list[dict[str, Any]] | None = None, domain: str | None = DOMAIN,
         registry: dict[str, Any] | None = None, monitor: RecordingMonitor | None = None,
         **ingress: Any) -> list[Registered]:
    cluster = {"target": "generic", "kubernetesVersion": "1.33",
               "ingress": {**({"domain": domain} if domain else {}), **ingress}}
    values = minimal(cluster=cluster, tenants=TENANTS, models=MODELS if models is None else models,
                     **({"registry": registry} if registry else {}))
    return run_program(values, monitor=monitor)


def one(records: list[Registered], kind: str) -> dict[str, Any]:
    (found,) = of_kind(records, kind)
    return found


def release(records: list[Registered], chart: str) -> dict[str, Any]:
    (found,) = [r for r in releases(records) if r["chart"].rsplit("/", 1)[-1] == chart]
    return found


def rules(records: list[Registered]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in one(records, "AIGatewayRoute")["spec"]["rules"]}


def gateway_records(records: list[Registered]) -> list[Registered]:
    return [r for r in records if r.parent == "pai:gateway:Gateway::platform-gateway"]


def gateway_certificates(records: list[Registered]) -> list[dict[str, Any]]:
    return [c for c in of_kind(records, "Certificate") if c["metadata"]["namespace"] == namespaces.GATEWAY]


def by_name(records: list[Registered], kind: str, namespace: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in of_kind(records, kind)
                if o["metadata"]["name"] == name and o["metadata"].get("namespace") == namespace]
    return found


# --- schemas ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("registry", [None, {"mirror": MIRROR, "pullSecret": "mirror-pull"}])
@pytest.mark.parametrize("domain", [DOMAIN, None])
def test_every_object_and_value_validates(run_program: Program, domain: str | None,
                                          registry: dict[str, Any] | None) -> None:
    records = plan(run_program, domain=domain, registry=registry)
    emitted = [r.inputs for r in gateway_records(records) if "kind" in r.inputs]
    assert {o["kind"] for o in emitted} >= {"Namespace", "GatewayClass", "Gateway", "AIGatewayRoute",
                                            "AIServiceBackend", "Backend", "ReferenceGrant", "ClientTrafficPolicy"}
    for obj in emitted:
        validate_object(obj, "1.33")
    assert {r["chart"].rsplit("/", 1)[-1] for r in releases(records)} >= set(CHARTS)
    for chart in CHARTS:
        found = release(records, chart)
        validate_helm_values(chart, found["version"], found.get("values", {}))


def test_custom_resources_use_their_crds_storage_version(run_program: Program) -> None:
    records = plan(run_program)
    customs = [r.inputs for r in gateway_records(records) if "/" in r.inputs.get("apiVersion", "")]
    assert customs
    for obj in customs:
        group, version = obj["apiVersion"].split("/")
        assert version == crd_storage_version(group, obj["kind"]), obj["kind"]


def test_custom_resources_wait_for_the_release_that_installs_their_crd(run_program: Program) -> None:
    monitor = DependencyMonitor()
    plan(run_program, monitor=monitor)
    deps = monitor.deps
    envoy, crds = "platform-gateway-envoy-gateway", "platform-gateway-ai-gateway-crds"
    for name in ("class", "gateway", "client-traffic", "chat-v1-backend", "team-a-pai-gateway-route"):
        assert envoy in deps[f"platform-gateway-{name}"], name
    for name in ("route", "chat-v1-ai-backend", "embed-ai-backend"):
        assert crds in deps[f"platform-gateway-{name}"], name
    assert crds in deps["platform-gateway-ai-gateway"]


# --- Envoy Gateway and the AI Gateway ----------------------------------------------------------------------


def test_envoy_gateway_calls_the_ai_gateway_extension_server(run_program: Program) -> None:
    records = plan(run_program)
    envoy = release(records, "gateway-helm")
    ai = release(records, "ai-gateway-helm")
    config = envoy["values"]["config"]["envoyGateway"]
    assert config["extensionApis"] == {"enableEnvoyPatchPolicy": True, "enableBackend": True}
    hooks = config["extensionManager"]["hooks"]["xdsTranslator"]
    assert hooks["post"] == ["Translation", "Cluster", "Route"]
    assert all(hooks["translation"][k] == {"includeAll": True} for k in ("listener", "route", "cluster", "secret"))
    # The extension server is the AI Gateway controller's Service (named by the chart's fullnameOverride) in the
    # namespace its release goes to, on the port the chart names grpc.
    defaults = chart_defaults("ai-gateway-helm", "v1.1.0")["controller"]
    (grpc,) = [p["port"] for p in defaults["service"]["ports"] if p["name"] == "grpc"]
    assert config["extensionManager"]["service"]["fqdn"] == {
        "hostname": f"{defaults['fullnameOverride']}.{ai['namespace']}.svc.cluster.local", "port": grpc}
    # ... and the AI Gateway is told where Envoy Gateway runs.
    assert ai["values"]["envoyGateway"]["namespace"] == envoy["namespace"] == namespaces.GATEWAY
    assert release(records, "ai-gateway-crds-helm")["namespace"] == ai["namespace"] == namespaces.AI_GATEWAY


def test_gateway_class_is_envoy_gateways_and_named_from_config(run_program: Program) -> None:
    records = plan(run_program, className="pai-envoy")
    gateway_class = one(records, "GatewayClass")
    controller = chart_defaults("gateway-helm", "v1.9.0")["config"]["envoyGateway"]["gateway"]["controllerName"]
    assert gateway_class["spec"] == {"controllerName": controller}
    assert release(records, "gateway-helm")["values"]["config"]["envoyGateway"]["gateway"]["controllerName"] == \
        controller
    assert gateway_class["metadata"]["name"] == one(records, "Gateway")["spec"]["gatewayClassName"] == "pai-envoy"


def test_the_gateway_chart_installs_the_gateway_api_crds(run_program: Program) -> None:
    """gateway-helm v1.9.0 bundles the Envoy Gateway and Gateway API standard CRDs in its `crds` subchart, on by
    default, so no separate CRD release is needed before the GatewayClass, Gateway and ReferenceGrants."""
    crds = {"name": "crds", "version": "0.0.0", "condition": "crds.enabled"}
    assert crds in chart_dependencies("gateway-helm", "v1.9.0")
    assert chart_defaults("gateway-helm", "v1.9.0")["crds"]["enabled"] is True
    assert "crds" not in release(plan(run_program), "gateway-helm")["values"]


def test_with_cert_manager_the_certificates_wait_for_it_and_it_signs_the_webhook() -> None:
    def program(cert_manager: bool) -> Callable[[], None]:
        def build() -> None:
            ingress = Ingress(domain=DOMAIN)
            issuer = k8s.core.v1.Namespace("cert-manager", metadata={"name": "cert-manager"}) if cert_manager else None
            Gateway("gw", GatewayArgs(models=[Model.model_validate(MODELS[0])], ingress=ingress, registry=Registry(),
                                      tenant_namespaces={"team-a": pulumi.Output.from_input("team-a")},
                                      cert_manager=issuer))
        return build

    monitor = DependencyMonitor()
    records = run_offline(program(True), stack_config(minimal()), monitor)
    assert "cert-manager" in monitor.deps["gw-certificate"] and "cert-manager" in monitor.deps["gw-ai-gateway"]
    webhook = release(records, "ai-gateway-helm")["values"]["controller"]["mutatingWebhook"]
    assert webhook == {"certManager": {"enable": True}}
    validate_helm_values("ai-gateway-helm", "v1.1.0", release(records, "ai-gateway-helm")["values"])
    without = release(run_offline(program(False), stack_config(minimal())), "ai-gateway-helm")["values"]
    assert "mutatingWebhook" not in without["controller"]


# --- listeners and the certificate --------------------------------------------------------------------------


def test_a_domain_gets_https_with_a_cluster_issuer_certificate(run_program: Program) -> None:
    records = plan(run_program)
    (certificate,) = gateway_certificates(records)  # cert-manager's own CA Certificate lives elsewhere
    assert certificate["spec"]["dnsNames"] == [DOMAIN]
    assert certificate["spec"]["issuerRef"] == {"group": "cert-manager.io", "kind": "ClusterIssuer",
                                                "name": namespaces.CLUSTER_ISSUER}
    (listener,) = one(records, "Gateway")["spec"]["listeners"]
    assert (listener["protocol"], listener["port"], listener["hostname"]) == ("HTTPS", 443, DOMAIN)
    assert listener["tls"] == {"mode": "Terminate", "certificateRefs": [
        {"kind": "Secret", "name": certificate["spec"]["secretName"]}]}


def test_no_domain_gets_plain_http_and_no_certificate(run_program: Program) -> None:
    records = plan(run_program, domain=None)
    assert gateway_certificates(records) == []
    assert one(records, "Gateway")["spec"]["listeners"] == [
        {"name": "http", "protocol": "HTTP", "port": 80, "allowedRoutes": {"namespaces": {"from": "Same"}}}]


def test_request_bodies_beyond_envoys_default_buffer_are_accepted(run_program: Program) -> None:
    records = plan(run_program)
    policy = one(records, "ClientTrafficPolicy")
    gateway = one(records, "Gateway")
    assert policy["spec"]["targetRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                             "name": gateway["metadata"]["name"]}]
    assert policy["metadata"]["namespace"] == gateway["metadata"]["namespace"]
    assert policy["spec"]["connection"]["bufferLimit"] == "50Mi"


# --- routing ------------------------------------------------------------------------------------------------


def test_vks_prod_routes_each_routing_name_to_its_endpoint(run_stack: Callable[[str], list[Registered]]) -> None:
    records = run_stack("vks-prod")
    models = json.loads(load_stack_file(stack_path("vks-prod")).values["pai:models"])
    route = one(records, "AIGatewayRoute")
    gateway = one(records, "Gateway")
    assert route["metadata"]["namespace"] == gateway["metadata"]["namespace"]
    (listener,) = [x for x in gateway["spec"]["listeners"] if x["hostname"] == "pai.prod.example.internal"]
    assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                            "name": gateway["metadata"]["name"], "sectionName": listener["name"]}]
    found = route["spec"]["rules"]
    assert len(found) == len(models) == 3
    for m in models:
        (rule,) = [r for r in found if r["matches"][0]["headers"][0]["value"] == m["routingName"]]
        # Only the model header: no path match, so every OpenAI path under the AI Gateway's root prefix
        # (/v1/chat/completions, /v1/completions, /v1/embeddings) routes by model, and /v1/models lists it.
        assert rule["matches"] == [{"headers": [{"type": "Exact", "name": MODEL_HEADER, "value": m["routingName"]}]}]
        (ref,) = rule["backendRefs"]
        assert ref == {"name": m["name"], "namespace": m["tenant"]}
        ai_backend = by_name(records, "AIServiceBackend", m["tenant"], m["name"])
        assert ai_backend["spec"]["schema"] == {"name": "OpenAI"}
        backend_ref = ai_backend["spec"]["backendRef"]
        assert (backend_ref["group"], backend_ref["kind"]) == ("gateway.envoyproxy.io", "Backend")
        backend = by_name(records, "Backend", m["tenant"], backend_ref["name"])
        assert backend["spec"]["endpoints"] == [
            {"fqdn": {"hostname": f"{m['name']}-predictor.{m['tenant']}.svc.cluster.local", "port": 80}}]


def test_the_openai_paths_are_the_charts_defaults(run_program: Program) -> None:
    """The AI Gateway serves the OpenAI API under endpointConfig.rootPrefix "/" with no provider prefix, i.e.
    /v1/...; the platform keeps those defaults."""
    defaults = chart_defaults("ai-gateway-helm", "v1.1.0")["endpointConfig"]
    assert (defaults["rootPrefix"], defaults["openai"]) == ("/", "")
    assert "endpointConfig" not in release(plan(run_program), "ai-gateway-helm")["values"]


def test_moving_a_routing_name_changes_only_its_backend(run_program: Program) -> None:
    """acme/chat moves from chat-v1 to chat-v2: clients send the same model, the rule matches the same header,
    and only the backend behind it changes; the route object keeps its name, nothing else moves."""
    before = plan(run_program, [model("chat-v1", "acme/chat")])
    after = plan(run_program, [model("chat-v1", "acme/chat-v1"), model("chat-v2", "acme/chat")])
    old, new = rules(before)["acme-chat"], rules(after)["acme-chat"]
    assert new["matches"] == old["matches"]
    assert old["backendRefs"] == [{"name": "chat-v1", "namespace": "team-a"}]
    assert new["backendRefs"] == [{"name": "chat-v2", "namespace": "team-a"}]
    assert {k: v for k, v in new.items() if k != "backendRefs"} == {k: v for k, v in old.items() if k != "backendRefs"}
    # Same resource names (Pulumi URNs and Kubernetes names) for everything that existed before: an update in
    # place, no replacement; the new version only adds its own backends.
    keys_before = {r.key: r.inputs for r in gateway_records(before)}
    keys_after = {r.key: r.inputs for r in gateway_records(after)}
    assert set(keys_before) <= set(keys_after)
    changed = {k for k in keys_before if keys_before[k] != keys_after[k]}
    assert changed == {"kubernetes:aigateway.envoyproxy.io/v1beta1:AIGatewayRoute::platform-gateway-route"}
    added = {k.rsplit("::", 1)[-1] for k in set(keys_after) - set(keys_before)}
    assert added == {"platform-gateway-chat-v2-backend", "platform-gateway-chat-v2-ai-backend"}


def test_config_order_does_not_change_the_route(run_program: Program) -> None:
    forward = one(plan(run_program, MODELS), "AIGatewayRoute")
    assert one(plan(run_program, list(reversed(MODELS))), "AIGatewayRoute") == forward


def test_tenants_with_endpoints_grant_the_cross_namespace_references(run_program: Program) -> None:
    records = plan(run_program)
    route = one(records, "AIGatewayRoute")
    route_ns = route["metadata"]["namespace"]
    grants = of_kind(records, "ReferenceGrant")
    assert {g["metadata"]["namespace"] for g in grants} == {"team-a", "team-b"}  # not the idle tenant

    def granted(namespace: str, source: tuple[str, str], target: tuple[str, str]) -> bool:
        return any(
            g["metadata"]["namespace"] == namespace
            and {"group": source[0], "kind": source[1], "namespace": route_ns} in g["spec"]["from"]
            and {"group": target[0], "kind": target[1]} in g["spec"]["to"]
            for g in grants)

    for rule in route["spec"]["rules"]:
        for ref in rule["backendRefs"]:
            assert ref["namespace"] != route_ns
            # The route names an AIServiceBackend in the tenant namespace ...
            assert granted(ref["namespace"], ("aigateway.envoyproxy.io", "AIGatewayRoute"),
                           ("aigateway.envoyproxy.io", "AIServiceBackend"))
            # ... and the HTTPRoute the AI Gateway generates beside the route sends traffic to its Backend.
            assert granted(ref["namespace"], ("gateway.networking.k8s.io", "HTTPRoute"),
                           ("gateway.envoyproxy.io", "Backend"))


def test_nothing_to_serve_or_expose_installs_no_gateway(run_program: Program) -> None:
    records = run_program(minimal())
    assert gateway_records(records) == []
    assert not [r for r in releases(records) if r["chart"].rsplit("/", 1)[-1] in CHARTS]


# --- images and air gap -------------------------------------------------------------------------------------


def test_catalog_images_are_the_charts(run_program: Program) -> None:
    eg = CATALOG.chart("envoy-gateway")
    defaults = chart_defaults("gateway-helm", eg.version)["global"]["images"]
    assert eg.images["global.images.ratelimit"].ref == defaults["ratelimit"]["image"]
    assert eg.images["global.images.envoyGateway"].tag == eg.version  # the chart renders ${GatewayImage} so
    ai = CATALOG.chart("ai-gateway")
    ai_defaults = chart_defaults("ai-gateway-helm", ai.version)
    for path in ("controller.image", "extProc.image"):
        block = ai_defaults[path.split(".")[0]]["image"]
        assert ai.images[path].repository == block["repository"] and block["tag"] == ""
        assert ai.images[path].tag == ai.version  # an empty tag is the chart's appVersion, the release tag
    # Without a mirror the releases still pin every image from the catalog.
    records = plan(run_program)
    images = release(records, "gateway-helm")["values"]["global"]["images"]
    assert {f"global.images.{k}": v["image"] for k, v in images.items()} == {k: i.ref for k, i in eg.images.items()}
    values = release(records, "ai-gateway-helm")["values"]
    assert values["controller"]["image"] == {"repository": "docker.io/envoyproxy/ai-gateway-controller",
                                             "tag": "v1.1.0"}


def test_air_gap_pulls_every_chart_and_image_from_the_mirror(run_program: Program) -> None:
    records = plan(run_program, registry={"mirror": MIRROR, "pullSecret": "mirror-pull"})
    for chart, key in CHARTS.items():
        found = release(records, chart)
        assert found["chart"] == f"oci://{MIRROR}/charts/{chart}"
        assert found["version"] == CATALOG.chart(key).version
    envoy = release(records, "gateway-helm")["values"]["global"]["images"]
    assert envoy["envoyGateway"]["image"] == f"{MIRROR}/envoyproxy/gateway:v1.9.0"
    assert envoy["envoyProxy"]["image"] == f"{MIRROR}/envoyproxy/envoy:distroless-v1.39.0"
    assert envoy["ratelimit"]["image"] == f"{MIRROR}/envoyproxy/ratelimit:17b1956c"
    assert all(block["pullSecrets"] == [{"name": "mirror-pull"}] for block in envoy.values())
    ai = release(records, "ai-gateway-helm")["values"]
    assert ai["controller"]["image"]["repository"] == f"{MIRROR}/envoyproxy/ai-gateway-controller"
    assert ai["extProc"]["image"]["repository"] == f"{MIRROR}/envoyproxy/ai-gateway-extproc"
    assert ai["global"]["imagePullSecrets"] == [{"name": "mirror-pull"}]
    everything = [s for r in releases(records) for s in strings(r.get("values", {}))]
    assert not [s for s in everything if s.startswith("docker.io")]


def test_more_routing_names_than_one_route_holds_spread_over_routes_in_order(run_program: Program) -> None:
    """An AIGatewayRoute holds at most 15 rules (its CRD's spec.rules maxItems): 40 routing names take three routes,
    filled in routing-name order, the first keeping its name, each valid and every name routed exactly once."""
    many = [model(f"m{i:02d}", f"acme/m{i:02d}") for i in range(40)]
    records = plan(run_program, list(reversed(many)))
    routes = sorted(of_kind(records, "AIGatewayRoute"), key=lambda r: (len(r["metadata"]["name"]),
                                                                       r["metadata"]["name"]))
    assert [r["metadata"]["name"] for r in routes] == ["pai-models", "pai-models-2", "pai-models-3"]
    assert [len(r["spec"]["rules"]) for r in routes] == [15, 15, 10]
    routed = [m["headers"][0]["value"] for r in routes for rule in r["spec"]["rules"] for m in rule["matches"]]
    assert routed == sorted(m["routingName"] for m in many)
    for route in routes:
        validate_object(route, "1.33")
    assert len({r["spec"]["parentRefs"][0]["sectionName"] for r in routes}) == 1


# --- config -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("models", "ingress", "message"), [
    ([model("a", "acme/chat.v1"), model("b", "acme/chat-v1")], {},
     "pai:models[1].routingName: 'acme/chat-v1' and 'acme/chat.v1' give the same gateway rule name 'acme-chat-v1'; "
     "rename one"),
    (MODELS, {"className": "Envoy_GW"},
     "pai:cluster.ingress.className: 'Envoy_GW' is not a Kubernetes object name (lowercase letters, digits, '-' "
     "and '.')"),
])
def test_gateway_config_errors(run_program: Program, models: list[dict[str, Any]], ingress: dict[str, Any],
                               message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        plan(run_program, models, **ingress)
    assert str(raised.value) == f"stacks/Pulumi.test.yaml: {message}"
