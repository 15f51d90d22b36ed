"""Small helpers for the Kubernetes objects every component writes."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import namespaces
from components.catalog import ChartPin
from components.config import Registry, Toleration

DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson"
# What tolerates the GPU nodes' taint nvidia.com/gpu:NoSchedule (the GPU Operator chart's default for its operands;
# the platform's VKS GPU pools carry it).
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


@dataclass(frozen=True, kw_only=True)  # by keyword: a username and a password are never swapped by position
class RegistryLogin:
    """An account on a registry: its host, and the username and password (Pulumi secrets)."""

    host: str
    username: pulumi.Input[str]
    password: pulumi.Input[str]


def tolerations(defaults: list[dict[str, str]], configured: Sequence[Toleration]) -> list[dict[str, str]]:
    """`defaults` plus the configured tolerations (pai:gpu.tolerations) not among them, as a pod spec takes them."""
    added = [t.model_dump(exclude_none=True) for t in configured]
    return [*defaults, *[t for t in added if t not in defaults]]


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
                       privileged: bool = False, enforce: str | None = None) -> k8s.core.v1.Namespace:
    """A namespace of the platform's own, which tenants' network policies let them reach; `privileged` Pod
    Security for one whose pods need host access, else `enforce` where the cluster's default will not do
    (config.Cluster.pod_security)."""
    labels = {namespaces.PLATFORM_LABEL: "true"}
    psa = "pod-security.kubernetes.io"
    if privileged:
        labels |= {f"{psa}/enforce": "privileged", f"{psa}/warn": "privileged", f"{psa}/audit": "privileged"}
    elif enforce:
        labels[f"{psa}/enforce"] = enforce
    return k8s.core.v1.Namespace(name, metadata=meta(namespace, labels=labels), opts=opts)


def docker_config(host: str, username: str, password: str) -> str:
    """A `.dockerconfigjson` with one registry's credentials, as `kubectl create secret docker-registry` writes it."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps({"auths": {host: {"username": username, "password": password, "auth": auth}}}, sort_keys=True)


def pull_secret(name: str, secret_name: str, login: RegistryLogin, namespace: pulumi.Input[str],
                opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
    """The kubelet's credentials for a registry: a dockerconfigjson Secret built from the login's Outputs (so it
    waits for them) and kept a Pulumi secret; returns its name, for what names it to wait for it too."""
    config: pulumi.Output[str] = pulumi.Output.all(login.username, login.password).apply(
        lambda account: docker_config(login.host, account[0], account[1]))
    secret_config: pulumi.Output[str] = pulumi.Output.secret(config)
    secret = k8s.core.v1.Secret(
        name,
        metadata=meta(secret_name, namespace),
        type=DOCKER_CONFIG_JSON,
        string_data={".dockerconfigjson": secret_config},
        opts=opts,
    )
    secret_name_output: pulumi.Output[str] = secret.metadata["name"]
    return secret_name_output


def mirror_pull_secret(name: str, namespace: pulumi.Input[str], registry: Registry, login: RegistryLogin | None,
                       opts: pulumi.ResourceOptions) -> pulumi.Input[str] | None:
    """The name a namespace's pods pull from the air-gap mirror with. Given the mirror account
    (pai:mirrorPullUsername, pai:mirrorPullPassword), the platform creates the Secret `pai:registry.pullSecret` in
    the namespace, and the name is its Output, so the release or pods that use it come after it; without, the name
    alone, of a Secret the operator creates beforehand (None where the stack sets no pull secret)."""
    if login is None:
        return registry.pullSecret
    assert registry.pullSecret is not None  # the config check requires it with the account
    return pull_secret(name, registry.pullSecret, login, namespace, opts)
