"""Exposure through the platform Gateway, checked the way a Gateway API controller attaches routes: every hostname
the platform serves (the model API, Harbor, MLflow) has a listener whose allowedRoutes admit the route's namespace
and kind, whose hostname matches the route's, and whose certificate covers it; multi-GB transfers are not cut by
Envoy's timeouts; and nothing is left to an Ingress controller the platform does not run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import STACKS, DependencyMonitor, Program, minimal, of_kind, releases
from schemas import validate_helm_values, validate_object

from components import namespaces
from components.catalog import CATALOG
from program.offline import Registered

GATEWAY_API = "gateway.networking.k8s.io"
DOMAIN = "pai.example.com"
SECRETS = {"harborAdminPassword": "h", "mlflowDbPassword": "d", "mlflowAdminPassword": "a", "s3AccessKeyId": "k",
           "s3SecretAccessKey": "s"}
MODEL = {"name": "chat", "routingName": "acme/chat", "type": "completion", "format": "gguf",
         "source": "oci://registry.example.com/models/chat:v1", "tenant": "team-a"}


@dataclass(frozen=True)
class Route:
    """A route as the controller sees it: its kind, namespace, parents and hostnames (none: the listener's)."""

    what: str
    kind: str
    namespace: str
    parent_refs: list[dict[str, Any]]
    hostnames: list[str]


def routes(records: list[Registered]) -> Iterator[Route]:
    """Our HTTPRoutes, the one the Harbor chart renders from its values (templates/gateway-apis/route.yaml: the
    release namespace, expose.route.parentRefs and hosts), and the AIGatewayRoute, from which the AI Gateway
    generates an HTTPRoute of the same namespace and parents."""
    for obj in of_kind(records, "HTTPRoute"):
        yield Route(obj["metadata"]["name"], "HTTPRoute", obj["metadata"]["namespace"], obj["spec"]["parentRefs"],
                    obj["spec"].get("hostnames", []))
    for release in releases(records):
        expose = release["values"].get("expose", {})
        if expose.get("type") == "route":
            yield Route("harbor chart", "HTTPRoute", release["namespace"], expose["route"]["parentRefs"],
                        expose["route"]["hosts"])
    for obj in of_kind(records, "AIGatewayRoute"):
        yield Route(obj["metadata"]["name"], "HTTPRoute", obj["metadata"]["namespace"], obj["spec"]["parentRefs"], [])


def host_matches(pattern: str, host: str) -> bool:
    """A listener hostname or certificate DNS name (`*.x` covers exactly one more label) against a hostname."""
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and "." not in host[: -len(pattern) + 1]
    return pattern == host


def namespace_labels(records: list[Registered], name: str) -> dict[str, str]:
    """A namespace's labels as the API server keeps them: ours plus kubernetes.io/metadata.name."""
    (ns,) = [n for n in of_kind(records, "Namespace") if n["metadata"]["name"] == name]
    return {**ns["metadata"].get("labels", {}), "kubernetes.io/metadata.name": name}


def admits(records: list[Registered], gateway: dict[str, Any], listener: dict[str, Any], route: Route) -> bool:
    allowed = listener.get("allowedRoutes", {})
    kinds = [k["kind"] for k in allowed.get("kinds", [])] or ["HTTPRoute", "GRPCRoute"]  # HTTPS's defaults
    source = allowed.get("namespaces", {"from": "Same"})
    if source["from"] == "Same":
        from_ok = route.namespace == gateway["metadata"]["namespace"]
    elif source["from"] == "Selector":
        labels = namespace_labels(records, route.namespace)
        from_ok = source["selector"]["matchLabels"].items() <= labels.items()
    else:
        from_ok = source["from"] == "All"
    return route.kind in kinds and from_ok


def certificate_covers(records: list[Registered], gateway: dict[str, Any], listener: dict[str, Any]) -> bool:
    """The listener's Secret is a cert-manager Certificate's whose DNS names cover the listener's hostname, or a
    given Secret in another namespace that a ReferenceGrant there lets the Gateway read."""
    (ref,) = listener["tls"]["certificateRefs"]
    namespace = ref.get("namespace", gateway["metadata"]["namespace"])
    issued = [c for c in of_kind(records, "Certificate") if c["metadata"]["namespace"] == namespace
              and c["spec"]["secretName"] == ref["name"]]
    if issued:
        (cert,) = issued
        return any(host_matches(name, listener["hostname"]) for name in cert["spec"]["dnsNames"])
    grant = {"group": GATEWAY_API, "kind": "Gateway", "namespace": gateway["metadata"]["namespace"]}
    return namespace != gateway["metadata"]["namespace"] and any(
        g["metadata"]["namespace"] == namespace and grant in g["spec"]["from"]
        and {"group": "", "kind": "Secret", "name": ref["name"]} in g["spec"]["to"]
        for g in of_kind(records, "ReferenceGrant"))


def served_hosts(records: list[Registered]) -> dict[str, set[str]]:
    """Each route's hostnames as served over HTTPS, checked listener by listener; fails on any route a controller
    would not attach, or attach without a matching certificate."""
    gateways = {(g["metadata"]["namespace"], g["metadata"]["name"]): g for g in of_kind(records, "Gateway")}
    served: dict[str, set[str]] = {}
    for route in routes(records):
        assert route.parent_refs, route.what
        for ref in route.parent_refs:
            assert (ref.get("group", GATEWAY_API), ref.get("kind", "Gateway")) == (GATEWAY_API, "Gateway")
            gateway = gateways[(ref.get("namespace", route.namespace), ref["name"])]
            (listener,) = [x for x in gateway["spec"]["listeners"] if x["name"] == ref["sectionName"]]
            assert admits(records, gateway, listener, route), (route.what, listener["name"])
            assert listener["protocol"] == "HTTPS", (route.what, listener["name"])
            assert all(host_matches(listener["hostname"], h) for h in route.hostnames), route.what
            assert certificate_covers(records, gateway, listener), (route.what, listener["name"])
            served.setdefault(route.what, set()).update(route.hostnames or [listener["hostname"]])
    return served


def everything(run_program: Program, harbor: dict[str, Any] | None = None, mlflow: dict[str, Any] | None = None,
               domain: str | None = DOMAIN) -> list[Registered]:
    cluster = {"target": "generic", "kubernetesVersion": "1.33", **({"ingress": {"domain": domain}} if domain else {})}
    return run_program(minimal(cluster=cluster, models=[MODEL], harbor=harbor or {}, mlflow=mlflow or {}), SECRETS)


def test_every_service_is_served_on_its_hostname_with_a_covering_certificate(run_program: Program) -> None:
    records = everything(run_program)
    assert served_hosts(records) == {"pai-models": {DOMAIN}, "harbor chart": {f"harbor.{DOMAIN}"},
                                     "mlflow": {f"mlflow.{DOMAIN}"}}
    for kind in ("Gateway", "HTTPRoute", "ReferenceGrant", "BackendTrafficPolicy", "Certificate"):
        for obj in of_kind(records, kind):
            validate_object(obj, "1.33")
    (harbor,) = [r for r in releases(records) if r["namespace"] == namespaces.HARBOR]
    validate_helm_values("harbor", CATALOG.chart("harbor").version, harbor["values"])


def test_a_given_harbor_secret_and_explicit_hosts_without_a_domain(run_program: Program) -> None:
    """No domain: no model listener over HTTPS (the model API stays plain HTTP), Harbor on its own Secret, MLflow
    on the Gateway's certificate for its explicit host."""
    records = everything(run_program, {"host": "registry.corp.example", "tlsSecret": "corp-registry"},
                         {"host": "tracking.corp.example"}, domain=None)
    # The model route is on the plain-HTTP listener (test_gateway checks it); the services' routes all on HTTPS.
    records_without_models = [r for r in records if r.inputs.get("kind") != "AIGatewayRoute"]
    assert served_hosts(records_without_models) == {"harbor chart": {"registry.corp.example"},
                                                    "mlflow": {"tracking.corp.example"}}
    (cert,) = [c for c in of_kind(records, "Certificate") if c["metadata"]["namespace"] == namespaces.GATEWAY]
    assert cert["spec"]["dnsNames"] == ["tracking.corp.example"]


def test_a_listener_admits_only_its_own_services_routes(run_program: Program) -> None:
    """The AI route cannot take Harbor's hostname, nor MLflow's route Harbor's: each service listener admits only
    HTTPRoutes from its service's namespace."""
    records = everything(run_program)
    (gateway,) = of_kind(records, "Gateway")
    listeners = {x["name"]: x for x in gateway["spec"]["listeners"]}
    found = {r.what: r for r in routes(records)}
    assert not admits(records, gateway, listeners["harbor"], found["mlflow"])
    assert not admits(records, gateway, listeners["harbor"], found["pai-models"])
    assert not admits(records, gateway, listeners["mlflow"], found["harbor chart"])
    assert not admits(records, gateway, listeners["https"], found["harbor chart"])


def test_blob_transfers_are_not_cut_by_envoys_default_timeout(run_program: Program) -> None:
    """Envoy's route timeout defaults to 15 s, far too short to stream a multi-GB image layer or model artifact;
    the services' listeners get an hour. Envoy streams request bodies without a size limit (nothing buffers them:
    no requestBuffer), so time is the only bound."""
    records = everything(run_program)
    (gateway,) = of_kind(records, "Gateway")
    (policy,) = of_kind(records, "BackendTrafficPolicy")
    assert policy["metadata"]["namespace"] == gateway["metadata"]["namespace"]
    assert {(r["kind"], r["name"], r["sectionName"]) for r in policy["spec"]["targetRefs"]} == {
        ("Gateway", gateway["metadata"]["name"], "harbor"), ("Gateway", gateway["metadata"]["name"], "mlflow")}
    assert policy["spec"]["timeout"] == {"http": {"requestTimeout": "1h"}}
    assert "requestBuffer" not in policy["spec"]
    (client,) = of_kind(records, "ClientTrafficPolicy")
    assert "timeout" not in client["spec"]  # no requestReceivedTimeout: uploads may take as long as they need


def test_the_routes_wait_for_the_release_that_installs_the_gateway_api_crds(run_program: Program) -> None:
    """The envoy-gateway chart installs the HTTPRoute CRD; Harbor's release (which renders its HTTPRoute) and our
    MLflow HTTPRoute wait for it."""
    monitor = DependencyMonitor()
    cluster = {"target": "generic", "kubernetesVersion": "1.33", "ingress": {"domain": DOMAIN}}
    run_program(minimal(cluster=cluster, harbor={}, mlflow={}), SECRETS, monitor=monitor)
    envoy_gateway = "platform-gateway-envoy-gateway"
    assert envoy_gateway in monitor.deps["platform-harbor-release"]
    assert envoy_gateway in monitor.deps["platform-mlflow-route"]


def test_in_cluster_harbor_has_no_listener(run_program: Program) -> None:
    records = everything(run_program, {"expose": "clusterIP"})
    (gateway,) = of_kind(records, "Gateway")
    assert [x["name"] for x in gateway["spec"]["listeners"]] == ["https", "mlflow"]
    assert "harbor chart" not in served_hosts(records)


@pytest.mark.parametrize("stack", STACKS)
def test_stacks_serve_every_configured_hostname_and_use_no_ingress(
        run_stack: Callable[[str], list[Registered]], stack: str) -> None:
    records = run_stack(stack)
    served = set().union(*served_hosts(records).values())
    (gateway,) = of_kind(records, "Gateway")
    assert served == {x["hostname"] for x in gateway["spec"]["listeners"]}
    assert of_kind(records, "Ingress") == []
    for release in releases(records):
        values = release.get("values", {})
        if release["namespace"] in (namespaces.HARBOR, namespaces.MLFLOW):
            assert "ingress" not in values and values.get("expose", {}).get("type") != "ingress", release["chart"]
