"""Monitoring: kube-prometheus-stack (Prometheus, Alertmanager, Grafana, the operator, kube-state-metrics,
node exporter) with Prometheus selecting monitors and rules from every namespace, so the GPU Operator's DCGM
exporter ServiceMonitor is scraped as is; a PodMonitor for the model endpoints' runtimes, a ServiceMonitor for
the KServe controller, the platform's alert rules and its Grafana dashboards."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import namespaces
from components.alerts import rule_groups
from components.catalog import CATALOG
from components.config import Gpu, Registry
from components.config import Monitoring as MonitoringConfig
from components.dashboards import dashboards, render
from components.kube import RegistryLogin, helm_release, meta, mirror_pull_secret, platform_namespace
from components.values import merge, nested

CHART = "kube-prometheus-stack"
RELEASE = "kps"
GRAFANA_ADMIN_SECRET = "grafana-admin"
GRAFANA_ADMIN_USER = "admin"
# The chart's Grafana sidecar picks up ConfigMaps with this label in every namespace (grafana.sidecar.dashboards
# label / labelValue / searchNamespace in the chart's values.yaml, left at their defaults).
DASHBOARD_LABEL = ("grafana_dashboard", "1")
MONITORING_API = "monitoring.coreos.com/v1"
KSERVE_CONTROLLER = {"control-plane": "kserve-controller-manager"}
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # a file path, not a secret


@dataclass(frozen=True)
class MonitoringArgs:
    monitoring: MonitoringConfig
    registry: Registry
    tenant_namespaces: dict[str, pulumi.Input[str]]
    grafana_admin_password: pulumi.Output[str]
    gpu: Gpu | None = None
    storage_class: str | None = None
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    mirror_login: RegistryLogin | None = None  # the air-gap mirror's account, where the platform makes its Secret


class Monitoring(pulumi.ComponentResource):
    """The monitoring stack, its scrape targets, alert rules and dashboards."""

    namespace: pulumi.Output[str]
    release: k8s.helm.v3.Release  # installs the prometheus-operator CRDs (ServiceMonitor, PodMonitor, ...)

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pai:monitoring:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        pin = CATALOG.chart(CHART)
        # Privileged Pod Security: node exporter reads the host's /proc, /sys and network.
        ns = platform_namespace(f"{name}-namespace", namespaces.MONITORING, child, privileged=True)
        self.namespace = ns.metadata["name"]
        admin = k8s.core.v1.Secret(
            f"{name}-grafana-admin",
            metadata=meta(GRAFANA_ADMIN_SECRET, self.namespace),
            type="Opaque",
            string_data={"admin-user": GRAFANA_ADMIN_USER, "admin-password": args.grafana_admin_password},
            opts=child,
        )
        pull_secret = mirror_pull_secret(f"{name}-mirror-pull-secret", self.namespace, args.registry,
                                         args.mirror_login, child)
        self.release = release = helm_release(
            f"{name}-release", RELEASE, pin, args.registry.mirror, self.namespace,
            stack_values(args.monitoring, args.registry, pull_secret, args.storage_class, admin.metadata["name"]),
            pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )
        after_release = pulumi.ResourceOptions(parent=self, depends_on=[release])
        for role, kind, spec in (
            ("serving-runtimes", "PodMonitor", serving_pod_monitor(list(args.tenant_namespaces.values()))),
            ("kserve-controller", "ServiceMonitor", kserve_service_monitor()),
        ):
            k8s.apiextensions.CustomResource(
                f"{name}-{role}", api_version=MONITORING_API, kind=kind,
                metadata=meta(f"pai-{role}", self.namespace), spec=spec, opts=after_release,
            )
        gpu = args.gpu is not None
        vgpu = args.gpu is not None and args.gpu.driver.mode == "vgpu"
        k8s.apiextensions.CustomResource(
            f"{name}-rules", api_version=MONITORING_API, kind="PrometheusRule",
            metadata=meta("pai-platform", self.namespace),
            spec={"groups": rule_groups(args.monitoring.slo, gpu=gpu, vgpu=vgpu)}, opts=after_release,
        )
        for file, board in dashboards(gpu).items():
            k8s.core.v1.ConfigMap(
                f"{name}-dashboard-{board['uid']}",
                metadata=meta(f"{board['uid']}-dashboard", self.namespace, labels=dict([DASHBOARD_LABEL])),
                data={file: render(board)},
                opts=child,
            )
        self.register_outputs({"namespace": self.namespace, "release": release.status})


def label_source(label: str) -> str:
    """The discovery label Prometheus gives a pod label: pai.io/model -> __meta_kubernetes_pod_label_pai_io_model."""
    return "__meta_kubernetes_pod_label_" + "".join(c if c.isalnum() else "_" for c in label)


def serving_pod_monitor(tenant_namespaces: list[pulumi.Input[str]]) -> dict[str, Any]:
    """Scrape every model endpoint's pods (those with the engine label) in the tenant namespaces at /metrics on
    the serving port, labelling every series with the endpoint's model, engine and routing name."""
    annotation = "__meta_kubernetes_pod_annotation_" + "".join(
        c if c.isalnum() else "_" for c in namespaces.ROUTING_NAME_ANNOTATION)
    return {
        "namespaceSelector": {"matchNames": tenant_namespaces},
        "selector": {"matchExpressions": [{"key": namespaces.ENGINE_LABEL, "operator": "Exists"}]},
        "podMetricsEndpoints": [{
            "port": namespaces.SERVING_PORT_NAME,
            "path": "/metrics",
            "interval": "15s",
            "relabelings": [
                {"action": "replace", "sourceLabels": [label_source(namespaces.MODEL_LABEL)], "targetLabel": "model"},
                {"action": "replace", "sourceLabels": [label_source(namespaces.ENGINE_LABEL)],
                 "targetLabel": "engine"},
                {"action": "replace", "sourceLabels": [annotation], "targetLabel": "routing_name"},
            ],
        }],
    }


def kserve_service_monitor() -> dict[str, Any]:
    """The KServe controller's metrics (controller-runtime reconcile and workqueue metrics) behind its
    authenticated HTTPS metrics service; Prometheus presents its service account token."""
    return {
        "namespaceSelector": {"matchNames": [namespaces.KSERVE]},
        "selector": {"matchLabels": KSERVE_CONTROLLER},
        "endpoints": [{"port": "https", "scheme": "https", "path": "/metrics",
                       "bearerTokenFile": SERVICE_ACCOUNT_TOKEN, "tlsConfig": {"insecureSkipVerify": True}}],
    }


def stack_values(monitoring: MonitoringConfig, registry: Registry, pull_secret: pulumi.Input[str] | None,
                 storage_class: str | None, admin_secret: pulumi.Input[str]) -> dict[str, Any]:
    """Helm values for kube-prometheus-stack."""
    everything = {"serviceMonitorSelectorNilUsesHelmValues": False, "podMonitorSelectorNilUsesHelmValues": False,
                  "ruleSelectorNilUsesHelmValues": False, "probeSelectorNilUsesHelmValues": False,
                  "scrapeConfigSelectorNilUsesHelmValues": False}
    volume: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                              "resources": {"requests": {"storage": monitoring.storageSize}}}
    if storage_class:
        volume["storageClassName"] = storage_class
    values: dict[str, Any] = {
        "crds": {"enabled": True},
        "prometheus": {"prometheusSpec": {
            **everything,
            "retention": monitoring.retention,
            "storageSpec": {"volumeClaimTemplate": {"spec": volume}},
        }},
        "grafana": {
            "enabled": True,
            "admin": {"existingSecret": admin_secret, "userKey": "admin-user", "passwordKey": "admin-password"},
            "sidecar": {"dashboards": {"enabled": True, "label": DASHBOARD_LABEL[0], "labelValue": DASHBOARD_LABEL[1],
                                       "searchNamespace": "ALL"}},
            # No helm-test pod: an image fewer to mirror. (No chown init container either: Grafana keeps no PVC,
            # and the chart adds that container only to a persistent Grafana.)
            "testFramework": {"enabled": False},
        },
    }
    return merge(values, image_values(registry, pull_secret))


# kube-prometheus-stack turns on the node exporter's distroless variant, which appends `-distroless` to the tag.
NODE_EXPORTER_IMAGE = "prometheus-node-exporter.image"


def image_values(registry: Registry, pull_secret: pulumi.Input[str] | None) -> dict[str, Any]:
    """Every image the chart deploys, from the catalog (registry split from repository as the chart's image
    blocks take them) and moved onto the mirror in air-gap mode, with the pull secret everywhere. A tag the
    catalog could not read from the pinned (sub)chart is left to the chart's own default rather than guessed."""
    values: dict[str, Any] = {}
    for path, image in CATALOG.chart(CHART).images.items():
        block: dict[str, Any] = {"registry": registry.mirror or image.registry, "repository": image.path}
        if not image.unverified:
            block["tag"] = image.tag
        if path == NODE_EXPORTER_IMAGE:  # the catalog's tag is the whole tag: the chart must not add -distroless
            block["distroless"] = False
        values = merge(values, nested(path, block))
    if registry.mirror:
        values["global"] = {"imageRegistry": registry.mirror}
    if pull_secret:
        values = merge(values, {"global": {"imagePullSecrets": [{"name": pull_secret}]}})
    return values
