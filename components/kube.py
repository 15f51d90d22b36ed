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


def privileged_platform_labels() -> dict[str, str]:
    """Labels of a platform namespace whose pods need host access (privileged Pod Security)."""
    psa = "pod-security.kubernetes.io"
    return {namespaces.PLATFORM_LABEL: "true", f"{psa}/enforce": "privileged", f"{psa}/warn": "privileged",
            f"{psa}/audit": "privileged"}


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
