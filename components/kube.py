"""Small helpers for the Kubernetes objects every component writes."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import namespaces
from components.catalog import ChartPin


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


def chart_release(name: str, release: str, pin: ChartPin, mirror: str | None, namespace: pulumi.Input[str],
                  values: dict[str, Any], opts: pulumi.ResourceOptions, **extra: Any) -> k8s.helm.v3.Release:
    """A Helm release of a catalog chart at its pinned version, pulled from the mirror in air-gap mode."""
    chart, repo = pin.source_for(mirror)
    return k8s.helm.v3.Release(
        name,
        name=release,
        chart=chart,
        version=pin.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repo) if repo else None,
        namespace=namespace,
        values=values,
        opts=opts,
        **extra,
    )
