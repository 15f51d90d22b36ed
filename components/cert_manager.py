"""CertManager: cert-manager with its CRDs, and the platform's own CA: a self-signed bootstrap issuer signs a CA
certificate, and the CA ClusterIssuer (namespaces.CLUSTER_ISSUER) issues every platform certificate from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import namespaces
from components.catalog import CATALOG
from components.config import Registry
from components.kube import RegistryLogin, helm_release, meta, mirror_pull_secret, platform_namespace, resource_name
from components.values import merge, nested, on_mirror

API_VERSION = "cert-manager.io/v1"
BOOTSTRAP_ISSUER = "pai-selfsigned"
CA_CERTIFICATE = "pai-ca"
CA_SECRET = "pai-ca"  # in the cert-manager namespace, where a ClusterIssuer's CA secret must live
CA_DURATION = "87600h"  # ten years; cert-manager renews it two thirds of the way through


@dataclass(frozen=True)
class CertManagerArgs:
    registry: Registry
    mirror_login: RegistryLogin | None = None  # the air-gap mirror's account, where the platform makes its Secret
    pod_security: str | None = None  # the Pod Security level its namespace enforces (config.Cluster.pod_security)


class CertManager(pulumi.ComponentResource):
    """The cert-manager release and the CA ClusterIssuer other components request certificates from."""

    release: k8s.helm.v3.Release
    issuer_name: pulumi.Output[str]

    def __init__(self, name: str, args: CertManagerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pai:certmanager:CertManager", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = platform_namespace(f"{name}-namespace", namespaces.CERT_MANAGER, child, enforce=args.pod_security)
        pull_secret = mirror_pull_secret(f"{name}-mirror-pull-secret", ns.metadata["name"], args.registry,
                                         args.mirror_login, child)
        pin = CATALOG.chart("cert-manager")
        self.release = helm_release(f"{name}-release", "cert-manager", pin, args.registry.mirror,
                                    ns.metadata["name"], chart_values(args.registry, pull_secret), child)
        # The CRs need the CRDs the release installs.
        after_release = pulumi.ResourceOptions(parent=self, depends_on=[self.release])
        bootstrap = issuer(f"{name}-bootstrap-issuer", BOOTSTRAP_ISSUER, {"selfSigned": {}}, after_release)
        certificate = k8s.apiextensions.CustomResource(
            f"{name}-ca-certificate",
            api_version=API_VERSION,
            kind="Certificate",
            metadata=meta(CA_CERTIFICATE, ns.metadata["name"]),
            spec=ca_certificate_spec(resource_name(bootstrap)),
            opts=after_release,
        )
        ca = issuer(f"{name}-ca-issuer", namespaces.CLUSTER_ISSUER,
                    {"ca": {"secretName": resource_name(certificate).apply(lambda _: CA_SECRET)}}, after_release)
        self.issuer_name = resource_name(ca)
        self.register_outputs({"release": self.release.status, "issuerName": self.issuer_name})


def issuer(name: str, issuer_name: str, spec: dict[str, Any],
           opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(name, api_version=API_VERSION, kind="ClusterIssuer",
                                            metadata=meta(issuer_name), spec=spec, opts=opts)


def ca_certificate_spec(issuer_name: pulumi.Input[str]) -> dict[str, Any]:
    """The platform CA: a self-signed CA certificate whose key pair signs every platform certificate."""
    return {
        "isCA": True,
        "commonName": "pai platform CA",
        "secretName": CA_SECRET,
        "duration": CA_DURATION,
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": issuer_name},
    }


def chart_values(registry: Registry, pull_secret: pulumi.Input[str] | None) -> dict[str, Any]:
    """CRDs installed (and kept on uninstall) by the chart; every image from the catalog, on the mirror in
    air-gap mode. The catalog's tag is the chart's appVersion, which the chart pulls by default."""
    values: dict[str, Any] = {"crds": {"enabled": True, "keep": True}}
    for path, image in CATALOG.chart("cert-manager").images.items():
        values = merge(values, nested(path, {"repository": on_mirror(image.repository, registry.mirror)}))
    if pull_secret:
        values["global"] = {"imagePullSecrets": [{"name": pull_secret}]}
    return values
