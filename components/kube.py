"""Small helpers for the Kubernetes objects every component writes."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import namespaces
from components.catalog import ChartPin


def meta(name: pulumi.Input[str], namespace: pulumi.Input[str] | None = None,
         labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> Any:
    """ObjectMeta as the typed pulumi_kubernetes inputs take it (plain dicts are accepted at run time)."""
    metadata: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/part-of": "pai", **(labels or {})}}
    if namespace is not None:
        metadata["namespace"] = namespace
    if annotations:
        metadata["annotations"] = annotations
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


def resource_name(resource: k8s.apiextensions.CustomResource) -> pulumi.Output[str]:
    """A custom resource's metadata.name as an Output, for data dependencies (the SDK leaves CustomResource
    outputs untyped)."""
    name: pulumi.Output[str] = resource.metadata["name"]  # type: ignore[attr-defined]
    return name


def helm_release(name: str, release_name: str, pin: ChartPin, mirror: str | None, namespace: pulumi.Input[str],
                 values: dict[str, Any], opts: pulumi.ResourceOptions, **extra: Any) -> k8s.helm.v3.Release:
    """A Helm release of a catalog chart at its pinned version, from the mirror in air-gap mode."""
    chart, repo = pin.source_for(mirror)
    return k8s.helm.v3.Release(
        name,
        name=release_name,
        chart=chart,
        version=pin.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repo) if repo else None,
        namespace=namespace,
        values=values,
        opts=opts,
        **extra,
    )


def platform_namespace(name: str, namespace: str, opts: pulumi.ResourceOptions,
                       privileged: bool = False) -> k8s.core.v1.Namespace:
    """A namespace of the platform's own, which tenants' network policies let them reach; `privileged` Pod
    Security for one whose pods need host access."""
    labels = {namespaces.PLATFORM_LABEL: "true"}
    if privileged:
        psa = "pod-security.kubernetes.io"
        labels |= {f"{psa}/enforce": "privileged", f"{psa}/warn": "privileged", f"{psa}/audit": "privileged"}
    return k8s.core.v1.Namespace(name, metadata=meta(namespace, labels=labels), opts=opts)
