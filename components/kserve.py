"""Kserve: the KServe CRDs, then the KServe controller in Standard (raw Kubernetes Deployment) mode: no Knative,
no Istio.

The kserve-runtime-configs chart (KServe's default ClusterServingRuntimes) is deliberately not installed: the
platform's own runtimes (components/serving_runtimes.py) replace them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import namespaces
from components.catalog import CATALOG
from components.config import Cluster, Registry
from components.kube import RegistryLogin, helm_release, mirror_pull_secret, platform_namespace
from components.values import merge, nested, on_mirror

# KServe v0.16 renamed RawDeployment to Standard; the old name is still parsed and turned into the new one.
# Pulumi writes the new name so the controller has nothing to rewrite.
DEPLOYMENT_MODE = "Standard"
# How kserve-resources names each catalog image block (see catalog.yaml): `image` + `tag` unless listed here.
TAG_KEYS = {"kserve.servingruntime.art": "defaultVersion"}
SINGLE_STRING = {"kserve.controller.rbacProxyImage"}  # one `repository:tag` value
# The modelcar sidecar's UID. The model server reads the model through /proc/<modelcar pid>/root, which takes the
# same UID once every capability is dropped: the ServingRuntimes run their servers as this UID too.
MODEL_UID = 1010


@dataclass(frozen=True)
class KserveArgs:
    cluster: Cluster
    registry: Registry
    cert_manager: pulumi.Resource | None = None  # its webhooks' certificates come from cert-manager
    mirror_login: RegistryLogin | None = None  # the air-gap mirror's account, where the platform makes its Secret


class Kserve(pulumi.ComponentResource):
    """The kserve-crd and kserve-resources releases in the kserve namespace."""

    crds: k8s.helm.v3.Release
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: KserveArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pai:kserve:Kserve", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = platform_namespace(f"{name}-namespace", namespaces.KSERVE, child,
                                enforce=args.cluster.pod_security)
        pull_secret = mirror_pull_secret(f"{name}-mirror-pull-secret", ns.metadata["name"], args.registry,
                                         args.mirror_login, child)
        mirror = args.registry.mirror
        self.crds = helm_release(f"{name}-crds", "kserve-crd", CATALOG.chart("kserve-crd"), mirror,
                                 ns.metadata["name"], {}, child)
        after = [self.crds, *([args.cert_manager] if args.cert_manager else [])]
        self.release = helm_release(f"{name}-release", "kserve", CATALOG.chart("kserve-resources"), mirror,
                                    ns.metadata["name"], chart_values(args.cluster, args.registry, pull_secret),
                                    pulumi.ResourceOptions(parent=self, depends_on=after))
        self.register_outputs({"crds": self.crds.status, "release": self.release.status})


def chart_values(cluster: Cluster, registry: Registry, pull_secret: pulumi.Input[str] | None) -> dict[str, Any]:
    """Helm values for kserve-resources."""
    gateway: dict[str, Any] = {
        # Clients reach models through the AI gateway, which routes by model name to each predictor Service, so
        # KServe creates no per-endpoint Ingress or HTTPRoute. The class is still the cluster's; Gateway API mode
        # stays off, as it would make the controller wait for the Gateway API CRDs the Gateway component installs.
        "disableIngressCreation": True,
        "disableIstioVirtualHost": True,
        "ingressGateway": {"enableGatewayApi": False, "className": cluster.ingress.className},
        "localGateway": {"gateway": "", "gatewayService": ""},  # Knative's local gateway: not installed
    }
    if cluster.ingress.domain:
        gateway["domain"] = cluster.ingress.domain
    # The webhook's cert-manager Issuer and Certificate come with the chart's shared resources
    # (createSharedResources, on by default); kserve.certManager.enabled could only add to that.
    values: dict[str, Any] = {"kserve": {
        "controller": {"deploymentMode": DEPLOYMENT_MODE, "gateway": gateway,
                       "knativeAddressableResolver": {"enabled": False}},
        # Models from oci:// gallery references are mounted from a modelcar sidecar, not copied.
        "storage": {"enableModelcar": True, "uidModelcar": MODEL_UID},
    }}
    return merge(values, image_values(registry, pull_secret))


def image_values(registry: Registry, pull_secret: pulumi.Input[str] | None) -> dict[str, Any]:
    """Every image of the chart from the catalog, on the mirror in air-gap mode, with the pull secret."""
    values: dict[str, Any] = {}
    for path, image in CATALOG.chart("kserve-resources").images.items():
        repository = on_mirror(image.repository, registry.mirror)
        if path in SINGLE_STRING:
            parent, key = path.rsplit(".", 1)
            values = merge(values, nested(parent, {key: f"{repository}:{image.tag}"}))
        else:
            values = merge(values, nested(path, {"image": repository, TAG_KEYS.get(path, "tag"): image.tag}))
    if pull_secret:
        values = merge(values, nested("kserve.controller", {"imagePullSecrets": [{"name": pull_secret}]}))
        # The router's config is JSON in inferenceservice-config, where the chart pastes the value with Go's %v
        # (files/common/configmap-patch.yaml): only a string that is already a JSON list renders valid JSON.
        names = pulumi.Output.from_input(pull_secret).apply(lambda name: json.dumps([name]))
        values = merge(values, nested("kserve.router", {"imagePullSecrets": names}))
    return values
