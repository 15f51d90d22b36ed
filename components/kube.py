"""Small helpers for the Kubernetes objects every component writes."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import namespaces


def meta(name: pulumi.Input[str], namespace: pulumi.Input[str] | None = None,
         labels: dict[str, str] | None = None) -> Any:
    """ObjectMeta as the typed pulumi_kubernetes inputs take it (plain dicts are accepted at run time)."""
    metadata: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/part-of": "pai", **(labels or {})}}
    if namespace is not None:
        metadata["namespace"] = namespace
    return metadata


def certificate(name: str, namespace: pulumi.Input[str], secret_name: str, dns_names: list[str],
                opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
    """A cert-manager Certificate from the platform's ClusterIssuer, written to the kubernetes.io/tls Secret
    `secret_name`; `opts` carries the depends_on on the cert-manager release that installs the CRD."""
    return k8s.apiextensions.CustomResource(
        name,
        api_version="cert-manager.io/v1",
        kind="Certificate",
        metadata=meta(secret_name, namespace),
        spec={
            "secretName": secret_name,
            "dnsNames": dns_names,
            "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": namespaces.CLUSTER_ISSUER},
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        },
        opts=opts,
    )
