"""Gateway: Envoy Gateway with the Envoy AI Gateway as its extension server, one Gateway for the platform, and one
AIGatewayRoute that sends each OpenAI-compatible request to the model endpoint behind the request's `model`.
The same Gateway exposes the platform's web services (Harbor, MLflow): an HTTPS listener per service hostname that
admits routes only from that service's namespace, TLS terminated at the Gateway.

The AI Gateway's external processor reads `model` from the request body into the `x-ai-eg-model` header before
routing, so `/v1/chat/completions`, `/v1/completions` and `/v1/embeddings` match one rule per routing name, and
`/v1/models` lists exactly those header values. A rule is keyed by its routing name: moving a routing name to
another model changes only that rule's backend, never what clients send."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import namespaces
from components.catalog import CATALOG
from components.config import Ingress, Model, Registry
from components.kube import RegistryLogin, certificate, helm_release, meta, mirror_pull_secret, platform_namespace
from components.values import chart_images, merge, nested, on_mirror

CONTROLLER_NAME = "gateway.envoyproxy.io/gatewayclass-controller"  # the chart's config.envoyGateway.gateway
GATEWAY_NAME = "pai-gateway"
ROUTE_NAME = "pai-models"
RULES_PER_ROUTE = 15  # AIGatewayRoute spec.rules maxItems (Envoy AI Gateway v1.1.0 CRD)
TLS_SECRET = "pai-gateway-tls"
MODEL_HEADER = "x-ai-eg-model"  # set by the AI Gateway from the request body's `model`
PREDICTOR_PORT = 80  # every model endpoint's predictor Service
# The AI Gateway controller's gRPC extension server, as its chart names it (controller.fullnameOverride).
EXTENSION_SERVER = f"ai-gateway-controller.{namespaces.AI_GATEWAY}.svc.cluster.local"
EXTENSION_SERVER_PORT = 1063
# Envoy buffers a whole request body for the AI Gateway to read `model`; its 32 KiB default refuses long prompts.
BODY_BUFFER_LIMIT = "50Mi"
# Generation takes longer than the AI Gateway's 60 s default request timeout.
REQUEST_TIMEOUT = "300s"
# A multi-GB image blob or model artifact takes far longer than Envoy's 15 s default route timeout to stream.
UPLOAD_TIMEOUT = "1h"
MODELS_HTTPS = "https"  # the model API's listener, on pai:cluster.ingress.domain
MODELS_HTTP = "http"  # ... or plain HTTP where no domain is set
GATEWAY_API = "gateway.networking.k8s.io"
AI_GATEWAY_API = "aigateway.envoyproxy.io"
ENVOY_GATEWAY_API = "gateway.envoyproxy.io"


@dataclass(frozen=True)
class Exposed:
    """A platform web service behind the Gateway: the listener `listener` on `hostname` admits routes from
    `namespace` only. Its certificate is `tls_secret`, an existing kubernetes.io/tls Secret in `namespace`, else the
    Gateway's own cert-manager certificate."""

    listener: str
    hostname: str
    namespace: str
    tls_secret: str | None = None


@dataclass(frozen=True)
class GatewayArgs:
    models: list[Model]
    ingress: Ingress
    registry: Registry
    tenant_namespaces: dict[str, pulumi.Output[str]]
    # The cert-manager release, so the Certificate waits for its CRD and issuer.
    cert_manager: pulumi.Resource | None = None
    exposed: tuple[Exposed, ...] = ()
    mirror_login: RegistryLogin | None = None  # the air-gap mirror's account, where the platform makes its Secret
    pod_security: str | None = None  # the Pod Security level its namespaces enforce (config.Cluster.pod_security)


class Gateway(pulumi.ComponentResource):
    """Envoy Gateway and the Envoy AI Gateway releases, the platform's Gateway, its model routes and the listeners
    of the web services it exposes."""

    api: pulumi.Resource  # the Envoy Gateway release, which installs the Gateway API CRDs routes need

    def __init__(self, name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pai:gateway:Gateway", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        registry = args.registry
        enforce = args.pod_security
        gateway_ns = platform_namespace(f"{name}-namespace", namespaces.GATEWAY, child,
                                        enforce=enforce).metadata["name"]
        ai_ns = platform_namespace(f"{name}-ai-namespace", namespaces.AI_GATEWAY, child,
                                   enforce=enforce).metadata["name"]
        gateway_pull = mirror_pull_secret(f"{name}-mirror-pull-secret", gateway_ns, registry, args.mirror_login, child)
        ai_pull = mirror_pull_secret(f"{name}-ai-mirror-pull-secret", ai_ns, registry, args.mirror_login, child)
        envoy_gateway = helm_release(f"{name}-envoy-gateway", "envoy-gateway", CATALOG.chart("envoy-gateway"),
                                     registry.mirror, gateway_ns, envoy_gateway_values(registry, gateway_pull), child)
        crds = helm_release(f"{name}-ai-gateway-crds", "ai-gateway-crds", CATALOG.chart("ai-gateway-crds"),
                            registry.mirror, ai_ns, {}, child)
        after_cert_manager = [args.cert_manager] if args.cert_manager else []
        ai_values = ai_gateway_values(registry, ai_pull, webhook_certificate=args.cert_manager is not None)
        ai_gateway = helm_release(f"{name}-ai-gateway", "ai-gateway", CATALOG.chart("ai-gateway"), registry.mirror,
                                  ai_ns, ai_values,
                                  pulumi.ResourceOptions(parent=self, depends_on=[crds, *after_cert_manager]))
        on_envoy_gateway = pulumi.ResourceOptions(parent=self, depends_on=[envoy_gateway])
        on_ai_gateway = pulumi.ResourceOptions(parent=self, depends_on=[crds, ai_gateway])

        domain = args.ingress.domain if args.models else None
        gateway_class = custom(f"{name}-class", GATEWAY_API, "v1", "GatewayClass", meta(args.ingress.className),
                               {"controllerName": CONTROLLER_NAME}, on_envoy_gateway)
        dns_names = certificate_dns_names(domain, args.exposed)
        if dns_names:
            certificate(f"{name}-certificate", gateway_ns, TLS_SECRET, dns_names,
                        pulumi.ResourceOptions(parent=self, depends_on=after_cert_manager))
        for exposed in args.exposed:
            if exposed.tls_secret:
                custom(f"{name}-{exposed.listener}-tls-grant", GATEWAY_API, "v1beta1", "ReferenceGrant",
                       meta(f"{GATEWAY_NAME}-tls", exposed.namespace), tls_grant_spec(exposed.tls_secret),
                       on_envoy_gateway)
        gateway = custom(f"{name}-gateway", GATEWAY_API, "v1", "Gateway", meta(GATEWAY_NAME, gateway_ns),
                         gateway_spec(gateway_class["name"], domain, bool(args.models), args.exposed),
                         on_envoy_gateway)
        gateway_name = gateway["name"]
        custom(f"{name}-client-traffic", ENVOY_GATEWAY_API, "v1alpha1", "ClientTrafficPolicy",
               meta(GATEWAY_NAME, gateway_ns), client_traffic_spec(gateway_name), on_envoy_gateway)
        if args.exposed:
            custom(f"{name}-uploads", ENVOY_GATEWAY_API, "v1alpha1", "BackendTrafficPolicy",
                   meta(f"{GATEWAY_NAME}-uploads", gateway_ns), uploads_spec(gateway_name, args.exposed),
                   on_envoy_gateway)
        self.api = envoy_gateway

        ai_backends: dict[str, pulumi.Output[Any]] = {}
        for model in args.models:
            tenant_ns = args.tenant_namespaces[model.tenant]
            backend = custom(f"{name}-{model.name}-backend", ENVOY_GATEWAY_API, "v1alpha1", "Backend",
                             meta(model.name, tenant_ns), backend_spec(model), on_envoy_gateway)
            ai_backends[model.name] = custom(
                f"{name}-{model.name}-ai-backend", AI_GATEWAY_API, "v1beta1", "AIServiceBackend",
                meta(model.name, tenant_ns), ai_service_backend_spec(backend["name"]), on_ai_gateway,
            )
        for tenant in sorted({m.tenant for m in args.models}):
            tenant_ns = args.tenant_namespaces[tenant]
            for grant, spec in reference_grants().items():
                custom(f"{name}-{tenant}-{grant}", GATEWAY_API, "v1beta1", "ReferenceGrant", meta(grant, tenant_ns),
                       spec, on_envoy_gateway)
        outputs: dict[str, Any] = {"gateway": gateway_name, "releases": [envoy_gateway.status, ai_gateway.status]}
        routes = [custom(f"{name}-{role}", AI_GATEWAY_API, "v1beta1", "AIGatewayRoute", meta(route_name, gateway_ns),
                         route_spec(gateway_name, models_listener(domain), shard, ai_backends), on_ai_gateway)
                  for role, route_name, shard in route_shards(args.models)]
        if routes:
            outputs["routes"] = [route["name"] for route in routes]
        self.register_outputs(outputs)


def custom(name: str, group: str, version: str, kind: str, metadata: Any, spec: dict[str, Any],
           opts: pulumi.ResourceOptions) -> pulumi.Output[Any]:
    """A custom resource; returns its metadata, whose outputs carry the dependency on it."""
    resource = k8s.apiextensions.CustomResource(name, api_version=f"{group}/{version}", kind=kind,
                                                metadata=metadata, spec=spec, opts=opts)
    created: pulumi.Output[Any] = resource.metadata  # type: ignore[attr-defined]  # an output set at run time
    return created


def envoy_gateway_values(registry: Registry, pull_secret: pulumi.Input[str] | None) -> dict[str, Any]:
    """Envoy Gateway as the AI Gateway needs it: the Backend API, EnvoyPatchPolicy, and the AI Gateway controller as
    extension server on the translation, cluster and route hooks (envoyproxy/ai-gateway
    manifests/envoy-gateway-values.yaml)."""
    translation = {kind: {"includeAll": True} for kind in ("listener", "route", "cluster", "secret")}
    config = {
        "gateway": {"controllerName": CONTROLLER_NAME},
        "extensionApis": {"enableEnvoyPatchPolicy": True, "enableBackend": True},
        "extensionManager": {
            "hooks": {"xdsTranslator": {"translation": translation, "post": ["Translation", "Cluster", "Route"]}},
            "service": {"fqdn": {"hostname": EXTENSION_SERVER, "port": EXTENSION_SERVER_PORT}},
        },
    }
    images: dict[str, Any] = {}
    for path, image in CATALOG.chart("envoy-gateway").images.items():
        block: dict[str, Any] = {"image": f"{on_mirror(image.repository, registry.mirror)}:{image.tag}"}
        if pull_secret:
            block["pullSecrets"] = [{"name": pull_secret}]
        images = merge(images, nested(path, block))
    return merge({"config": {"envoyGateway": config}}, images)


def ai_gateway_values(registry: Registry, pull_secret: pulumi.Input[str] | None,
                      webhook_certificate: bool) -> dict[str, Any]:
    """The AI Gateway controller, told where Envoy Gateway runs; its and the external processor's images pinned.
    With cert-manager installed, cert-manager issues and rotates the certificate of the webhook that injects the
    external processor into Envoy pods, instead of the self-signed one the chart embeds (not for production, says
    the chart)."""
    values: dict[str, Any] = {"envoyGateway": {"namespace": namespaces.GATEWAY}}
    if webhook_certificate:
        values["controller"] = {"mutatingWebhook": {"certManager": {"enable": True}}}
    values = merge(values, chart_images(CATALOG.chart("ai-gateway").images, registry.mirror))
    if pull_secret:
        values["global"] = {"imagePullSecrets": [{"name": pull_secret}]}
    return values


def parent_ref(listener: str) -> dict[str, str]:
    """How a route in another namespace attaches to the platform Gateway's listener `listener`."""
    return {"group": GATEWAY_API, "kind": "Gateway", "name": GATEWAY_NAME, "namespace": namespaces.GATEWAY,
            "sectionName": listener}


def models_listener(domain: str | None) -> str:
    return MODELS_HTTPS if domain else MODELS_HTTP


def certificate_dns_names(domain: str | None, exposed: tuple[Exposed, ...]) -> list[str]:
    """The Gateway certificate covers the model API's domain and every exposed hostname without a Secret of its own."""
    return [*([domain] if domain else []), *(e.hostname for e in exposed if not e.tls_secret)]


def https_listener(name: str, hostname: str, secret: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "protocol": "HTTPS", "port": 443, "hostname": hostname,
            "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", **secret}]}}


def exposed_listener(exposed: Exposed) -> dict[str, Any]:
    """HTTPS on the service's hostname; only HTTPRoutes from the service's own namespace may attach."""
    secret = ({"name": exposed.tls_secret, "namespace": exposed.namespace} if exposed.tls_secret
              else {"name": TLS_SECRET})
    listener = https_listener(exposed.listener, exposed.hostname, secret)
    listener["allowedRoutes"] = {
        "namespaces": {"from": "Selector",
                       "selector": {"matchLabels": {"kubernetes.io/metadata.name": exposed.namespace}}},
        "kinds": [{"group": GATEWAY_API, "kind": "HTTPRoute"}],
    }
    return listener


def gateway_spec(class_name: pulumi.Input[str], domain: str | None, models: bool,
                 exposed: tuple[Exposed, ...]) -> dict[str, Any]:
    """The model API (routes from the gateway namespace only): HTTPS on the configured domain with the cert-manager
    certificate, plain HTTP where no domain is set; then one HTTPS listener per exposed service."""
    listeners: list[dict[str, Any]] = []
    if models:
        if domain:
            listener = https_listener(MODELS_HTTPS, domain, {"name": TLS_SECRET})
        else:
            listener = {"name": MODELS_HTTP, "protocol": "HTTP", "port": 80}
        listeners.append({**listener, "allowedRoutes": {"namespaces": {"from": "Same"}}})
    listeners += [exposed_listener(e) for e in exposed]
    return {"gatewayClassName": class_name, "listeners": listeners}


def tls_grant_spec(secret: str) -> dict[str, Any]:
    """In a service's namespace: the Gateway may read its own TLS Secret."""
    return {"from": [{"group": GATEWAY_API, "kind": "Gateway", "namespace": namespaces.GATEWAY}],
            "to": [{"group": "", "kind": "Secret", "name": secret}]}


def uploads_spec(gateway_name: pulumi.Input[str], exposed: tuple[Exposed, ...]) -> dict[str, Any]:
    """Image pushes and pulls, artifact uploads and downloads stream for as long as they need on the services'
    listeners (Envoy streams request bodies to the backend without a size limit; only its timeouts bound them)."""
    return {"targetRefs": [{"group": GATEWAY_API, "kind": "Gateway", "name": gateway_name,
                            "sectionName": e.listener} for e in exposed],
            "timeout": {"http": {"requestTimeout": UPLOAD_TIMEOUT}}}


def client_traffic_spec(gateway_name: pulumi.Input[str]) -> dict[str, Any]:
    return {"targetRefs": [{"group": GATEWAY_API, "kind": "Gateway", "name": gateway_name}],
            "connection": {"bufferLimit": BODY_BUFFER_LIMIT}}


def predictor_host(model: Model) -> str:
    """The model endpoint's predictor Service (KServe RawDeployment names it `<isvc>-predictor`)."""
    return f"{model.name}-predictor.{model.tenant}.svc.cluster.local"


def backend_spec(model: Model) -> dict[str, Any]:
    return {"endpoints": [{"fqdn": {"hostname": predictor_host(model), "port": PREDICTOR_PORT}}]}


def ai_service_backend_spec(backend_name: pulumi.Input[str]) -> dict[str, Any]:
    """Every runtime speaks the OpenAI API."""
    return {"schema": {"name": "OpenAI"},
            "backendRef": {"group": ENVOY_GATEWAY_API, "kind": "Backend", "name": backend_name}}


def reference_grants() -> dict[str, dict[str, Any]]:
    """In a tenant namespace: the route may name the tenant's AIServiceBackends, and the HTTPRoute the AI Gateway
    generates from it (in the gateway namespace) may send traffic to the tenant's Backends."""
    return {
        "pai-gateway-route": {
            "from": [{"group": AI_GATEWAY_API, "kind": "AIGatewayRoute", "namespace": namespaces.GATEWAY}],
            "to": [{"group": AI_GATEWAY_API, "kind": "AIServiceBackend"}],
        },
        "pai-gateway-http-route": {
            "from": [{"group": GATEWAY_API, "kind": "HTTPRoute", "namespace": namespaces.GATEWAY}],
            "to": [{"group": ENVOY_GATEWAY_API, "kind": "Backend"}],
        },
    }


def route_rule(model: Model, ai_backend: Any) -> dict[str, Any]:
    """Requests whose `model` is the routing name go to this model's AIServiceBackend (its metadata)."""
    return {
        "name": model.route_key,
        "matches": [{"headers": [{"type": "Exact", "name": MODEL_HEADER, "value": model.routingName}]}],
        "backendRefs": [{"name": ai_backend["name"], "namespace": ai_backend["namespace"]}],
        "timeouts": {"request": REQUEST_TIMEOUT},
    }


def route_shards(models: list[Model]) -> list[tuple[str, str, list[Model]]]:
    """(resource role, route name, models) per AIGatewayRoute: routing names in order, RULES_PER_ROUTE a route (the
    CRD's limit). The first keeps the name `pai-models`; moving a routing name to another model changes only the
    backend of its rule, never which route holds it."""
    ordered = sorted(models, key=lambda m: m.routingName)
    shards = [ordered[i:i + RULES_PER_ROUTE] for i in range(0, len(ordered), RULES_PER_ROUTE)]
    return [("route", ROUTE_NAME, shard) if i == 0 else (f"route-{i + 1}", f"{ROUTE_NAME}-{i + 1}", shard)
            for i, shard in enumerate(shards)]


def route_spec(gateway_name: pulumi.Input[str], listener: str, models: list[Model],
               ai_backends: dict[str, pulumi.Output[Any]]) -> dict[str, Any]:
    """One rule per routing name, in the order given (route_shards sorts them, so reordering the config changes
    nothing); on the model API's listener only."""
    rules = [route_rule(m, ai_backends[m.name]) for m in models]
    return {"parentRefs": [{"group": GATEWAY_API, "kind": "Gateway", "name": gateway_name, "sectionName": listener}],
            "rules": rules}
