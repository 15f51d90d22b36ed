"""Tenancy: a namespace per tenant with Pod Security Admission, a quota, default-deny networking plus the
allows the platform needs, and RBAC for the tenant's deployers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import namespaces
from components.config import Subject, Tenant
from components.kube import meta

DEPLOYER_RULES: Any = [
    {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices", "servingruntimes"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["secrets", "serviceaccounts", "configmaps"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["pods", "pods/log", "services", "endpoints", "events",
                                      "persistentvolumeclaims"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["kueue.x-k8s.io"], "resources": ["workloads", "localqueues"], "verbs": ["get", "list", "watch"]},
]


@dataclass(frozen=True)
class TenancyArgs:
    tenants: list[Tenant]
    kubernetes_version: str
    # Kueue admits GPU workloads against its ClusterQueues, where a tenant may borrow idle GPUs beyond its own
    # quota: the ResourceQuota then leaves GPUs to Kueue instead of capping them at the nominal quota.
    gpus_queued: bool = False


class Tenancy(pulumi.ComponentResource):
    """One isolated namespace per tenant."""

    namespaces: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: TenancyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pai:tenancy:Tenancy", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.namespaces = {}
        for tenant in args.tenants:
            prefix = f"{name}-{tenant.name}"
            ns = k8s.core.v1.Namespace(
                f"{prefix}-namespace",
                metadata=meta(tenant.name, labels=namespace_labels(tenant, args.kubernetes_version)),
                opts=child,
            )
            ns_name = ns.metadata["name"]
            self.namespaces[tenant.name] = ns_name
            k8s.core.v1.ResourceQuota(
                f"{prefix}-quota",
                metadata=meta("pai-tenant-quota", ns_name),
                spec={"hard": quota_hard(tenant, args.gpus_queued)},
                opts=child,
            )
            for policy, spec in network_policies(tenant).items():
                k8s.networking.v1.NetworkPolicy(
                    f"{prefix}-{policy}",
                    metadata=meta(policy, ns_name),
                    spec=spec,
                    opts=child,
                )
            role = k8s.rbac.v1.Role(
                f"{prefix}-deployer-role",
                metadata=meta("pai-deployer", ns_name),
                rules=DEPLOYER_RULES,
                opts=child,
            )
            if tenant.deployers:
                k8s.rbac.v1.RoleBinding(
                    f"{prefix}-deployer-binding",
                    metadata=meta("pai-deployer", ns_name),
                    role_ref=role_ref(role.metadata["name"]),
                    subjects=[subject(s) for s in tenant.deployers],
                    opts=child,
                )
        self.register_outputs({"namespaces": self.namespaces})


def namespace_labels(tenant: Tenant, kubernetes_version: str) -> dict[str, str]:
    """Pod Security Admission: enforce the tenant's level, warn and audit at restricted."""
    psa = "pod-security.kubernetes.io"
    version = f"v{kubernetes_version}"
    return {
        namespaces.TENANT_LABEL: tenant.name,
        f"{psa}/enforce": tenant.podSecurity,
        f"{psa}/enforce-version": version,
        f"{psa}/warn": "restricted",
        f"{psa}/warn-version": version,
        f"{psa}/audit": "restricted",
        f"{psa}/audit-version": version,
    }


def quota_hard(tenant: Tenant, gpus_queued: bool = False) -> dict[str, str]:
    hard = {
        "requests.cpu": tenant.quota.cpu,
        "requests.memory": tenant.quota.memory,
        "limits.memory": tenant.quota.memory,
    }
    if not gpus_queued:
        hard["requests.nvidia.com/gpu"] = str(sum(tenant.quota.gpus.values()))
    return hard


def from_namespace(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def network_policies(tenant: Tenant) -> dict[str, Any]:
    """Deny everything, then allow: the namespace itself, DNS, the gateway, scraping, platform services."""
    everything: dict[str, Any] = {"podSelector": {}}
    policies: dict[str, Any] = {
        "default-deny": {**everything, "policyTypes": ["Ingress", "Egress"]},
        "allow-same-namespace": {**everything, "policyTypes": ["Ingress", "Egress"],
                                 "ingress": [{"from": [{"podSelector": {}}]}],
                                 "egress": [{"to": [{"podSelector": {}}]}]},
        "allow-dns": {**everything, "policyTypes": ["Egress"], "egress": [{
            "to": [{**from_namespace(namespaces.KUBE_SYSTEM),
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        }]},
        "allow-from-gateway": {**everything, "policyTypes": ["Ingress"],
                               "ingress": [{"from": [from_namespace(namespaces.GATEWAY)]}]},
        "allow-from-monitoring": {**everything, "policyTypes": ["Ingress"],
                                  "ingress": [{"from": [from_namespace(namespaces.MONITORING)]}]},
        "allow-to-platform": {**everything, "policyTypes": ["Egress"], "egress": [{"to": [{
            "namespaceSelector": {"matchLabels": {namespaces.PLATFORM_LABEL: "true"}}}]}]},
    }
    if tenant.egressCidrs:
        policies["allow-egress-cidrs"] = {**everything, "policyTypes": ["Egress"], "egress": [
            {"to": [{"ipBlock": {"cidr": cidr}} for cidr in tenant.egressCidrs]}]}
    return policies


def role_ref(name: pulumi.Input[str]) -> Any:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}


def subject(s: Subject) -> Any:
    if s.kind == "ServiceAccount":
        return {"kind": s.kind, "name": s.name, "namespace": s.namespace or ""}
    return {"kind": s.kind, "name": s.name, "apiGroup": "rbac.authorization.k8s.io"}
