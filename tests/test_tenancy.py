"""Tenancy: namespace, Pod Security Admission, quota, default-deny networking and deployer RBAC per tenant."""

from __future__ import annotations

from typing import Any

from conftest import Program, minimal, of_kind

GPU = {"driver": {"mode": "preinstalled"}, "products": ["NVIDIA-L40S", "NVIDIA-H100-80GB-HBM3"]}


def tenant(**fields: Any) -> dict[str, Any]:
    return {"name": "team-a", **fields}


def test_namespace_enforces_the_tenants_pod_security_level(run_program: Program) -> None:
    records = run_program(minimal(tenants=[tenant(podSecurity="restricted"), {"name": "team-b"}]))
    labels = {ns["metadata"]["name"]: ns["metadata"]["labels"] for ns in of_kind(records, "Namespace")}
    assert labels["team-a"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["team-b"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["team-b"]["pod-security.kubernetes.io/warn"] == "restricted"
    assert labels["team-a"]["pod-security.kubernetes.io/enforce-version"] == "v1.33"


def test_quota_sums_gpus_across_products(run_program: Program) -> None:
    quota = {"cpu": "32", "memory": "128Gi", "gpus": {"NVIDIA-L40S": 2, "NVIDIA-H100-80GB-HBM3": 3}}
    records = run_program(minimal(gpu=GPU, tenants=[tenant(quota=quota)]))
    (hard,) = [q["spec"]["hard"] for q in of_kind(records, "ResourceQuota")]
    assert hard == {"requests.cpu": "32", "requests.memory": "128Gi", "limits.memory": "128Gi",
                    "requests.nvidia.com/gpu": "5"}


def test_network_is_denied_by_default_then_opened_for_the_platform(run_program: Program) -> None:
    records = run_program(minimal())
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind(records, "NetworkPolicy")}
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert set(policies) == {"default-deny", "allow-same-namespace", "allow-dns", "allow-from-gateway",
                             "allow-from-monitoring", "allow-to-platform"}
    gateway = policies["allow-from-gateway"]["ingress"][0]["from"][0]
    assert gateway["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "envoy-gateway-system"}
    dns_ports = policies["allow-dns"]["egress"][0]["ports"]
    assert {(p["protocol"], p["port"]) for p in dns_ports} == {("UDP", 53), ("TCP", 53)}


# Namespaces by their labels, as the API server labels them (kubernetes.io/metadata.name) and the platform does.
NAMESPACES = {name: {"kubernetes.io/metadata.name": name} for name in (
    "team-a", "team-b", "monitoring", "envoy-gateway-system", "kserve", "kube-system", "default")}
NAMESPACES["kserve"]["pai.io/platform"] = "true"


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, selector  # matchExpressions would need evaluating too
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def admitted_from(policies: dict[str, dict[str, Any]], namespace: str) -> set[str]:
    """The namespaces whose pods the ingress policies of `namespace` admit (NetworkPolicy semantics: the union of
    every policy's ingress rules; a rule without `from` admits everyone; a peer with only a podSelector is the
    policy's own namespace; an empty namespaceSelector selects every namespace)."""
    admitted = set()
    for spec in policies.values():
        if "Ingress" not in spec["policyTypes"]:
            continue
        for rule in spec.get("ingress", []):
            for source, labels in NAMESPACES.items():
                peers = rule.get("from")
                if peers is None or any(
                        _selects(p["namespaceSelector"], labels) if "namespaceSelector" in p else source == namespace
                        for p in peers):
                    admitted.add(source)
    return admitted


def test_tenant_pods_admit_only_their_namespace_the_gateway_and_monitoring(run_program: Program) -> None:
    records = run_program(minimal(tenants=[tenant(), {"name": "team-b"}]))
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind(records, "NetworkPolicy")
                if p["metadata"]["namespace"] == "team-a"}
    assert admitted_from(policies, "team-a") == {"team-a", "envoy-gateway-system", "monitoring"}


def test_extra_egress_cidrs_get_their_own_policy(run_program: Program) -> None:
    records = run_program(minimal(tenants=[tenant(egressCidrs=["10.20.0.0/16"])]))
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind(records, "NetworkPolicy")}
    assert policies["allow-egress-cidrs"]["egress"] == [{"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}]}]


def test_deployers_are_bound_to_the_deployer_role(run_program: Program) -> None:
    deployers = [{"kind": "Group", "name": "ml"}, {"kind": "User", "name": "ana@example.com"},
                 {"kind": "ServiceAccount", "name": "ci", "namespace": "cicd"}]
    records = run_program(minimal(tenants=[tenant(deployers=deployers), {"name": "team-b"}]))
    bindings = of_kind(records, "RoleBinding")
    assert [b["metadata"]["namespace"] for b in bindings] == ["team-a"]
    assert bindings[0]["subjects"] == [
        {"kind": "Group", "name": "ml", "apiGroup": "rbac.authorization.k8s.io"},
        {"kind": "User", "name": "ana@example.com", "apiGroup": "rbac.authorization.k8s.io"},
        {"kind": "ServiceAccount", "name": "ci", "namespace": "cicd"},
    ]
    assert bindings[0]["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pai-deployer"}
    roles = of_kind(records, "Role")
    assert len(roles) == 2
    isvc = next(r for r in roles[0]["rules"] if "serving.kserve.io" in r["apiGroups"])
    assert "create" in isvc["verbs"] and "inferenceservices" in isvc["resources"]


def test_every_tenant_object_lives_in_its_namespace(run_program: Program) -> None:
    records = run_program(minimal(tenants=[tenant(), {"name": "team-b"}]))
    namespaced = [o for o in records if o.custom and o.parent == "pai:tenancy:Tenancy::platform-tenancy"
                  and "Namespace" not in o.type]
    assert namespaced
    for record in namespaced:
        assert record.inputs["metadata"]["namespace"] in {"team-a", "team-b"}
        assert record.name.split("-tenancy-")[1].startswith(record.inputs["metadata"]["namespace"])
