"""Small helpers for the Kubernetes objects every component writes."""

from __future__ import annotations

from typing import Any

import pulumi


def meta(name: pulumi.Input[str], namespace: pulumi.Input[str] | None = None,
         labels: dict[str, str] | None = None) -> Any:
    """ObjectMeta as the typed pulumi_kubernetes inputs take it (plain dicts are accepted at run time)."""
    metadata: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/part-of": "pai", **(labels or {})}}
    if namespace is not None:
        metadata["namespace"] = namespace
    return metadata
